package tus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-upload-progress/caddy-upload-progress/caddymodule"
)

var zoneSeq atomic.Int64

// proxy is the upload_progress handler with a tus protocol in front of a
// scripted tus server, in a zone of its own: what a client sends passes
// through the handler, as in Caddy, and the server answers as the test
// says.
type proxy struct {
	t *testing.T
	h *caddymodule.Handler
}

// newProxy provisions a handler with the protocol object proto (JSON);
// it is cleaned up when the test ends.
func newProxy(t *testing.T, proto string) *proxy {
	t.Helper()
	h := &caddymodule.Handler{
		Zone:         fmt.Sprintf("tus-%s-%d", t.Name(), zoneSeq.Add(1)),
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
	return &proxy{t: t, h: h}
}

// answer is what the tus server answers: a status and headers (name,
// value pairs).
type answer struct {
	status int
	header []string
}

func answered(status int, header ...string) answer { return answer{status, header} }

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

// server is the tus server: it reads the body whole, notes it, and answers a.
type server struct {
	a    answer
	body []byte
	// hold, if set, is called once the first n bytes are read, and the
	// rest waits until it returns.
	n    int
	hold func()
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	if s.hold != nil {
		first := make([]byte, s.n)
		if _, err := io.ReadFull(r.Body, first); err != nil {
			return caddyhttp.Error(http.StatusBadGateway, err)
		}
		s.body = first
		s.hold()
	}
	rest, err := io.ReadAll(r.Body)
	if err != nil {
		return caddyhttp.Error(http.StatusBadGateway, err)
	}
	s.body = append(s.body, rest...)
	for i := 0; i+1 < len(s.a.header); i += 2 {
		w.Header().Set(s.a.header[i], s.a.header[i+1])
	}
	w.WriteHeader(s.a.status)
	return nil
}

// send passes a request through the proxy to the tus server, which
// answers a. The client must get the server's answer and the server the
// body, unchanged.
func (p *proxy) send(method, target, body string, a answer, header ...string) {
	p.t.Helper()
	s := &server{a: a}
	p.serve(request(method, target, body, header...), s)
	if string(s.body) != body {
		p.t.Errorf("%s %s: the server got %d bytes, not the %d sent", method, target, len(s.body), len(body))
	}
}

// serve passes r through the proxy to next and checks that the client
// got the server's answer.
func (p *proxy) serve(r *http.Request, s *server) {
	p.t.Helper()
	w := httptest.NewRecorder()
	if err := p.h.ServeHTTP(w, r, s); err != nil {
		p.t.Fatalf("%s %s: ServeHTTP: %v", r.Method, r.URL, err)
	}
	if w.Code != s.a.status {
		p.t.Fatalf("%s %s: the client got %d, want the server's %d", r.Method, r.URL, w.Code, s.a.status)
	}
	for i := 0; i+1 < len(s.a.header); i += 2 {
		if got := w.Header().Get(s.a.header[i]); got != s.a.header[i+1] {
			p.t.Errorf("%s %s: the client got %s: %q, want the server's %q", r.Method, r.URL, s.a.header[i], got, s.a.header[i+1])
		}
	}
}

// unanswered passes a request through the proxy to a tus server it
// cannot reach: the handler chain fails before any answer.
func (p *proxy) unanswered(method, target, body string, header ...string) {
	p.t.Helper()
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		_, _ = io.Copy(io.Discard, r.Body)
		return caddyhttp.Error(http.StatusBadGateway, errors.New("dial tcp 127.0.0.1:1: connection refused"))
	})
	err := p.h.ServeHTTP(httptest.NewRecorder(), request(method, target, body, header...), next)
	var he caddyhttp.HandlerError
	if !errors.As(err, &he) || he.StatusCode != http.StatusBadGateway {
		p.t.Fatalf("%s %s: ServeHTTP = %v, want the proxy's 502 error passed on", method, target, err)
	}
}

// streaming sends a request whose body the tus server reads n bytes of,
// then holds. It returns once those bytes are read; release lets the
// server read the rest and answer a, and returns once the request is
// through.
func (p *proxy) streaming(method, target, body string, n int, a answer, header ...string) (release func()) {
	p.t.Helper()
	read, hold := make(chan struct{}), make(chan struct{})
	var once sync.Once
	letGo := func() { once.Do(func() { close(hold) }) }
	// A test that fails while the server holds must not leave it held.
	p.t.Cleanup(letGo)
	s := &server{a: a, n: n, hold: func() {
		close(read)
		<-hold
	}}
	r := request(method, target, body, header...)
	w := httptest.NewRecorder()
	done := make(chan error, 1)
	go func() { done <- p.h.ServeHTTP(w, r, s) }()
	select {
	case <-read:
	case err := <-done:
		p.t.Fatalf("%s %s ended before the server read %d bytes: %v", method, target, n, err)
	case <-time.After(10 * time.Second):
		p.t.Fatalf("%s %s: the server did not read %d bytes in 10 s", method, target, n)
	}
	return func() {
		p.t.Helper()
		letGo()
		select {
		case err := <-done:
			if err != nil || w.Code != a.status {
				p.t.Fatalf("%s %s: ServeHTTP = %v, client got %d; want the server's %d", method, target, err, w.Code, a.status)
			}
		case <-time.After(10 * time.Second):
			p.t.Fatalf("%s %s did not end in 10 s", method, target)
		}
	}
}

// status asks the REST status endpoint about upload, as a client would
// (header: name, value pairs), and returns the HTTP status and the reply
// without its newline.
func (p *proxy) status(upload string, header ...string) (int, string) {
	p.t.Helper()
	target := "/tus/progress"
	if upload != "" {
		target += "?upload=" + url.QueryEscape(upload)
	}
	w := httptest.NewRecorder()
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		p.t.Errorf("the status request %s was passed on", target)
		return nil
	})
	if err := p.h.ServeHTTP(w, request(http.MethodGet, target, "", header...), next); err != nil {
		p.t.Fatalf("status %s: %v", target, err)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		p.t.Errorf("status %s: Content-Type %q, want application/json", target, ct)
	}
	return w.Code, strings.TrimSuffix(w.Body.String(), "\n")
}

// want checks the status reply of upload: 200 and exactly reply.
func (p *proxy) want(upload, reply string, header ...string) {
	p.t.Helper()
	code, got := p.status(upload, header...)
	if code != http.StatusOK || got != reply {
		p.t.Errorf("status of %s: %d\n got  %s\n want 200 %s", upload, code, got, reply)
	}
}

// wantNone checks that the proxy knows no upload at upload.
func (p *proxy) wantNone(upload string, header ...string) {
	p.t.Helper()
	code, got := p.status(upload, header...)
	if want := `{"upload":"` + upload + `","status":"not_exist"}`; code != http.StatusNotFound || got != want {
		p.t.Errorf("status of %s: %d %s, want 404 %s", upload, code, got, want)
	}
}
