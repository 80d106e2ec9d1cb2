package test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsSeries is a WebSocket status_requests_total series of the default
// zone's storage-node protocol.
func wsSeries(code int) string {
	return fmt.Sprintf(`caddy_upload_progress_status_requests_total{code="%d",protocol="shard",transport="websocket",zone="default"}`, code)
}

// refusedBody returns the body of a refused handshake.
func refusedBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b))
}

// WebSocket requests that cannot be served are refused before the
// handshake, with the storage node's error shape and code, and counted; a
// plain GET, without the upgrade, gets 426. The bodies of 426 (and of the
// Origin refusals below) are the WebSocket library's own text, so only
// their codes are checked.
func TestWebSocketRefusals(t *testing.T) {
	e := newEnv(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	key := http.Header{"X-User-Api-Key": {apiKey}}
	before := e.scrape()

	for _, c := range []struct {
		name, query string
		hdr         http.Header
		code        int
		body        string
	}{
		{"no credential", "path=/x.bin", nil, http.StatusUnauthorized, `{"error":"missing x-user-api-key header"}`},
		{"no path", "", key, http.StatusBadRequest, `{"error":"missing query parameter: path"}`},
		{"bad rate", "path=/x.bin&updatingRate=0", key, http.StatusBadRequest, `{"error":"updatingRate must be a whole number from 1 to 1048576"}`},
	} {
		conn, resp, err := e.dialWS(ctx, "/ws/progress?"+c.query, c.hdr)
		if conn != nil {
			conn.CloseNow()
			t.Fatalf("%s: the handshake succeeded", c.name)
		}
		if resp == nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if body := refusedBody(t, resp); resp.StatusCode != c.code || body != c.body {
			t.Errorf("%s: %d %s, want %d %s", c.name, resp.StatusCode, body, c.code, c.body)
		}
	}

	// Another method than GET.
	req, _ := http.NewRequest(http.MethodPost, e.proxy+"/ws/progress?path=/x.bin", nil)
	req.Header.Set("x-user-api-key", apiKey)
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `{"error":"method not allowed: use GET"}`; resp.StatusCode != http.StatusMethodNotAllowed || strings.TrimSpace(string(body)) != want {
		t.Errorf("POST: %d %s, want 405 %s", resp.StatusCode, body, want)
	}

	// A plain GET, without the upgrade.
	req, _ = http.NewRequest(http.MethodGet, e.proxy+"/ws/progress?path=/x.bin", nil)
	req.Header.Set("x-user-api-key", apiKey)
	resp, err = e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Errorf("GET without upgrade: %d, want 426", resp.StatusCode)
	}

	after := e.scrape()
	for code, want := range map[int]float64{401: 1, 400: 2, 405: 1, 101: 0} {
		if d := grew(before, after, wsSeries(code)); d != want {
			t.Errorf("%s grew by %v, want %v", wsSeries(code), d, want)
		}
	}
}

// Records are bound to their owner over the WebSocket too: a watcher with
// another credential sees exactly what a never-used key shows, while the
// owner sees the upload.
func TestWebSocketOfAnotherOwnersKey(t *testing.T) {
	e := newEnv(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data := pattern(10 << 10)
	if res := e.upload("/mine.bin", bytes.NewReader(data), int64(len(data)), "", nil); res.code != http.StatusCreated {
		t.Fatalf("upload: %d %s %v", res.code, res.body, res.err)
	}
	before := e.scrape()
	first := func(path, key string) string {
		t.Helper()
		conn, _, err := e.dialWS(ctx, "/ws/progress?path="+path, http.Header{"X-User-Api-Key": {key}})
		if err != nil {
			t.Fatalf("watcher of %s with %s: %v", path, key, err)
		}
		defer conn.CloseNow()
		_, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("watcher of %s with %s: %v", path, key, err)
		}
		return string(b)
	}
	other, never := first("/mine.bin", "other-key"), first("/never.bin", apiKey)
	if want := `{"total_size":0,"uploaded":0,"status":"not_exist","error":""}`; other != never || never != want {
		t.Fatalf("another owner's watcher got %s, a never-used key's %s, want both %s", other, never, want)
	}
	if own := first("/mine.bin", apiKey); !strings.Contains(own, `"status":"completed"`) {
		t.Fatalf("the owner's watcher got %s", own)
	}
	if d := grew(before, e.scrape(), wsSeries(101)); d != 3 {
		t.Fatalf("%s grew by %v, want 3", wsSeries(101), d)
	}
}

// A cross-origin page may open the WebSocket only when origin_patterns
// allows its host; same-origin and non-browser clients (no Origin) always
// may.
func TestWebSocketOriginPatterns(t *testing.T) {
	e := newEnv(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dial := func(origin string) int {
		t.Helper()
		hdr := http.Header{"X-User-Api-Key": {apiKey}}
		if origin != "" {
			hdr.Set("Origin", origin)
		}
		conn, resp, err := e.dialWS(ctx, "/ws/progress?path=/o.bin", hdr)
		if conn != nil {
			defer conn.CloseNow()
			if _, b, err := conn.Read(ctx); err != nil || !strings.Contains(string(b), "not_exist") {
				t.Fatalf("origin %q: first message %s %v", origin, b, err)
			}
		}
		if resp == nil {
			t.Fatalf("origin %q: %v", origin, err)
		}
		return resp.StatusCode
	}
	check := func(origin string, want int) {
		t.Helper()
		before := e.scrape()
		if got := dial(origin); got != want {
			t.Fatalf("origin %q: %d, want %d", origin, got, want)
		}
		accepted := 0.0
		if want == http.StatusSwitchingProtocols {
			accepted = 1
		}
		if d := grew(before, e.scrape(), wsSeries(101)); d != accepted {
			t.Fatalf("origin %q: %s grew by %v, want %v", origin, wsSeries(101), d, accepted)
		}
	}
	check("", http.StatusSwitchingProtocols)
	check(e.proxy, http.StatusSwitchingProtocols)
	check("http://app.example", http.StatusForbidden)

	e.load("origin_patterns app.example", e.originURL)
	check("http://app.example", http.StatusSwitchingProtocols)
	check("http://elsewhere.example", http.StatusForbidden)
}

// A watcher whose connection takes no more bytes is disconnected once a
// message cannot be written within watcher_timeout, counted as
// write_timeout, and the upload it watched is unaffected. Its messages
// are large (pCloud's replies list the finished files with their names)
// and it reads none of them, with a small receive buffer, so that the
// proxy's writes soon block.
func TestWatcherThatTakesNoBytesIsDropped(t *testing.T) {
	e := newEnv(t, "")
	e.load("protocol pcloud\nupdate_interval off\nwatcher_timeout 200ms", pcloudOrigin(t))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	before := e.scrape()

	// 110 one-byte files with 7,900-byte names (860 KB of names, within
	// the upload's 1 MiB of file details), then a 24 MiB file sent 1 MiB
	// at a time: each MiB is a message of the 110 names.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for i := range 110 {
		fw, _ := mw.CreateFormFile("file", fmt.Sprintf("%03d-%s", i, strings.Repeat("n", 7896)))
		fw.Write([]byte{'x'})
	}
	fw, _ := mw.CreateFormFile("file", "big.bin")
	bigStart := body.Len()
	fw.Write(pattern(24 << 20))
	bigEnd := body.Len()
	mw.Close()
	raw := body.Bytes()

	// The watcher reads nothing, on a connection with a small buffer.
	dialer := &net.Dialer{}
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err == nil {
			c.(*net.TCPConn).SetReadBuffer(4 << 10)
		}
		return c, err
	}}}
	defer client.CloseIdleConnections()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.proxy, "http")+"/uploadprogress/ws?progresshash=drop&auth=tok",
		&websocket.DialOptions{HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	e.waitMetric(`caddy_upload_progress_watchers{zone="default"}`, 1)

	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, e.proxy+"/uploadfile?progresshash=drop&auth=tok", pr)
	req.ContentLength = int64(len(raw))
	req.Header.Set("Content-Type", mw.FormDataContentType())
	done := make(chan error, 1)
	go func() {
		resp, err := e.client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("origin answered %s", resp.Status)
			}
		}
		done <- err
	}()
	wrote := make(chan struct{})
	defer func() {
		pr.CloseWithError(fmt.Errorf("the test is over"))
		<-wrote
	}()
	go func() {
		defer close(wrote)
		defer pw.Close()
		if _, err := pw.Write(raw[:bigStart]); err != nil {
			return
		}
		for off := bigStart; off < bigEnd; off += 1 << 20 {
			time.Sleep(10 * time.Millisecond)
			if _, err := pw.Write(raw[off:min(off+1<<20, bigEnd)]); err != nil {
				return
			}
		}
		pw.Write(raw[bigEnd:])
	}()

	dropped := `caddy_upload_progress_watchers_dropped_total{protocol="pcloud",reason="write_timeout",zone="default"}`
	e.waitMetric(dropped, metricValue(before, dropped)+1)
	e.waitMetric(`caddy_upload_progress_watchers{zone="default"}`, 0)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("watched upload: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("watched upload not answered within 30 s")
	}
	p, raw2 := e.pcloudProgress("progresshash=drop&auth=tok")
	if !p.Finished || p.Uploaded != int64(len(raw)) || p.Error != "" {
		t.Fatalf("after the upload: %s", raw2)
	}
	noPong := `caddy_upload_progress_watchers_dropped_total{protocol="pcloud",reason="no_pong",zone="default"}`
	if d := grew(before, e.scrape(), noPong); d != 0 {
		t.Fatalf("%s grew by %v, want 0", noPong, d)
	}
}
