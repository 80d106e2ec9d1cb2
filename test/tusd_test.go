package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"golang.org/x/exp/slog"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tus/tusd/v2/pkg/filestore"
	tushandler "github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/memorylocker"
)

// tusdOrigin is the real tusd (its handler with the file store) on a
// loopback port, behind a middleware that notes every request it gets, so
// that a test can prove the proxy sent it nothing the client did not.
type tusdOrigin struct {
	addr string
	dir  string

	mu       sync.Mutex
	requests []string // "METHOD /path"
}

func startTusd(t testing.TB) *tusdOrigin {
	t.Helper()
	o := &tusdOrigin{dir: t.TempDir()}
	composer := tushandler.NewStoreComposer()
	filestore.New(o.dir).UseIn(composer)
	memorylocker.New().UseIn(composer)
	h, err := tushandler.NewHandler(tushandler.Config{
		BasePath:      "/files/",
		StoreComposer: composer,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.requests = append(o.requests, r.Method+" "+r.URL.Path)
		o.mu.Unlock()
		http.StripPrefix("/files", h).ServeHTTP(w, r)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	o.addr = l.Addr().String()
	return o
}

// seen returns the requests tusd got so far.
func (o *tusdOrigin) seen() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.requests...)
}

// stored returns the bytes tusd stored for the upload at upload path p.
func (o *tusdOrigin) stored(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(o.dir, path.Base(p)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tusClient is a minimal tus 1.0 client, enough for the tests to decide
// exactly what goes over the wire; it notes every request it sends.
type tusClient struct {
	t      testing.TB
	base   string // the proxy's URL
	client *http.Client

	mu   sync.Mutex
	sent []string
}

func (e *env) tus(t testing.TB) *tusClient {
	return &tusClient{t: t, base: e.proxy, client: e.client}
}

// do sends one tus request and returns the answer, its body read.
func (c *tusClient) do(ctx context.Context, method, p string, body io.Reader, size int64, hdr map[string]string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+p, body)
	if err != nil {
		return nil, err
	}
	req.ContentLength = size
	req.Header.Set("Tus-Resumable", "1.0.0")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c.mu.Lock()
	c.sent = append(c.sent, method+" "+p)
	c.mu.Unlock()
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

// requests returns the requests the client sent so far.
func (c *tusClient) requests() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.sent...)
}

// create makes an upload and returns its path.
func (c *tusClient) create(hdr map[string]string) string {
	c.t.Helper()
	resp, err := c.do(context.Background(), http.MethodPost, "/files/", nil, 0, hdr)
	if err != nil {
		c.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusCreated {
		c.t.Fatalf("creation answered %d", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Path == "" {
		c.t.Fatalf("creation answered Location %q", resp.Header.Get("Location"))
	}
	return loc.Path
}

// patch sends body from offset and returns the answer's status and offset.
func (c *tusClient) patch(ctx context.Context, p string, offset int64, body io.Reader, size int64, hdr map[string]string) (int, int64, error) {
	h := map[string]string{"Upload-Offset": strconv.FormatInt(offset, 10), "Content-Type": "application/offset+octet-stream"}
	for k, v := range hdr {
		h[k] = v
	}
	resp, err := c.do(ctx, http.MethodPatch, p, body, size, h)
	if err != nil {
		return 0, 0, err
	}
	off, _ := strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
	return resp.StatusCode, off, nil
}

// tusReply is the product's tus status reply.
type tusReply struct {
	Upload    string            `json:"upload"`
	Length    int64             `json:"length"`
	Offset    int64             `json:"offset"`
	Received  int64             `json:"received"`
	Status    string            `json:"status"`
	Metadata  map[string]string `json:"metadata"`
	ExpiresAt string            `json:"expires_at"`
	Error     string            `json:"error"`
}

// tusStatus asks the status endpoint about upload; it returns the status
// code, the reply and its body.
func (e *env) tusStatus(upload string) (int, tusReply, string) {
	e.t.Helper()
	resp, err := e.client.Get(e.proxy + "/tus/progress?upload=" + url.QueryEscape(upload))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r tusReply
	if err := json.Unmarshal(b, &r); err != nil {
		e.t.Fatalf("tus status %d is not JSON: %q", resp.StatusCode, b)
	}
	return resp.StatusCode, r, string(b)
}

// waitTus polls the tus status of upload until ok accepts it, failing the
// test after 10 s.
func (e *env) waitTus(upload string, ok func(tusReply) bool) tusReply {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, r, _ := e.tusStatus(upload)
		if ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("tus status of %s never got there; last: %+v", upload, r)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A 64 MiB upload in one PATCH to tusd, held halfway: the status shows it
// uploading with what the proxy read, then completed with tusd's offset;
// tusd stores the source byte for byte and got only the client's requests.
func TestTusOnePatchSmoke(t *testing.T) {
	tusd := startTusd(t)
	e := newEnv(t, "")
	e.load("protocol tus", tusd.addr)
	c := e.tus(t)

	const size = 64 << 20
	src := pattern(size)
	up := c.create(map[string]string{"Upload-Length": fmt.Sprint(size), "Upload-Metadata": "filename dmlkZW8ubXA0"})
	code, r, body := e.tusStatus(up)
	if code != 200 || r.Status != "created" || r.Length != size || r.Offset != 0 || r.Received != 0 || r.Metadata["filename"] != "video.mp4" {
		t.Fatalf("after creation: %d %s", code, body)
	}

	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		code, off, err := c.patch(context.Background(), up, 0, pr, size, nil)
		if err == nil && (code != 204 || off != size) {
			err = fmt.Errorf("PATCH answered %d, offset %d", code, off)
		}
		done <- err
	}()
	half := int64(size / 2)
	if _, err := pw.Write(src[:half]); err != nil {
		t.Fatal(err)
	}
	mid := e.waitTus(up, func(r tusReply) bool { return r.Received >= half })
	if mid.Status != "uploading" || mid.Offset != 0 || mid.Received > half {
		t.Fatalf("halfway: %+v", mid)
	}
	if _, err := io.Copy(pw, bytes.NewReader(src[half:])); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	code, r, body = e.tusStatus(up)
	if code != 200 || r.Status != "completed" || r.Offset != size || r.Received != size || r.Error != "" {
		t.Fatalf("after the PATCH: %d %s", code, body)
	}
	if got := tusd.stored(t, up); !bytes.Equal(got, src) {
		t.Fatalf("tusd stored %d bytes, not the source", len(got))
	}
	if got, want := fmt.Sprint(tusd.seen()), fmt.Sprint(c.requests()); got != want {
		t.Fatalf("tusd got %s, the client sent %s", got, want)
	}
	if code, r, body := e.tusStatus("/files/unknown"); code != 404 || r.Status != "not_exist" || r.Upload != "/files/unknown" {
		t.Fatalf("unknown upload: %d %s", code, body)
	}
}
