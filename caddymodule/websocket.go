package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// Why a watcher was dropped, as counted in watchers_dropped_total.
var (
	errNoPong       = errors.New("no_pong")
	errWriteTimeout = errors.New("write_timeout")
)

// serveWatch streams an upload's progress over a WebSocket (follow): the
// current state at once, paced updates, the final state and a normal
// close.
func (h *Handler) serveWatch(w http.ResponseWriter, r *http.Request, p *protocol) error {
	if r.Method != http.MethodGet {
		return h.refuseMethod(w, r, p, transportWebSocket, http.MethodGet)
	}
	wt, err := h.openWatch(w, r, p, transportWebSocket, func() *progress.Failure {
		return checkHandshake(r, h.OriginPatterns)
	})
	if wt == nil {
		return err
	}
	sub := wt.sub
	defer sub.Close()

	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: h.OriginPatterns})
	if err != nil {
		// Accept has answered the client (400, 403 or 426).
		h.logger.Debug("websocket handshake refused", zap.Error(err))
		return nil
	}
	defer c.CloseNow()
	statusRequests.WithLabelValues(h.Zone, p.name, transportWebSocket, "101").Inc()

	// The request's own context is not used: a config reload must not end
	// a watcher whose upload goes on (the tracker closing does).
	ctx, drop := context.WithCancelCause(readClient(context.WithoutCancel(r.Context()), c))
	defer drop(nil)
	go h.keepAlive(ctx, c, drop)

	var dropped error
	// ctx has no deadline: only the write's own timeout ends this way.
	if err := h.follow(ctx, wt, socketSink{h, c}); errors.Is(err, context.DeadlineExceeded) {
		dropped = errWriteTimeout
	}

	// The watcher went away, or is dropped for being too slow.
	if dropped == nil && errors.Is(context.Cause(ctx), errNoPong) {
		dropped = errNoPong
	}
	if dropped == nil {
		return nil
	}
	watchersDropped.WithLabelValues(h.Zone, p.name, dropped.Error()).Inc()
	h.logger.Debug("websocket watcher dropped", zap.String("protocol", p.name), zap.String("reason", dropped.Error()))
	sub.Close() // free its place at once; the close handshake may take a while
	if dropped == errNoPong {
		// Its connection still takes bytes, so the close frame tells it why.
		c.Close(websocket.StatusPolicyViolation, "watcher too slow: no pong within "+h.watcherTimeout.String())
	}
	return nil
}

// socketSink is a watch over a WebSocket.
type socketSink struct {
	h *Handler
	c *websocket.Conn
}

func (s socketSink) send(ctx context.Context, v any) error { return s.h.send(ctx, s.c, v) }

// end closes the WebSocket: normally, naming the final state; with 1008
// and the origin's refusal; with 1001 when the server shuts down.
func (s socketSink) end(e watchEnd) {
	switch e.kind {
	case endFinal:
		s.c.Close(websocket.StatusNormalClosure, e.state.String())
	case endRefused:
		s.c.Close(websocket.StatusPolicyViolation, e.reason)
	case endClosed:
		s.c.Close(websocket.StatusGoingAway, "server shutting down")
	}
}

// readClient reads what the client sends, in the background, until the
// connection closes, and returns a context that ends then. The library
// handles pongs and the client's close frame; a watcher has nothing else to
// say, so a data message is discarded (up to the read limit, past which the
// library closes with 1009) and answered with a close, 1008.
//
// It is websocket.Conn.CloseRead without the wait: a Close from CloseRead's
// own goroutine waits for that goroutine to end, 15 s later.
func readClient(ctx context.Context, c *websocket.Conn) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		defer cancel()
		_, r, err := c.Reader(ctx)
		if err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return
		}
		c.Close(websocket.StatusPolicyViolation, "a watcher sends no messages")
	}()
	return ctx
}

// send writes one message, giving up after watcher_timeout so that a
// watcher that does not read cannot hold anything.
func (h *Handler) send(ctx context.Context, c *websocket.Conn, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, h.watcherTimeout)
	defer cancel()
	return c.Write(ctx, websocket.MessageText, b)
}

// keepAlive pings the client every ping_interval until ctx ends; a client
// that does not answer within watcher_timeout is dropped through drop.
func (h *Handler) keepAlive(ctx context.Context, c *websocket.Conn, drop context.CancelCauseFunc) {
	t := time.NewTicker(h.pingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, h.watcherTimeout)
			err := c.Ping(pctx)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					drop(errNoPong)
				}
				return
			}
		}
	}
}
