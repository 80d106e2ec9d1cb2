package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/testkit"
)

// tusSocket is a WebSocket watcher of a tus upload, at the default
// /tus/progress/ws: it collects the status replies the server sends until
// the server closes.
type tusSocket struct {
	c    *websocket.Conn
	msgs chan tusReply
	done chan struct{}
	// code is the close status the server sent, -1 if the connection ended
	// otherwise (err then says how). Both are set once done is closed.
	code websocket.StatusCode
	err  error
}

// openTusSocket opens a watcher of upload (an upload URL or its path). The
// connection is closed, and its reader ended, when the test ends.
func (e *env) openTusSocket(upload string) *tusSocket {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	u := testkit.WebSocketURL(e.proxy) + "/tus/progress/ws?upload=" + url.QueryEscape(upload)
	c, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		cancel()
		e.t.Fatalf("watching %s: %v", upload, err)
	}
	s := &tusSocket{c: c, msgs: make(chan tusReply, 1<<12), done: make(chan struct{})}
	go s.read(ctx)
	e.t.Cleanup(func() {
		c.CloseNow()
		cancel()
		<-s.done
	})
	return s
}

// read collects messages until the connection ends. msgs is large enough
// for any test here; a reader that blocked on it would hold the close.
func (s *tusSocket) read(ctx context.Context) {
	defer close(s.done)
	defer close(s.msgs)
	for {
		_, b, err := s.c.Read(ctx)
		if err != nil {
			if s.code = websocket.CloseStatus(err); s.code == -1 {
				s.err = err
			}
			return
		}
		var r tusReply
		if err := json.Unmarshal(b, &r); err != nil {
			s.code, s.err = -1, fmt.Errorf("message %q is not JSON: %v", b, err)
			return
		}
		select {
		case s.msgs <- r:
		default:
			s.code, s.err = -1, fmt.Errorf("more than %d messages", cap(s.msgs))
			return
		}
	}
}

// next returns the next message, failing the test if the server closes
// first or sends nothing within 10 s.
func (s *tusSocket) next(t testing.TB) tusReply {
	t.Helper()
	select {
	case r, ok := <-s.msgs:
		if !ok {
			t.Fatalf("watcher closed (status %d, %v) while a message was expected", s.code, s.err)
		}
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no watcher message within 10 s")
	}
	return tusReply{}
}

// rest returns every message until the server closes, and the close
// status; it fails the test if the connection is not closed within the
// time given.
func (s *tusSocket) rest(t testing.TB, within time.Duration) ([]tusReply, websocket.StatusCode) {
	t.Helper()
	var got []tusReply
	timeout := time.After(within)
	for {
		select {
		case r, ok := <-s.msgs:
			if !ok {
				if s.err != nil {
					t.Fatalf("watcher ended without a close: %v", s.err)
				}
				return got, s.code
			}
			got = append(got, r)
		case <-timeout:
			t.Fatalf("watcher not closed within %v; %d messages so far: %+v", within, len(got), got)
		}
	}
}
