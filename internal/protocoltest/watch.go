package protocoltest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/coder/websocket"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/testkit"
)

// Server serves the proxy over HTTP on 127.0.0.1, in front of next, for
// WebSocket watchers, which need a real connection; it is closed when the
// test ends. An error of the handler chain is answered with its status.
func (p *Proxy) Server(next caddyhttp.Handler) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caddyhttp.NewTestReplacer(r)
		if err := p.H.ServeHTTP(w, r, next); err != nil {
			var he caddyhttp.HandlerError
			errors.As(err, &he)
			http.Error(w, err.Error(), cmp.Or(he.StatusCode, http.StatusInternalServerError))
		}
	}))
	p.T.Cleanup(srv.Close)
	return srv
}

// Dial opens a WebSocket at path of srv with header (name, value pairs),
// within 10 s.
func Dial(srv *httptest.Server, path string, header ...string) (*websocket.Conn, *http.Response, error) {
	h := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return websocket.Dial(ctx, testkit.WebSocketURL(srv.URL)+path, &websocket.DialOptions{HTTPHeader: h})
}

// Watcher is a WebSocket client following a session.
type Watcher struct {
	T *testing.T
	C *websocket.Conn
}

// Watch opens a watcher at path of srv with header (name, value pairs),
// failing the test if it is refused; it is closed when the test ends.
func Watch(t *testing.T, srv *httptest.Server, path string, header ...string) *Watcher {
	t.Helper()
	c, resp, err := Dial(srv, path, header...)
	if err != nil {
		body := ""
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			body = fmt.Sprintf("%d %s", resp.StatusCode, b)
		}
		t.Fatalf("watching %s: %v %s", path, err, body)
	}
	t.Cleanup(func() { c.CloseNow() })
	return &Watcher{T: t, C: c}
}

// Refused opens a WebSocket at path of srv that must be refused before
// the upgrade with a JSON answer, and returns its status and body
// without its newline.
func Refused(t *testing.T, srv *httptest.Server, path string, header ...string) (int, string) {
	t.Helper()
	c, resp, err := Dial(srv, path, header...)
	if err == nil {
		c.CloseNow()
		t.Fatalf("a watcher of %s was accepted", path)
	}
	if resp == nil {
		t.Fatalf("watching %s: %v, and no answer", path, err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("watching %s: refused with Content-Type %q, want application/json", path, ct)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSuffix(string(b), "\n")
}

// read reads the watcher's next message, within 10 s.
func (w *Watcher) read() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, b, err := w.C.Read(ctx)
	return string(b), err
}

// Next reads the watcher's next message, within 10 s.
func (w *Watcher) Next() string {
	w.T.Helper()
	m, err := w.read()
	if err != nil {
		w.T.Fatalf("reading the watcher's next message: %v", err)
	}
	return m
}

// Until reads messages until ok accepts one, within bound messages, and
// returns it; it fails the test, naming what it waited for, if the
// connection ends first or none is accepted.
func (w *Watcher) Until(what string, bound int, ok func(msg string) bool) string {
	w.T.Helper()
	var got []string
	for range bound {
		m, err := w.read()
		if err != nil {
			w.T.Fatalf("watcher: %v before %s; got %q", err, what, got)
		}
		if ok(m) {
			return m
		}
		got = append(got, m)
	}
	w.T.Fatalf("watcher: no %s in %d messages: %q", what, bound, got)
	return ""
}

// Closed reads until the server closes the connection, within 10 s and
// 100 messages, and returns the close status and reason.
func (w *Watcher) Closed() (websocket.StatusCode, string) {
	w.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 100 {
		_, _, err := w.C.Read(ctx)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			w.T.Fatalf("the watcher ended with %v, not a close", err)
		}
		return ce.Code, ce.Reason
	}
	w.T.Fatal("no close in 100 messages")
	return 0, ""
}

// CloseNext reads the next thing the server sends, within 10 s, which
// must be a close, and returns its status and reason.
func (w *Watcher) CloseNext() (websocket.StatusCode, string) {
	w.T.Helper()
	m, err := w.read()
	if err == nil {
		w.T.Fatalf("watcher: got %s, want a close", m)
	}
	var ce websocket.CloseError
	if !errors.As(err, &ce) {
		w.T.Fatalf("the watcher ended with %v, not a close", err)
	}
	return ce.Code, ce.Reason
}
