package caddymodule

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// serveHandlerOn serves h as serveHandler does, on ln, and reports each
// return of its ServeHTTP on returned.
func serveHandlerOn(t *testing.T, h *Handler, ln net.Listener, returned chan<- struct{}) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caddyhttp.NewTestReplacer(r)
		if err := h.ServeHTTP(w, r, nil); err != nil {
			t.Errorf("ServeHTTP: %v", err)
		}
		returned <- struct{}{}
	}))
	if ln != nil {
		srv.Listener.Close()
		srv.Listener = ln
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// TestEventStreamDetachesFromItsRequest: over HTTP/1.1 the request of an
// event stream returns once the stream's header is out, and the stream
// goes on (its events and heartbeats) until the client leaves, which
// frees its place.
func TestEventStreamDetachesFromItsRequest(t *testing.T) {
	h := &Handler{Zone: uniqueZone(t), PingInterval: caddy.Duration(5 * time.Millisecond)}
	provisionForTest(t, h)
	returned := make(chan struct{}, 1)
	srv := serveHandlerOn(t, h, nil, returned)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	streamCtx, leave := context.WithCancel(ctx)
	res, events := openEvents(t, streamCtx, srv.URL, "/ws/progress?path=/detached.bin", "X-User-Api-Key", testAPIKey)
	if res.StatusCode != 200 || len(res.TransferEncoding) != 1 || res.TransferEncoding[0] != "chunked" {
		t.Fatalf("status %d, transfer encoding %v; want 200, chunked", res.StatusCode, res.TransferEncoding)
	}
	if ev, err := events.next(); err != nil || ev.Event != "progress" || !strings.Contains(ev.Data, `"status":"not_exist"`) {
		t.Fatalf("first event %+v %v", ev, err)
	}
	select {
	case <-returned:
	case <-ctx.Done():
		t.Fatal("the stream's request did not return")
	}
	for range 3 {
		if ev, err := events.next(); err != nil || ev.Comment != "ping" {
			t.Fatalf("after the request returned: %+v %v, want heartbeats", ev, err)
		}
	}
	if s := h.tracker().Stats(); s.Watchers != 1 {
		t.Errorf("%d watchers, want 1", s.Watchers)
	}
	leave()
	waitFor(t, "the watcher that left to be forgotten", func() bool { return h.tracker().Stats().Watchers == 0 })
}

// TestDetachedEventStreamWriteTimeout: a detached stream whose connection
// takes its first event and then no heartbeat within watcher_timeout is
// dropped, counted as write_timeout, and its connection closed.
func TestDetachedEventStreamWriteTimeout(t *testing.T) {
	h := &Handler{Zone: uniqueZone(t), PingInterval: caddy.Duration(10 * time.Millisecond), WatcherTimeout: caddy.Duration(50 * time.Millisecond)}
	provisionForTest(t, h)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stalling := &stallingListener{Listener: ln, writes: 2} // the header, then the first event
	returned := make(chan struct{}, 1)
	srv := serveHandlerOn(t, h, stalling, returned)
	dropped := map[string]string{"zone": h.Zone, "reason": "write_timeout"}
	before := counterValue(t, watchersDropped, dropped)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, events := openEvents(t, ctx, srv.URL, "/ws/progress?path=/stall.bin", "X-User-Api-Key", testAPIKey)
	if ev, err := events.next(); err != nil || ev.Event != "progress" {
		t.Fatalf("first event %+v %v", ev, err)
	}
	waitFor(t, "the stalled watcher to be dropped", func() bool {
		return counterValue(t, watchersDropped, dropped) == before+1 && h.tracker().Stats().Watchers == 0
	})
	if ev, err := events.next(); err == nil {
		t.Errorf("after the drop: %+v, want the connection closed", ev)
	}
}

// stallingListener's connections take their first writes, then take no
// more: a write waits for its deadline.
type stallingListener struct {
	net.Listener
	writes int
}

func (l *stallingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &stallingConn{Conn: c, writes: l.writes}, nil
}

type stallingConn struct {
	net.Conn
	mu       sync.Mutex
	writes   int
	deadline time.Time
}

func (c *stallingConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

func (c *stallingConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	if c.writes > 0 {
		c.writes--
		c.mu.Unlock()
		return c.Conn.Write(b)
	}
	deadline := c.deadline
	c.mu.Unlock()
	if deadline.IsZero() {
		deadline = time.Now().Add(time.Minute)
	}
	time.Sleep(time.Until(deadline))
	return 0, os.ErrDeadlineExceeded
}
