package test

import (
	cryptotls "crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// http3Client is an HTTP/3 client (quic-go's, as in Caddy) that trusts the
// internal CA of the test's Caddy, as a browser that trusts it would.
func http3Client(t *testing.T) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(storageDir, "pki", "authorities", "local", "root.crt"))
	if err != nil {
		t.Fatalf("Caddy's internal root certificate: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatal("Caddy's internal root certificate does not parse")
	}
	tr := &http3.Transport{TLSClientConfig: &cryptotls.Config{RootCAs: roots, ServerName: "127.0.0.1"}}
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

// gatedReader hands out its data a chunk at a time and, after each chunk
// but the last, waits until the test lets it go on: the upload then stands
// still at a known count while the test looks at its progress.
type gatedReader struct {
	data  []byte
	chunk int
	off   int
	// gate lets the next chunk go; closed, all of them.
	gate chan struct{}
}

func (g *gatedReader) Read(b []byte) (int, error) {
	if g.off >= len(g.data) {
		return 0, io.EOF
	}
	// At the start of every chunk but the first.
	if g.off > 0 && g.off%g.chunk == 0 {
		select {
		case <-g.gate:
		case <-time.After(30 * time.Second):
			return 0, errors.New("the test never let the next chunk go")
		}
	}
	end := min(g.off+g.chunk-g.off%g.chunk, len(g.data), g.off+len(b))
	n := copy(b, g.data[g.off:end])
	g.off += n
	return n, nil
}

// gatedUpload is an upload over HTTP/3 whose body goes a chunk at a time,
// when the test says.
type gatedUpload struct {
	gate     chan struct{}
	released sync.Once
	done     chan gatedResult
}

type gatedResult struct {
	resp *http.Response
	body string
	err  error
}

// startGatedUpload POSTs data to path (shard) over c; its first chunk
// goes at once, each next one on next.
func startGatedUpload(t *testing.T, c *http.Client, proxy, path string, data []byte, chunk int) *gatedUpload {
	t.Helper()
	up := &gatedUpload{gate: make(chan struct{}), done: make(chan gatedResult, 1)}
	body := &gatedReader{data: data, chunk: chunk, gate: up.gate}
	req, _ := http.NewRequest(http.MethodPost, proxy+"/fso?path="+url.QueryEscape(path)+"&informProgress=true", body)
	req.ContentLength = int64(len(data))
	req.Header.Set("x-user-api-key", apiKey)
	req.Header.Set("Content-Type", "application/octet-stream")
	go func() {
		resp, err := c.Do(req)
		if err != nil {
			up.done <- gatedResult{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		up.done <- gatedResult{resp: resp, body: string(b), err: err}
	}()
	// A test that fails midway lets the rest of the body go, so that the
	// upload ends.
	t.Cleanup(up.release)
	return up
}

// next lets the next chunk go.
func (up *gatedUpload) next() { up.gate <- struct{}{} }

// release lets every chunk left go.
func (up *gatedUpload) release() { up.released.Do(func() { close(up.gate) }) }

// finish lets the rest of the body go and waits for the answer.
func (up *gatedUpload) finish(t *testing.T) gatedResult {
	t.Helper()
	up.release()
	select {
	case res := <-up.done:
		return res
	case <-time.After(60 * time.Second):
		t.Fatal("the upload over HTTP/3 did not end within 60 s")
		return gatedResult{}
	}
}

// statusOverHTTP3 asks the shard status of path over c and checks that it
// was answered over HTTP/3.
func statusOverHTTP3(t *testing.T, c *http.Client, proxy, path string) progressReply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, proxy+"/progress?path="+url.QueryEscape(path), nil)
	req.Header.Set("x-user-api-key", apiKey)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("status over HTTP/3: %v", err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 3 || resp.StatusCode != http.StatusOK {
		t.Fatalf("status: %s %d, want HTTP/3 200", resp.Proto, resp.StatusCode)
	}
	var p progressReply
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatalf("status body: %v", err)
	}
	return p
}

// An upload over HTTP/3, which Caddy serves to browsers on HTTPS sites, is
// tracked as one over HTTP/1.1 or HTTP/2: its status, asked over HTTP/3
// while the body streams, shows each step the body takes, then completed,
// and the origin holds the same bytes. A plain request at the WebSocket
// path over HTTP/3 is refused in the protocol's shape (426), since Caddy
// serves no WebSocket over it.
func TestUploadOverHTTP3IsTracked(t *testing.T) {
	e := newEnvWith(t, "protocol shard", "", true)
	c := http3Client(t)

	const chunk, chunks = 64 << 10, 6
	data := pattern(chunk * chunks)
	up := startGatedUpload(t, c, e.proxy, "/h3.bin", data, chunk)

	// Each chunk reaches the tracker before the next leaves the client.
	for i := 1; i < chunks; i++ {
		want := int64(i * chunk)
		deadline := time.Now().Add(30 * time.Second)
		for {
			p := statusOverHTTP3(t, c, e.proxy, "/h3.bin")
			if p.Uploaded == want {
				if p.Status != "uploading" || p.TotalSize != int64(len(data)) {
					t.Fatalf("after %d bytes of %d: %+v, want uploading with total_size %d", want, len(data), p, len(data))
				}
				break
			}
			if p.Uploaded > want || time.Now().After(deadline) {
				t.Fatalf("status %+v while the client has sent %d bytes", p, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
		up.next()
	}
	res := up.finish(t)
	if res.err != nil || res.resp.StatusCode != http.StatusCreated || res.resp.ProtoMajor != 3 {
		t.Fatalf("upload over HTTP/3: %v %v %s", res.err, res.resp, res.body)
	}
	if p := statusOverHTTP3(t, c, e.proxy, "/h3.bin"); p.Status != "completed" || p.Uploaded != int64(len(data)) || p.TotalSize != int64(len(data)) {
		t.Fatalf("after the upload: %+v, want completed with %d bytes", p, len(data))
	}
	if e.storedSHA256("/h3.bin") != sha256Hex(data) {
		t.Fatal("the origin stored different bytes")
	}

	// The WebSocket path answers HTTP/3 with the protocol's refusal.
	ws, _ := http.NewRequest(http.MethodGet, e.proxy+"/ws/progress?path=/h3.bin", nil)
	ws.Header.Set("x-user-api-key", apiKey)
	resp, err := c.Do(ws)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := `{"error":"a WebSocket handshake over HTTP/1.1, or Accept: text/event-stream, is required here; poll the status endpoint otherwise"}` + "\n"
	if resp.ProtoMajor != 3 || resp.StatusCode != http.StatusUpgradeRequired || string(b) != want {
		t.Fatalf("WebSocket path over HTTP/3: %s %d %s, want HTTP/3 426 %s", resp.Proto, resp.StatusCode, b, want)
	}
	if got := fmt.Sprint(resp.Header.Values("Connection"), resp.Header.Values("Upgrade")); got != "[] []" {
		t.Fatalf("426 over HTTP/3 with connection-specific headers %s", got)
	}
}
