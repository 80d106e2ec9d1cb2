package protocoltest

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// Serve passes r through the proxy to next and returns what the client
// got.
func (p *Proxy) Serve(r *http.Request, next caddyhttp.Handler) *httptest.ResponseRecorder {
	p.T.Helper()
	w := httptest.NewRecorder()
	if err := p.H.ServeHTTP(w, r, next); err != nil {
		p.T.Fatalf("%s %s: ServeHTTP: %v", r.Method, r.URL, err)
	}
	return w
}

// Send passes a request through the proxy to the origin, which answers
// a. The origin must get the body, and the client the origin's answer,
// unchanged; the origin is returned for more checks.
func (p *Proxy) Send(method, target, body string, a Answer, header ...string) *Origin {
	p.T.Helper()
	o := &Origin{A: a}
	w := p.Serve(Request(method, target, body, header...), o)
	if !o.Called || string(o.Body) != body {
		p.T.Fatalf("%s %s: the origin got %d bytes (called %v), not the %d sent", method, target, len(o.Body), o.Called, len(body))
	}
	p.untouched(method+" "+target, w, a)
	return o
}

// untouched checks that the client got the origin's answer a unchanged.
func (p *Proxy) untouched(what string, w *httptest.ResponseRecorder, a Answer) {
	p.T.Helper()
	if w.Code != a.Status || w.Body.String() != a.Body {
		p.T.Fatalf("%s: the client got %d %s\n want the origin's %d %s", what, w.Code, w.Body, a.Status, a.Body)
	}
	want := a.header()
	for name := range want {
		if got := w.Header().Values(name); strings.Join(got, ",") != strings.Join(want.Values(name), ",") {
			p.T.Errorf("%s: the client got %s: %q, want the origin's %q", what, name, got, want.Values(name))
		}
	}
}

// Unanswered passes a request through the proxy to an origin it cannot
// reach: the handler chain fails before any answer, and the proxy must
// pass the error on.
func (p *Proxy) Unanswered(method, target, body string, header ...string) {
	p.T.Helper()
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		_, _ = io.Copy(io.Discard, r.Body)
		return caddyhttp.Error(http.StatusBadGateway, errors.New("dial tcp 127.0.0.1:1: connection refused"))
	})
	err := p.H.ServeHTTP(httptest.NewRecorder(), Request(method, target, body, header...), next)
	var he caddyhttp.HandlerError
	if !errors.As(err, &he) || he.StatusCode != http.StatusBadGateway {
		p.T.Fatalf("%s %s: ServeHTTP = %v, want the proxy's 502 error passed on", method, target, err)
	}
}

// Streaming sends a request whose body the origin reads n bytes of, then
// holds. It returns once those bytes are read; release lets the origin
// read the rest and answer a, and returns once the request is through,
// the origin got the whole body and the client a unchanged.
func (p *Proxy) Streaming(method, target, body string, n int, a Answer, header ...string) (release func()) {
	p.T.Helper()
	end := p.held(Request(method, target, body, header...), n, a)
	return func() {
		p.T.Helper()
		if o := end(); string(o.Body) != body {
			p.T.Fatalf("%s %s: the origin got %d bytes, not the %d sent", method, target, len(o.Body), len(body))
		}
	}
}

// StreamingRequest is Streaming with the request r, as the test made it;
// release checks what the client got.
func (p *Proxy) StreamingRequest(r *http.Request, n int, a Answer) (release func()) {
	p.T.Helper()
	end := p.held(r, n, a)
	return func() {
		p.T.Helper()
		end()
	}
}

// held starts r, holding its body after n bytes until end is called; end
// returns the origin once the request is through and the client got a
// unchanged.
func (p *Proxy) held(r *http.Request, n int, a Answer) (end func() *Origin) {
	p.T.Helper()
	what := r.Method + " " + r.URL.String()
	read, hold := make(chan struct{}), make(chan struct{})
	var once sync.Once
	letGo := func() { once.Do(func() { close(hold) }) }
	// A test that fails while the origin holds must not leave it held.
	p.T.Cleanup(letGo)
	o := &Origin{A: a, n: n, hold: func() {
		close(read)
		<-hold
	}}
	w := httptest.NewRecorder()
	done := make(chan error, 1)
	go func() { done <- p.H.ServeHTTP(w, r, o) }()
	select {
	case <-read:
	case err := <-done:
		p.T.Fatalf("%s ended before the origin read %d bytes: %v", what, n, err)
	case <-time.After(10 * time.Second):
		p.T.Fatalf("%s: the origin did not read %d bytes in 10 s", what, n)
	}
	return func() *Origin {
		p.T.Helper()
		letGo()
		select {
		case err := <-done:
			if err != nil {
				p.T.Fatalf("%s: ServeHTTP = %v", what, err)
			}
			p.untouched(what, w, a)
		case <-time.After(10 * time.Second):
			p.T.Fatalf("%s did not end in 10 s", what)
		}
		return o
	}
}

// Status sends r, a request the proxy answers itself (a status request),
// as a client would, and returns the HTTP status and the reply without
// its newline; the reply must be JSON, and r must not reach the origin.
func (p *Proxy) Status(r *http.Request) (int, string) {
	p.T.Helper()
	what := r.Method + " " + r.URL.String()
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		p.T.Errorf("%s was passed to the origin", what)
		return nil
	})
	w := p.Serve(r, next)
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		p.T.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	return w.Code, strings.TrimSuffix(w.Body.String(), "\n")
}
