package test

import (
	"bytes"
	"context"
	"encoding/json"
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

// startTusdBehindCaddy starts tusd and Caddy in front of it with block
// (such as "protocol tus"); it returns both and a tus client of Caddy.
func startTusdBehindCaddy(t testing.TB, block string) (*tusdOrigin, *env, *tusClient) {
	t.Helper()
	tusd := startTusd(t)
	e := newEnv(t, "")
	e.load(block, tusd.addr)
	return tusd, e, e.tus(t)
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
func (e *env) holdPatch(c *tusClient, p string, from int64, body []byte, first int) *held[patchResult] {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan patchResult, 1)
	h := &held[patchResult]{pw: pw, done: done, rest: body[first:], cancel: cancel}
	go func() {
		code, off, err := c.patch(ctx, p, from, pr, int64(len(body)), nil)
		done <- patchResult{code, off, err}
	}()
	e.t.Cleanup(func() { h.drop() })
	if _, err := pw.Write(body[:first]); err != nil {
		e.t.Fatalf("sending the first %d bytes of the PATCH of %s: %v", first, p, err)
	}
	want := from + int64(first)
	e.waitTus(p, func(r tusReply) bool { return r.Received == want })
	return h
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
