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

// serveWatch streams an upload's progress over a WebSocket: the current
// state at once, then an update each time the asked-for number of bytes
// more arrived (paced by progress.NextPaced: update_interval,
// key_updates_per_second), then the
// final state, at once, and a normal close. A watcher of a key with no
// upload yet gets not_exist and may stay: it then streams the upload from
// its first tick.
func (h *Handler) serveWatch(w http.ResponseWriter, r *http.Request, p *protocol) error {
	if r.Method != http.MethodGet {
		return h.refuseMethod(w, r, p, transportWebSocket, http.MethodGet)
	}
	owner, q, f := h.parseStatusRequest(r, p)
	if f == nil {
		f = checkHandshake(r, h.OriginPatterns)
	}
	if f != nil {
		return h.refuse(w, r, p, transportWebSocket, f)
	}
	if p.coder != nil {
		// A protocol whose replies carry their own status (404 for an
		// unknown upload) refuses a watcher with that reply.
		if snap := h.lookup(r, p, owner, q.Key); p.statusCode(snap) != http.StatusOK {
			return h.reply(w, r, p, transportWebSocket, p.statusCode(snap), p.Render(snap))
		}
	}
	sub, err := h.tracker().Subscribe(owner, q.Key)
	if err != nil {
		return h.refuseWatcher(w, r, p, err)
	}
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

	snap := sub.Current()
	if !snap.Found {
		snap = named(probe(r, p, owner, q.Key, snap), q.Key)
	}
	var gate *refreshGate
	rk := refreshKey{owner, q.Key}
	if p.refresher != nil {
		gate = h.refreshes.join(rk)
		defer h.refreshes.leave(rk, gate)
	}
	var dropped error
	for {
		if err := h.send(ctx, c, p.Render(snap)); err != nil {
			// ctx has no deadline: only the write's own timeout ends this way.
			if errors.Is(err, context.DeadlineExceeded) {
				dropped = errWriteTimeout
			}
			break
		}
		if snap.State.Terminal() {
			c.Close(websocket.StatusNormalClosure, snap.State.String())
			return nil
		}
		sent := time.Now()
		for {
			wctx, cancel := ctx, context.CancelFunc(func() {})
			if gate != nil {
				// The origin moves some sessions on its own: ask it now
				// and then while nothing else happens.
				wctx, cancel = context.WithTimeoutCause(ctx, refreshEvery, errRefreshDue)
			}
			var next progress.Snapshot
			next, err = progress.NextPaced(wctx, sub, snap, q.Step, sent, h.pace)
			due := context.Cause(wctx) == errRefreshDue && ctx.Err() == nil
			cancel()
			if err == nil || !due {
				snap = next
				break
			}
			if refused := h.refresh(ctx, r, p, gate, rk, sub.Current()); refused != "" {
				sub.Close()
				c.Close(websocket.StatusPolicyViolation, refused)
				return nil
			}
		}
		snap = named(snap, q.Key)
		if errors.Is(err, progress.ErrClosed) {
			c.Close(websocket.StatusGoingAway, "server shutting down")
			return nil
		}
		if err != nil {
			break
		}
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

// refuseWatcher answers a watcher the tracker cannot take: at a limit, or
// while it shuts down.
func (h *Handler) refuseWatcher(w http.ResponseWriter, r *http.Request, p *protocol, err error) error {
	f := &progress.Failure{Kind: progress.Unavailable, Message: "too many watchers, try again later"}
	reason := refusedLimit
	if errors.Is(err, progress.ErrClosed) {
		f.Message, reason = "the server is shutting down, try again later", refusedClosed
	} else {
		h.warnings.watchersRefused(h.Zone, p.name, err)
	}
	watchersRefused.WithLabelValues(h.Zone, p.name, reason).Inc()
	return h.refuse(w, r, p, transportWebSocket, f)
}

// Why a watcher was refused, as counted in watchers_refused_total.
const (
	refusedLimit  = "limit"
	refusedClosed = "closed"
)

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
