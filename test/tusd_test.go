package test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/tus/tusd/v2/pkg/filestore"
	tushandler "github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/memorylocker"
	"golang.org/x/exp/slog"
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
	loc, err := url.Parse(c.createURL(hdr))
	if err != nil || loc.Path == "" {
		c.t.Fatalf("creation answered Location %v", loc)
	}
	return loc.Path
}

// createURL makes an upload and returns its URL as the creation answer's
// Location gave it.
func (c *tusClient) createURL(hdr map[string]string) string {
	c.t.Helper()
	resp, err := c.do(context.Background(), http.MethodPost, "/files/", nil, 0, hdr)
	if err != nil {
		c.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusCreated {
		c.t.Fatalf("creation answered %d", resp.StatusCode)
	}
	return resp.Header.Get("Location")
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

// expectOnly fails the test unless tusd got exactly the requests the
// clients sent, one client after the other: the proxy sent it nothing of
// its own.
func (o *tusdOrigin) expectOnly(t testing.TB, clients ...*tusClient) {
	t.Helper()
	var sent []string
	for _, c := range clients {
		sent = append(sent, c.requests()...)
	}
	if got, want := fmt.Sprint(o.seen()), fmt.Sprint(sent); got != want {
		t.Fatalf("tusd got %s, the client sent %s", got, want)
	}
}

// expectStored fails the test unless tusd stored src for the upload at
// upload path p.
func (o *tusdOrigin) expectStored(t testing.TB, p string, src []byte) {
	t.Helper()
	if got := o.stored(t, p); sha256Hex(got) != sha256Hex(src) {
		t.Fatalf("tusd stored %d bytes for %s, not the %d of the source", len(got), p, len(src))
	}
}

// tusClientAt is a tus client of base, such as the tus server itself,
// past the proxy.
func tusClientAt(t testing.TB, base string, client *http.Client) *tusClient {
	return &tusClient{t: t, base: base, client: client}
}

// head asks where the upload at p stands: the answer's status, its
// Upload-Offset and its Upload-Length (-1 when it has none).
func (c *tusClient) head(p string) (code int, offset, length int64) {
	c.t.Helper()
	resp, err := c.do(context.Background(), http.MethodHead, p, nil, 0, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	offset, _ = strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
	length = -1
	if v := resp.Header.Get("Upload-Length"); v != "" {
		length, _ = strconv.ParseInt(v, 10, 64)
	}
	return resp.StatusCode, offset, length
}

// terminate DELETEs the upload at p and returns the answer's status.
func (c *tusClient) terminate(p string) int {
	c.t.Helper()
	resp, err := c.do(context.Background(), http.MethodDelete, p, nil, 0, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode
}

// patchAll sends body in one PATCH from offset from, failing the test
// unless the server answers 204 with the offset after it.
func (c *tusClient) patchAll(p string, from int64, body []byte, hdr map[string]string) {
	c.t.Helper()
	code, off, err := c.patch(context.Background(), p, from, bytes.NewReader(body), int64(len(body)), hdr)
	if err != nil {
		c.t.Fatalf("PATCH of %s at %d: %v", p, from, err)
	}
	if want := from + int64(len(body)); code != http.StatusNoContent || off != want {
		c.t.Fatalf("PATCH of %s at %d answered %d, offset %d; want 204, %d", p, from, code, off, want)
	}
}

// heldPatch is a PATCH in flight whose client sends the rest of its body
// only when told to, or drops it.
type heldPatch struct {
	pw     *io.PipeWriter
	cancel context.CancelFunc
	rest   []byte
	done   chan patchResult
	once   sync.Once
	res    patchResult
}

// patchResult is what the client got for a PATCH.
type patchResult struct {
	code   int
	offset int64
	err    error
}

// holdPatch starts a PATCH of body at offset from, sends its first bytes
// and returns once the status of the upload shows them received. The rest
// waits for finish or drop; a test that calls neither has the PATCH
// dropped as it ends.
func (e *env) holdPatch(c *tusClient, p string, from int64, body []byte, first int) *heldPatch {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	h := &heldPatch{pw: pw, cancel: cancel, rest: body[first:], done: make(chan patchResult, 1)}
	go func() {
		code, off, err := c.patch(ctx, p, from, pr, int64(len(body)), nil)
		h.done <- patchResult{code, off, err}
	}()
	e.t.Cleanup(func() { h.drop() })
	if _, err := pw.Write(body[:first]); err != nil {
		e.t.Fatalf("sending the first %d bytes of the PATCH of %s: %v", first, p, err)
	}
	want := from + int64(first)
	e.waitTus(p, func(r tusReply) bool { return r.Received == want })
	return h
}

// finish sends the rest of the body and returns what the client got.
func (h *heldPatch) finish() patchResult {
	h.once.Do(func() {
		h.pw.Write(h.rest)
		h.pw.Close()
		h.res = <-h.done
		h.cancel()
	})
	return h.res
}

// drop has the client go away mid-body, as a dropped connection does, and
// returns what it got.
func (h *heldPatch) drop() patchResult {
	h.once.Do(func() {
		h.cancel()
		h.pw.CloseWithError(errors.New("the client went away"))
		h.res = <-h.done
	})
	return h.res
}

// tusWatcher is a WebSocket watcher of a tus upload's status.
type tusWatcher struct {
	c     *websocket.Conn
	msgs  chan tusReply
	done  chan struct{}
	close websocket.CloseError
	err   error
	// taken is every message the test has taken, in order.
	taken []tusReply
}

// watchTus opens the WebSocket watcher of upload, failing the test if it
// is refused; it is closed when the test ends.
func (e *env) watchTus(upload string) *tusWatcher {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c, _, err := e.dialWS(ctx, "/tus/progress/ws?upload="+url.QueryEscape(upload), nil)
	if err != nil {
		cancel()
		e.t.Fatalf("watching %s: %v", upload, err)
	}
	w := &tusWatcher{c: c, msgs: make(chan tusReply, 1<<12), done: make(chan struct{})}
	go w.read(ctx)
	e.t.Cleanup(func() {
		cancel()
		c.CloseNow()
		<-w.done
	})
	return w
}

func (w *tusWatcher) read(ctx context.Context) {
	defer close(w.done)
	defer close(w.msgs)
	for {
		_, b, err := w.c.Read(ctx)
		if err != nil {
			if !errors.As(err, &w.close) {
				w.err = err
			}
			return
		}
		var r tusReply
		if err := json.Unmarshal(b, &r); err != nil {
			w.err = fmt.Errorf("message %q is not JSON: %v", b, err)
			return
		}
		w.msgs <- r
	}
}

// until takes messages until ok accepts one and returns it, failing the
// test if none does within 10 s or the server closes first.
func (w *tusWatcher) until(t testing.TB, what string, ok func(tusReply) bool) tusReply {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case r, open := <-w.msgs:
			if !open {
				t.Fatalf("watcher closed (%v, %v) before %s; took %+v", w.close, w.err, what, w.taken)
			}
			w.taken = append(w.taken, r)
			if ok(r) {
				return r
			}
		case <-timeout:
			t.Fatalf("no watcher message %s within 10 s; took %+v", what, w.taken)
		}
	}
}

// all takes the messages until the server closes and returns every
// message taken since the watcher opened, with the close code.
func (w *tusWatcher) all(t testing.TB) ([]tusReply, websocket.StatusCode) {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case r, open := <-w.msgs:
			if !open {
				if w.err != nil {
					t.Fatalf("watcher: %v", w.err)
				}
				return w.taken, w.close.Code
			}
			w.taken = append(w.taken, r)
		case <-timeout:
			t.Fatal("watcher was not closed within 60 s")
		}
	}
}

// tusGet sends GET pathAndQuery to the proxy with hdr and returns the
// answer's status and body.
func (e *env) tusGet(pathAndQuery string, hdr http.Header) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.proxy+pathAndQuery, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// expectErrorReply fails the test unless body is {"error":"…"}, with a
// message and nothing else.
func expectErrorReply(t testing.TB, what, body string) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("%s: %q is not JSON", what, body)
	}
	if msg, ok := m["error"].(string); !ok || msg == "" || len(m) != 1 {
		t.Fatalf(`%s: %s, want {"error":…}`, what, body)
	}
}
