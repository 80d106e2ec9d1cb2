package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// socketRefusal is a WebSocket handshake the server answered with
// something else than the upgrade: the answer's status and body.
type socketRefusal struct {
	code int
	body []byte
}

func (r *socketRefusal) Error() string {
	return fmt.Sprintf("the WebSocket was refused with %d", r.code)
}

// errSocketEnded is a WebSocket closed before the upload's end reached
// it (a stale end passed over, the server restarting, a proxy's timeout).
var errSocketEnded = errors.New("the WebSocket ended before the upload did")

// dialTimeout bounds a WebSocket handshake.
const dialTimeout = 10 * time.Second

// stream follows the protocol's WebSocket: it returns nil once the
// upload's end has come, else why it stopped. got says whether any
// message came.
func (w *watcher) stream(ctx context.Context, appearBy time.Time) (got bool, err error) {
	u, hdr := w.ad.socket()
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	c, resp, err := websocket.Dial(dctx, u, &websocket.DialOptions{HTTPHeader: hdr, HTTPClient: w.client})
	cancel()
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			body, _ := io.ReadAll(resp.Body)
			return false, &socketRefusal{code: resp.StatusCode, body: body}
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		return false, fmt.Errorf("opening the WebSocket: %w", err)
	}
	defer c.CloseNow()
	c.SetReadLimit(maxAnswer)

	type message struct {
		b   []byte
		err error
	}
	msgs := make(chan message)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_, b, err := c.Read(rctx)
			select {
			case msgs <- message{b, err}:
			case <-rctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() { stop(); c.CloseNow(); <-done }()

	var appear <-chan time.Time
	overdue := false
	if !w.seen {
		t := time.NewTimer(time.Until(appearBy))
		defer t.Stop()
		appear = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return got, ctx.Err()
		case <-appear:
			// Past --wait: the upload has not appeared if the next
			// answer (or this one's absence so far) says so.
			appear, overdue = nil, true
			if got && !w.seen {
				return got, errNotAppeared(w.wait)
			}
		case m := <-msgs:
			if m.err != nil {
				if ctx.Err() != nil {
					return got, ctx.Err()
				}
				return got, errSocketEnded
			}
			got = true
			u, err := w.ad.decode(http.StatusOK, m.b)
			if err != nil {
				return got, err
			}
			if w.take(u) {
				// The server closes after an end: no close handshake
				// to wait for.
				return got, nil
			}
			if overdue && !w.seen {
				return got, errNotAppeared(w.wait)
			}
		}
	}
}
