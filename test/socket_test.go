package test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// socket is a WebSocket client of a progress endpoint whose messages are
// JSON replies of type T: it reads them as the server sends them, for the
// test to take, and notes how the connection ended.
type socket[T any] struct {
	c    *websocket.Conn
	msgs chan T
	done chan struct{}
	// close is the close frame the server sent; err says how the
	// connection ended if it was not closed so. Both are set once msgs is
	// closed.
	close websocket.CloseError
	err   error
	// taken is every message the test has taken, in order.
	taken []T
}

// newSocket reads c until the connection ends or ctx is done; room is how
// many messages may wait to be taken.
func newSocket[T any](ctx context.Context, c *websocket.Conn, room int) *socket[T] {
	s := &socket[T]{c: c, msgs: make(chan T, room), done: make(chan struct{})}
	go s.read(ctx)
	return s
}

// openSocket opens a watcher of what with dial, failing the test if it is
// refused; room is how many messages it can hold untaken. It is closed,
// and its reader ended, when the test ends.
func openSocket[T any](t testing.TB, what string, room int, dial func(context.Context) (*websocket.Conn, *http.Response, error)) *socket[T] {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c, _, err := dial(ctx)
	if err != nil {
		cancel()
		t.Fatalf("watching %s: %v", what, err)
	}
	s := newSocket[T](ctx, c, room)
	t.Cleanup(func() {
		cancel()
		c.CloseNow()
		<-s.done
	})
	return s
}

// read collects messages until the connection ends. A message for which
// msgs has no room ends it with an error: a reader that blocked there
// would hold the close, and a test's cleanup waiting for done with it.
func (s *socket[T]) read(ctx context.Context) {
	defer close(s.done)
	defer close(s.msgs)
	for {
		_, b, err := s.c.Read(ctx)
		if err != nil {
			if !errors.As(err, &s.close) {
				s.err = err
			}
			return
		}
		var m T
		if err := json.Unmarshal(b, &m); err != nil {
			s.err = fmt.Errorf("message %q is not JSON: %v", b, err)
			return
		}
		select {
		case s.msgs <- m:
		default:
			s.err = fmt.Errorf("more than %d messages", cap(s.msgs))
			return
		}
	}
}

// take returns the next message, noted as taken, or open false once the
// server has closed and every message is taken; it fails the test with
// late if timeout fires first.
func (s *socket[T]) take(t testing.TB, timeout <-chan time.Time, late string) (m T, open bool) {
	t.Helper()
	select {
	case m, open = <-s.msgs:
		if open {
			s.taken = append(s.taken, m)
		}
	case <-timeout:
		t.Fatalf("%s; %s", late, s.took())
	}
	return m, open
}

// took tells, for a failure, how many messages the test took and the last
// of them.
func (s *socket[T]) took() string {
	const most = 10
	if len(s.taken) <= most {
		return fmt.Sprintf("took %+v", s.taken)
	}
	return fmt.Sprintf("took %d messages, the last %+v", len(s.taken), s.taken[len(s.taken)-most:])
}

// next returns the next message, failing the test if the server closes
// first or sends nothing within 10 s.
func (s *socket[T]) next(t testing.TB) T {
	t.Helper()
	m, open := s.take(t, time.After(10*time.Second), "no watcher message within 10 s")
	if !open {
		t.Fatalf("watcher closed (%v, %v) while a message was expected; %s", s.close, s.err, s.took())
	}
	return m
}

// until takes messages until ok accepts one and returns it, failing the
// test if none does within 10 s or the server closes first.
func (s *socket[T]) until(t testing.TB, what string, ok func(T) bool) T {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		m, open := s.take(t, timeout, "no watcher message "+what+" within 10 s")
		if !open {
			t.Fatalf("watcher closed (%v, %v) before %s; %s", s.close, s.err, what, s.took())
		}
		if ok(m) {
			return m
		}
	}
}

// rest takes the messages until the server closes and returns those it
// took, failing the test if the connection is not over within the time
// given. How it ended is in close and err.
func (s *socket[T]) rest(t testing.TB, within time.Duration) []T {
	t.Helper()
	from := len(s.taken)
	timeout := time.After(within)
	for {
		if _, open := s.take(t, timeout, fmt.Sprintf("watcher not closed within %v", within)); !open {
			return slices.Clip(s.taken[from:])
		}
	}
}

// end takes the messages until the server closes, failing the test if it
// does not within the time given or the connection ends without a close
// frame; it returns the last message and the close code.
func (s *socket[T]) end(t testing.TB, within time.Duration) (T, websocket.StatusCode) {
	t.Helper()
	s.rest(t, within)
	if s.err != nil {
		t.Fatalf("watcher ended without a close: %v; %s", s.err, s.took())
	}
	if len(s.taken) == 0 {
		t.Fatalf("watcher closed (%v) without a message", s.close)
	}
	return s.taken[len(s.taken)-1], s.close.Code
}
