package sandbox

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
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

// The tokens of two API users.
var (
	alice = []string{"Authorization", "Bearer alice"}
	bob   = []string{"Authorization", "Bearer bob"}
)

// proxy is the upload_progress handler with a sandbox protocol in front of
// a scripted origin, in a zone of its own: what a client sends passes
// through the handler, as in Caddy, and the origin answers as the test
// says. Watchers reach the handler over a real connection.
type proxy struct {
	t     *testing.T
	h     *caddymodule.Handler
	start time.Time
	// srv serves the handler over HTTP for WebSocket watchers; made on
	// first use.
	srv *httptest.Server
}

// newProxy provisions a handler with the protocol object proto (JSON);
// it is cleaned up when the test ends.
func newProxy(t *testing.T, proto string) *proxy {
	t.Helper()
	h := &caddymodule.Handler{
		Zone:         fmt.Sprintf("sandbox-%s-%d", t.Name(), zoneSeq.Add(1)),
		ProtocolsRaw: []json.RawMessage{json.RawMessage(proto)},
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
	return &proxy{t: t, h: h, start: time.Now()}
}

// The session every test follows, and its paths.
const (
	create = "/v1/sandboxes/sb/uploads"
	up     = "/v1/sandboxes/sb/uploads/u1"
	ws     = up + "/ws"
)

// createBody is a client's creation of a 40-byte file in 4 parts.
const createBody = `{"target_path":"/data/a.bin","content_length":40,"part_size":10,"kind":"file","conflict":"replace"}`

// object is the origin's session object of u1: 40 bytes in 4 parts of
// 10, accepted bytes of them accepted, next the next part it waits for.
func object(status string, accepted int64, next int) string {
	return fmt.Sprintf(`{"upload_id":"u1","kind":"file","target_path":"/data/a.bin","content_length":40,"accepted_bytes":%d,`+
		`"part_size":10,"part_count":4,"status":%q,"created_at":"2026-03-01T10:00:00Z","updated_at":"2026-03-01T10:00:00Z",`+
		`"expires_at":"2099-03-02T10:00:00Z","next_part":%d}`, accepted, status, next)
}

// lastByteTime stands, in an expected overlay, for the time of the last
// byte the proxy saw, which is later than the origin's updated_at.
const lastByteTime = "<last byte>"

// overlaid is the origin's object o as the proxy shows it: status and
// updated_at as given (updated "" keeps the origin's), received_bytes and
// parts_in_flight added.
func overlaid(o, status, updated string, received int64, inFlight string) string {
	o = regexp.MustCompile(`"status":"[^"]*"`).ReplaceAllLiteralString(o, `"status":"`+status+`"`)
	if updated != "" {
		o = regexp.MustCompile(`"updated_at":"[^"]*"`).ReplaceAllLiteralString(o, `"updated_at":"`+updated+`"`)
	}
	return strings.TrimSuffix(o, "}") + fmt.Sprintf(`,"received_bytes":%d,"parts_in_flight":%s}`, received, inFlight)
}

// errorBody is an origin's error answer.
func errorBody(code, msg string) string {
	return fmt.Sprintf(`{"error":{"code":%q,"message":%q}}`, code, msg)
}

// answer is what the origin answers: a status, a body, and headers (name,
// value pairs) besides the Content-Type and Content-Length of a JSON body.
type answer struct {
	status int
	body   string
	header []string
}

func answered(status int, body string, header ...string) answer { return answer{status, body, header} }

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

// origin is the sandbox origin: it reads the body whole, notes it, and
// answers a as reverse_proxy passes an answer on: headers, then the body.
type origin struct {
	a    answer
	body []byte
	// hold, if set, is called once the first n bytes are read, and the
	// rest waits until it returns.
	n    int
	hold func()
}

func (o *origin) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
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
	o.a.writeTo(w)
	return nil
}

func (a answer) writeTo(w http.ResponseWriter) {
	if a.body != "" {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(a.body)))
	}
	for i := 0; i+1 < len(a.header); i += 2 {
		w.Header().Set(a.header[i], a.header[i+1])
	}
	w.WriteHeader(a.status)
	// A client that went away is no error of the origin's.
	_, _ = io.WriteString(w, a.body)
}

// send passes a request through the proxy to the origin, which answers a.
// The origin must get the body, and the client the origin's answer, byte
// for byte.
func (p *proxy) send(method, target, body string, a answer, header ...string) {
	p.t.Helper()
	o := &origin{a: a}
	w := p.serve(request(method, target, body, header...), o)
	if string(o.body) != body {
		p.t.Errorf("%s %s: the origin got %d bytes, not the %d sent", method, target, len(o.body), len(body))
	}
	p.untouched(method+" "+target, w, a)
}

// untouched checks that the client got the origin's answer a unchanged.
func (p *proxy) untouched(what string, w *httptest.ResponseRecorder, a answer) {
	p.t.Helper()
	if w.Code != a.status || w.Body.String() != a.body {
		p.t.Errorf("%s: the client got %d %s\n want the origin's %d %s", what, w.Code, w.Body, a.status, a.body)
	}
	want := http.Header{}
	a.writeTo(headerOnly{want})
	for name := range want {
		if got := w.Header().Values(name); strings.Join(got, ",") != strings.Join(want.Values(name), ",") {
			p.t.Errorf("%s: the client got %s: %q, want the origin's %q", what, name, got, want.Values(name))
		}
	}
}

// headerOnly is a ResponseWriter that keeps only the headers.
type headerOnly struct{ h http.Header }

func (h headerOnly) Header() http.Header       { return h.h }
func (headerOnly) Write(b []byte) (int, error) { return len(b), nil }
func (headerOnly) WriteHeader(int)             {}

// serve passes r through the proxy to next and returns what the client got.
func (p *proxy) serve(r *http.Request, next caddyhttp.Handler) *httptest.ResponseRecorder {
	p.t.Helper()
	w := httptest.NewRecorder()
	if err := p.h.ServeHTTP(w, r, next); err != nil {
		p.t.Fatalf("%s %s: ServeHTTP: %v", r.Method, r.URL, err)
	}
	return w
}

// status asks for the session's status (GET target) as a client would;
// the origin answers 200 with the object o. It returns the body the client
// got, checking that its headers say what it is.
func (p *proxy) status(target, o string, header ...string) string {
	p.t.Helper()
	w := p.serve(request(http.MethodGet, target, "", header...), &origin{a: answered(http.StatusOK, o, "ETag", `"v1"`)})
	if w.Code != http.StatusOK {
		p.t.Fatalf("GET %s: the client got %d, want the origin's 200", target, w.Code)
	}
	if cl := w.Header().Get("Content-Length"); cl != strconv.Itoa(w.Body.Len()) {
		p.t.Errorf("GET %s: Content-Length %s for a body of %d bytes", target, cl, w.Body.Len())
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		p.t.Errorf("GET %s: Content-Type %q, want the origin's application/json", target, ct)
	}
	return w.Body.String()
}

// want checks that a GET of the session, which the origin answers with
// its object o, comes back as view (see sameView).
func (p *proxy) want(o, view string, header ...string) {
	p.t.Helper()
	p.sameView("GET "+up, p.status(up, o, header...), view)
}

// sameView checks the overlay got against want, where lastByteTime in
// want stands for a time between the start of the test and now.
func (p *proxy) sameView(what, got, want string) {
	p.t.Helper()
	if strings.Contains(want, lastByteTime) {
		m := regexp.MustCompile(`"updated_at":"([^"]*)"`).FindStringSubmatch(got)
		if m == nil {
			p.t.Fatalf("%s: no updated_at in %s", what, got)
		}
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil || at.Before(p.start.Add(-time.Second)) || at.After(time.Now()) || !strings.HasSuffix(m[1], "Z") {
			p.t.Errorf("%s: updated_at %s is not the time of the last byte, in UTC (%v)", what, m[1], err)
		}
		got = strings.Replace(got, m[0], `"updated_at":"`+lastByteTime+`"`, 1)
	}
	if got != want {
		p.t.Errorf("%s:\n got  %s\n want %s", what, got, want)
	}
	if err := uniqueKeys([]byte(got)); err != nil {
		p.t.Errorf("%s: %s: %v", what, got, err)
	}
}

// streaming sends a request whose body the origin reads n bytes of, then
// holds. It returns once those bytes are read; release lets the origin
// read the rest and answer a, and returns once the request is through
// and the client got a unchanged.
func (p *proxy) streaming(method, target, body string, n int, a answer, header ...string) (release func()) {
	p.t.Helper()
	return p.streamingRequest(request(method, target, body, header...), n, a)
}

// streamingRequest is streaming with the request r.
func (p *proxy) streamingRequest(r *http.Request, n int, a answer) (release func()) {
	p.t.Helper()
	method, target := r.Method, r.URL.String()
	read, hold := make(chan struct{}), make(chan struct{})
	var once sync.Once
	letGo := func() { once.Do(func() { close(hold) }) }
	// A test that fails while the origin holds must not leave it held.
	p.t.Cleanup(letGo)
	o := &origin{a: a, n: n, hold: func() {
		close(read)
		<-hold
	}}
	w := httptest.NewRecorder()
	done := make(chan error, 1)
	go func() { done <- p.h.ServeHTTP(w, r, o) }()
	select {
	case <-read:
	case err := <-done:
		p.t.Fatalf("%s %s ended before the origin read %d bytes: %v", method, target, n, err)
	case <-time.After(10 * time.Second):
		p.t.Fatalf("%s %s: the origin did not read %d bytes in 10 s", method, target, n)
	}
	return func() {
		p.t.Helper()
		letGo()
		select {
		case err := <-done:
			if err != nil {
				p.t.Fatalf("%s %s: ServeHTTP = %v", method, target, err)
			}
			p.untouched(method+" "+target, w, a)
		case <-time.After(10 * time.Second):
			p.t.Fatalf("%s %s did not end in 10 s", method, target)
		}
	}
}

// server serves the handler over HTTP on 127.0.0.1, for watchers. A
// request it does not answer itself is the origin's: 502.
func (p *proxy) server() *httptest.Server {
	if p.srv == nil {
		p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			caddyhttp.NewTestReplacer(r)
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				return caddyhttp.Error(http.StatusBadGateway, errors.New("no origin here"))
			})
			if err := p.h.ServeHTTP(w, r, next); err != nil {
				var he caddyhttp.HandlerError
				errors.As(err, &he)
				http.Error(w, err.Error(), cmp.Or(he.StatusCode, http.StatusInternalServerError))
			}
		}))
		p.t.Cleanup(p.srv.Close)
	}
	return p.srv
}

// watcher is a WebSocket client following a session.
type watcher struct {
	t *testing.T
	c *websocket.Conn
}

// dial opens a WebSocket at path with header (name, value pairs).
func (p *proxy) dial(path string, header ...string) (*websocket.Conn, *http.Response, error) {
	h := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return websocket.Dial(ctx, "ws"+strings.TrimPrefix(p.server().URL, "http")+path, &websocket.DialOptions{HTTPHeader: h})
}

// watch opens a watcher of the session at path; it is closed when the
// test ends.
func (p *proxy) watch(path string, header ...string) *watcher {
	p.t.Helper()
	c, resp, err := p.dial(path, header...)
	if err != nil {
		body := ""
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			body = fmt.Sprintf("%d %s", resp.StatusCode, b)
		}
		p.t.Fatalf("watching %s: %v %s", path, err, body)
	}
	p.t.Cleanup(func() { c.CloseNow() })
	return &watcher{t: p.t, c: c}
}

// refused opens a WebSocket at path that must be refused before the
// upgrade, and returns the HTTP status and body.
func (p *proxy) refused(path string, header ...string) (int, string) {
	p.t.Helper()
	c, resp, err := p.dial(path, header...)
	if err == nil {
		c.CloseNow()
		p.t.Fatalf("a watcher of %s was accepted", path)
	}
	if resp == nil {
		p.t.Fatalf("watching %s: %v, and no answer", path, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		p.t.Errorf("watching %s: refused with Content-Type %q, want application/json", path, ct)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSuffix(string(b), "\n")
}

// next reads the watcher's next message, within 10 s.
func (w *watcher) next() string {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, b, err := w.c.Read(ctx)
	if err != nil {
		w.t.Fatalf("reading the watcher's next message: %v", err)
	}
	return string(b)
}

// until reads messages until one has status, within 10 s and 100
// messages, and returns it.
func (w *watcher) until(status string) string {
	w.t.Helper()
	for range 100 {
		if m := w.next(); strings.Contains(m, `"status":"`+status+`"`) {
			return m
		}
	}
	w.t.Fatalf("no message with status %s in 100", status)
	return ""
}

// closed reads until the server closes the connection, within 10 s and
// 100 messages, and returns the close status and reason.
func (w *watcher) closed() (websocket.StatusCode, string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 100 {
		_, _, err := w.c.Read(ctx)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			w.t.Fatalf("the watcher ended with %v, not a close", err)
		}
		return ce.Code, ce.Reason
	}
	w.t.Fatal("no close in 100 messages")
	return 0, ""
}

func itoa(n int) string { return strconv.Itoa(n) }
