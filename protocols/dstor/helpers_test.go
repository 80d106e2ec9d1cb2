package dstor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/coder/websocket"

	"github.com/caddy-upload-progress/caddy-upload-progress/caddymodule"
)

var zoneSeq atomic.Int64

// The credentials of the tests' two users: the Authorization header
// dStor's clients send with every request.
var (
	alice = []string{"Authorization", "Bearer alice-key"}
	bob   = []string{"Authorization", "Bearer bob-key"}
)

// proxy is the upload_progress handler with a dstor protocol in front of
// a scripted dStor origin, in a zone of its own: what a client sends passes
// through the handler, as in Caddy, and the origin answers as the test
// says.
type proxy struct {
	t *testing.T
	h *caddymodule.Handler
}

// newProxy provisions a handler with the protocol object proto (JSON),
// tuned by tune; it is cleaned up when the test ends.
func newProxy(t *testing.T, proto string, tune ...func(*caddymodule.Handler)) *proxy {
	t.Helper()
	h := &caddymodule.Handler{
		Zone:         fmt.Sprintf("dstor-%s-%d", t.Name(), zoneSeq.Add(1)),
		ProtocolsRaw: []json.RawMessage{json.RawMessage(proto)},
	}
	for _, f := range tune {
		f(h)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := h.Provision(ctx); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Cleanup(); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	})
	if err := h.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return &proxy{t: t, h: h}
}

// answer is what the origin answers: a status, a body and headers (name,
// value pairs).
type answer struct {
	status int
	body   string
	header []string
}

func answered(status int, body string, header ...string) answer {
	return answer{status, body, append([]string{"Content-Type", "application/json"}, header...)}
}

// accepted is the origin's answer to a chunk it took.
var accepted = answered(http.StatusOK, `{"message":"ok"}`)

// request is a client's request as Caddy hands it to handlers; header is
// name, value pairs.
func request(method, target, body string, header ...string) *http.Request {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	caddyhttp.NewTestReplacer(r)
	return r
}

// origin is the dStor origin: it reads the body whole, notes it and the
// request's headers, and answers a.
type origin struct {
	a      answer
	body   []byte
	header http.Header
	called bool
	// hold, if set, is called once the first n bytes are read, and the
	// rest waits until it returns.
	n    int
	hold func()
}

func (o *origin) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	o.called, o.header = true, r.Header.Clone()
	if o.hold != nil {
		first := make([]byte, o.n)
		if _, err := io.ReadFull(r.Body, first); err != nil {
			return caddyhttp.Error(http.StatusBadGateway, err)
		}
		o.body = first
		o.hold()
	}
	rest, err := io.ReadAll(r.Body)
	if err != nil {
		return caddyhttp.Error(http.StatusBadGateway, err)
	}
	o.body = append(o.body, rest...)
	for i := 0; i+1 < len(o.a.header); i += 2 {
		w.Header().Set(o.a.header[i], o.a.header[i+1])
	}
	w.WriteHeader(o.a.status)
	_, _ = io.WriteString(w, o.a.body)
	return nil
}

// send passes a request through the proxy to the origin, which answers
// a. The origin must get the body and the client the answer, unchanged;
// the origin is returned for more checks.
func (p *proxy) send(method, target, body string, a answer, header ...string) *origin {
	p.t.Helper()
	o := &origin{a: a}
	w := httptest.NewRecorder()
	if err := p.h.ServeHTTP(w, request(method, target, body, header...), o); err != nil {
		p.t.Fatalf("%s %s: ServeHTTP: %v", method, target, err)
	}
	if !o.called || string(o.body) != body {
		p.t.Fatalf("%s %s: the origin got %d bytes (called %v), not the %d sent", method, target, len(o.body), o.called, len(body))
	}
	if w.Code != a.status || w.Body.String() != a.body {
		p.t.Fatalf("%s %s: the client got %d %s, want the origin's %d %s", method, target, w.Code, w.Body, a.status, a.body)
	}
	return o
}

// token asks for a token of chunks chunks into folder, as JSON, and the
// origin gives tok.
func (p *proxy) token(tok string, chunks int, folder string, header ...string) {
	p.t.Helper()
	body := fmt.Sprintf(`{"chunks_number":%d,"folder_path":%q}`, chunks, folder)
	p.send("POST", "/v1/upload/get-token", body, answered(http.StatusOK, `{"message":"ok","token":"`+tok+`"}`),
		append([]string{"Content-Type", "application/json"}, header...)...)
}

// chunk sends a chunk under tok, answered a.
func (p *proxy) chunk(tok string, c chunkBody, a answer, header ...string) *origin {
	p.t.Helper()
	return p.send("POST", "/v1/upload/", c.body, a, append([]string{HeaderToken, tok, "Content-Type", c.contentType}, header...)...)
}

// unanswered passes a chunk through the proxy to an origin it cannot
// reach: the handler chain fails before any answer.
func (p *proxy) unanswered(tok string, c chunkBody, header ...string) {
	p.t.Helper()
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		_, _ = io.Copy(io.Discard, r.Body)
		return caddyhttp.Error(http.StatusBadGateway, errors.New("dial tcp 127.0.0.1:1: connection refused"))
	})
	r := request("POST", "/v1/upload/", c.body, append([]string{HeaderToken, tok, "Content-Type", c.contentType}, header...)...)
	err := p.h.ServeHTTP(httptest.NewRecorder(), r, next)
	var he caddyhttp.HandlerError
	if !errors.As(err, &he) || he.StatusCode != http.StatusBadGateway {
		p.t.Fatalf("chunk: ServeHTTP = %v, want the proxy's 502 error passed on", err)
	}
}

// streaming sends a chunk under tok whose body the origin reads n bytes
// of, then holds. It returns once those bytes are read; release lets the
// origin read the rest and answer a, and returns once the request is
// through.
func (p *proxy) streaming(tok string, c chunkBody, n int, a answer, header ...string) (release func()) {
	p.t.Helper()
	read, hold := make(chan struct{}), make(chan struct{})
	var once sync.Once
	letGo := func() { once.Do(func() { close(hold) }) }
	// A test that fails while the origin holds must not leave it held.
	p.t.Cleanup(letGo)
	o := &origin{a: a, n: n, hold: func() {
		close(read)
		<-hold
	}}
	r := request("POST", "/v1/upload/", c.body, append([]string{HeaderToken, tok, "Content-Type", c.contentType}, header...)...)
	w := httptest.NewRecorder()
	done := make(chan error, 1)
	go func() { done <- p.h.ServeHTTP(w, r, o) }()
	select {
	case <-read:
	case err := <-done:
		p.t.Fatalf("chunk ended before the origin read %d bytes: %v", n, err)
	case <-time.After(10 * time.Second):
		p.t.Fatalf("chunk: the origin did not read %d bytes in 10 s", n)
	}
	return func() {
		p.t.Helper()
		letGo()
		select {
		case err := <-done:
			if err != nil || w.Code != a.status || string(o.body) != c.body {
				p.t.Fatalf("chunk: ServeHTTP = %v, client got %d, origin %d of %d bytes; want the origin's %d", err, w.Code, len(o.body), len(c.body), a.status)
			}
		case <-time.After(10 * time.Second):
			p.t.Fatalf("chunk did not end in 10 s")
		}
	}
}

// statusRequest is a get-status request for tok ("": no token header),
// with alice's credential unless header gives one.
func statusRequest(method, tok string, header ...string) *http.Request {
	h := append([]string(nil), header...)
	if !hasHeader(h, "Authorization") {
		h = append(h, alice...)
	}
	if tok != "" {
		h = append(h, HeaderToken, tok)
	}
	return request(method, "/v1/upload/get-status/", "", h...)
}

func hasHeader(header []string, name string) bool {
	for i := 0; i < len(header); i += 2 {
		if strings.EqualFold(header[i], name) {
			return true
		}
	}
	return false
}

// status asks get-status about tok as a client would, while the proxy
// answers it itself, and returns the HTTP status and the reply without
// its newline.
func (p *proxy) status(tok string, header ...string) (int, string) {
	p.t.Helper()
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		p.t.Errorf("get-status of %s was passed to the origin", tok)
		return nil
	})
	w := httptest.NewRecorder()
	if err := p.h.ServeHTTP(w, statusRequest("GET", tok, header...), next); err != nil {
		p.t.Fatalf("get-status of %s: %v", tok, err)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		p.t.Errorf("get-status of %s: Content-Type %q, want application/json", tok, ct)
	}
	return w.Code, strings.TrimSuffix(w.Body.String(), "\n")
}

// want checks the proxy's own get-status reply of tok: 200 and exactly reply.
func (p *proxy) want(tok, reply string, header ...string) {
	p.t.Helper()
	code, got := p.status(tok, header...)
	if code != http.StatusOK || got != reply {
		p.t.Errorf("get-status of %s: %d\n got  %s\n want 200 %s", tok, code, got, reply)
	}
}

// notFoundReply is the proxy's answer for a token it does not know.
const notFoundReply = `{"status":"ERROR","errorExplanation":"upload not found","errorAtStage":"UPLOADING"}`

// wantNotFound checks that the proxy knows no upload of tok for the
// credential.
func (p *proxy) wantNotFound(tok string, header ...string) {
	p.t.Helper()
	code, got := p.status(tok, header...)
	if code != http.StatusNotFound || got != notFoundReply {
		p.t.Errorf("get-status of %s: %d %s, want 404 %s", tok, code, got, notFoundReply)
	}
}

// statusFromOrigin asks get-status about tok once every chunk is in: the
// request goes to the origin, which answers a; it returns what the client
// got (status, body as it came) and the origin.
func (p *proxy) statusFromOrigin(tok string, a answer, header ...string) (int, string, *origin) {
	p.t.Helper()
	o := &origin{a: a}
	w := httptest.NewRecorder()
	if err := p.h.ServeHTTP(w, statusRequest("GET", tok, header...), o); err != nil {
		p.t.Fatalf("get-status of %s: %v", tok, err)
	}
	if !o.called {
		p.t.Fatalf("get-status of %s was not passed to the origin", tok)
	}
	if cl := w.Header().Get("Content-Length"); cl != "" && cl != fmt.Sprint(w.Body.Len()) {
		p.t.Errorf("get-status of %s: Content-Length %s for a %d-byte body", tok, cl, w.Body.Len())
	}
	return w.Code, w.Body.String(), o
}

// file is a file of a chunk: its path in the folder and its size.
type file struct {
	path string
	size int
}

// chunkBody is a chunk's multipart body and its content type.
type chunkBody struct {
	body, contentType string
}

// newChunk builds a chunk of files, with a fixed boundary.
func newChunk(files ...file) chunkBody {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	_ = mw.SetBoundary("dstor-chunk-boundary")
	for _, f := range files {
		fw, _ := mw.CreateFormFile("file", f.path)
		_, _ = fw.Write(bytes.Repeat([]byte{'x'}, f.size))
	}
	_ = mw.Close()
	return chunkBody{b.String(), mw.FormDataContentType()}
}

// into is where a chunk's body is into the content of its nth file (from
// 1), after k bytes of it.
func (c chunkBody) into(nth, k int) int {
	at := 0
	for range nth {
		i := strings.Index(c.body[at:], "\r\n\r\n")
		if i < 0 {
			panic("no such file in the chunk")
		}
		at += i + 4
	}
	return at + k
}

// uploading is the proxy's UPLOADING reply for the counts given.
func uploading(chunks, uploaded, inFlight, bytes, files int, current, folder string) string {
	s := fmt.Sprintf(`{"status":"UPLOADING","chunksNumber":%d,"chunksUploaded":%d,"chunksInFlight":%d,"bytesUploaded":%d,"filesUploaded":%d`, chunks, uploaded, inFlight, bytes, files)
	if current != "" {
		s += `,"currentFile":"` + current + `"`
	}
	if folder != "" {
		s += `,"folderPath":"` + folder + `"`
	}
	return s + "}"
}

// failing is uploading as an ERROR reply: a rejected chunk, why.
func failing(why string, chunks, uploaded, inFlight, bytes, files int, folder string) string {
	s := uploading(chunks, uploaded, inFlight, bytes, files, "", folder)
	return `{"status":"ERROR","errorExplanation":"` + why + `","errorAtStage":"UPLOADING",` + strings.TrimPrefix(s, `{"status":"UPLOADING",`)
}

// server serves the proxy over HTTP on 127.0.0.1, in front of next, for
// WebSocket watchers; it is closed when the test ends.
func (p *proxy) server(next caddyhttp.Handler) *httptest.Server {
	p.t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caddyhttp.NewTestReplacer(r)
		if err := p.h.ServeHTTP(w, r, next); err != nil {
			var he caddyhttp.HandlerError
			code := http.StatusInternalServerError
			if errors.As(err, &he) {
				code = he.StatusCode
			}
			w.WriteHeader(code)
		}
	}))
	p.t.Cleanup(srv.Close)
	return srv
}

// watcher is a WebSocket client of get-status/ws.
type watcher struct {
	t *testing.T
	c *websocket.Conn
}

// watch opens a watcher of tok at srv with alice's credential unless
// header gives one.
func watch(t *testing.T, srv *httptest.Server, tok string, header ...string) *watcher {
	t.Helper()
	h := http.Header{}
	if !hasHeader(header, "Authorization") {
		header = append(header, alice...)
	}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	if tok != "" {
		h.Set(HeaderToken, tok)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/v1/upload/get-status/ws", &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatalf("watching %s: %v (%v)", tok, err, resp)
	}
	t.Cleanup(func() { c.CloseNow() })
	return &watcher{t: t, c: c}
}

// refused opens a watcher of tok at srv that must be refused before the
// upgrade, and returns the status and body.
func refused(t *testing.T, srv *httptest.Server, tok string, header ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	if tok != "" {
		h.Set(HeaderToken, tok)
	}
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/v1/upload/get-status/ws", &websocket.DialOptions{HTTPHeader: h})
	if err == nil {
		c.CloseNow()
		t.Fatalf("watching %s was not refused", tok)
	}
	if resp == nil {
		t.Fatalf("watching %s: %v, no answer", tok, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSuffix(string(b), "\n")
}

// next reads the watcher's next message, within 10 s.
func (w *watcher) next() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, b, err := w.c.Read(ctx)
	return string(b), err
}

// until reads messages until one is reply, within bound messages; it
// fails the test if the connection ends first.
func (w *watcher) until(reply string, bound int) {
	w.t.Helper()
	var got []string
	for range bound {
		msg, err := w.next()
		if err != nil {
			w.t.Fatalf("watcher: %v before %s; got %q", err, reply, got)
		}
		if msg == reply {
			return
		}
		got = append(got, msg)
	}
	w.t.Fatalf("watcher: no %s in %d messages: %q", reply, bound, got)
}

// closed checks that the watcher is closed next, with code and reason.
func (w *watcher) closed(code websocket.StatusCode, reason string) {
	w.t.Helper()
	msg, err := w.next()
	if err == nil {
		w.t.Fatalf("watcher: got %s, want a close %d", msg, code)
	}
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != code || ce.Reason != reason {
		w.t.Fatalf("watcher closed with %v, want %d %q", err, code, reason)
	}
}
