package test

import (
	cryptotls "crypto/tls"
	"io"
	"net/http"
	"testing"

	"github.com/quic-go/quic-go/http3"
)

// handshakeGet asks a WebSocket endpoint with c and returns the reply.
func handshakeGet(t *testing.T, c *http.Client, url string, hdr http.Header) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// A request at a WebSocket path that cannot become a watcher is answered
// in the protocol's shape: a plain GET (426), a page of another origin
// (403), and over HTTP/2 and HTTP/3, where Caddy serves no WebSocket, 426
// with no connection-specific header, which HTTP/2 and HTTP/3 clients
// would reject as a protocol error.
func TestWebSocketPathRefusalsInTheProtocolsShape(t *testing.T) {
	e := newEnv(t, "protocol shard pcloud")
	key := goldenHeader("x-user-api-key", apiKey)
	const upgradeRequired = `{"error":"a WebSocket handshake over HTTP/1.1, or Accept: text/event-stream, is required here; poll the status endpoint otherwise"}` + "\n"
	if code, body, _ := handshakeGet(t, e.client, e.proxy+"/ws/progress?path=/a", key); code != 426 || body != upgradeRequired {
		t.Errorf("plain GET: %d %s", code, body)
	}
	if code, body, _ := handshakeGet(t, e.client, e.proxy+"/uploadprogress/ws?progresshash=a&auth=x", nil); code != 426 ||
		body != `{"result":1900,"error":"a WebSocket handshake over HTTP/1.1, or Accept: text/event-stream, is required here; poll the status endpoint otherwise"}`+"\n" {
		t.Errorf("plain GET, pcloud: %d %s", code, body)
	}
	upgrade := goldenHeader("x-user-api-key", apiKey, "Connection", "Upgrade", "Upgrade", "websocket",
		"Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "Origin", "http://evil.example")
	if code, body, _ := handshakeGet(t, e.client, e.proxy+"/ws/progress?path=/a", upgrade); code != 403 ||
		body != `{"error":"this page's origin may not watch uploads here"}`+"\n" {
		t.Errorf("cross-origin: %d %s", code, body)
	}
	if n := metricValue(e.scrape(), `caddy_upload_progress_status_requests_total{code="403",protocol="shard",transport="websocket",zone="default"}`); n != 1 {
		t.Errorf("status_requests_total{code=403} = %v, want 1", n)
	}
}

func TestWebSocketPathOverHTTP2AndHTTP3(t *testing.T) {
	e := newEnvWith(t, "protocol shard", "", true)
	key := goldenHeader("x-user-api-key", apiKey)
	want := `{"error":"a WebSocket handshake over HTTP/1.1, or Accept: text/event-stream, is required here; poll the status endpoint otherwise"}` + "\n"
	code, body, hdr := handshakeGet(t, e.client, e.proxy+"/ws/progress?path=/a", key)
	if code != 426 || body != want || hdr.Get("Upgrade") != "" || hdr.Get("Connection") != "" {
		t.Errorf("HTTP/2: %d %s %v", code, body, hdr)
	}

	h3 := &http3.Transport{TLSClientConfig: &cryptotls.Config{InsecureSkipVerify: true}}
	defer h3.Close()
	c := &http.Client{Transport: h3}
	code, body, hdr = handshakeGet(t, c, e.proxy+"/ws/progress?path=/a", key)
	if code != 426 || body != want || hdr.Get("Upgrade") != "" || hdr.Get("Connection") != "" {
		t.Errorf("HTTP/3: %d %s %v", code, body, hdr)
	}
	// The status endpoint itself answers over HTTP/3.
	if code, body, _ := handshakeGet(t, c, e.proxy+"/progress?path=/a", key); code != 200 {
		t.Errorf("status over HTTP/3: %d %s", code, body)
	}
}
