package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"os"
	"time"

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

	c, err := acceptWatcher(w, r, h.watcherTimeout)
	if err != nil {
		// The handshake was answered (400 or 426).
		sub.Close()
		h.logger.Debug("websocket handshake refused", zap.Error(err))
		return nil
	}
	statusRequests.WithLabelValues(h.Zone, p.name, transportWebSocket, "101").Inc()

	// The watcher goes on in a goroutine of its own, and the request
	// returns: the server's goroutine, with its deep stack, and the
	// request's state are not held for as long as the watcher stays. The
	// request's own context is not used: a config reload must not end a
	// watcher whose upload goes on (the tracker closing does). Only a
	// protocol that asks its origin about watched sessions keeps the
	// request, whose credentials it forwards.
	ctx, wr := context.Background(), (*http.Request)(nil)
	if p.refresher != nil {
		ctx = context.WithoutCancel(r.Context())
		wr = r.Clone(ctx)
	}
	snap := sub.Current()
	if !snap.Found {
		snap = named(probe(r, p, owner, q.Key, snap), q.Key)
	}
	ctx, drop := context.WithCancelCause(ctx)
	c.onGone = func() { drop(errWatcherGone) }
	c.noPong = func() { drop(errNoPong) }
	go c.readClient()
	go h.watch(ctx, drop, wr, p, c, sub, owner, q, snap)
	return nil
}

// watch is an accepted watcher's stream, from its first message to its
// close; ctx ends when the client goes away, or is dropped for not
// answering pings (the pinger's).
func (h *Handler) watch(ctx context.Context, drop context.CancelCauseFunc, r *http.Request, p *protocol, c *wsConn, sub progress.Subscription, owner progress.Owner, q progress.StatusQuery, snap progress.Snapshot) {
	defer sub.Close()
	defer c.abort()
	defer drop(nil)
	h.pinger.add(c)
	defer h.pinger.remove(c)

	var gate *refreshGate
	rk := refreshKey{owner, q.Key}
	if p.refresher != nil {
		gate = h.refreshes.join(rk)
		defer h.refreshes.leave(rk, gate)
	}
	var dropped error
	for {
		frame, err := h.frames.text(p, snap)
		if err != nil {
			break
		}
		if snap.State.Terminal() {
			// The last message and the close go out together.
			c.close(frame, closeNormal, snap.State.String())
			return
		}
		if err := c.send(frame); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				dropped = errWriteTimeout
			}
			break
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
				c.close(nil, closePolicyViolation, refused)
				return
			}
		}
		snap = named(snap, q.Key)
		if errors.Is(err, progress.ErrClosed) {
			c.close(nil, closeGoingAway, "server shutting down")
			return
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
		return
	}
	watchersDropped.WithLabelValues(h.Zone, p.name, dropped.Error()).Inc()
	h.logger.Debug("websocket watcher dropped", zap.String("protocol", p.name), zap.String("reason", dropped.Error()))
	sub.Close() // free its place at once; the close handshake may take a while
	if dropped == errNoPong {
		// Its connection still takes bytes, so the close frame tells it why.
		c.close(nil, closePolicyViolation, "watcher too slow: no pong within "+h.watcherTimeout.String())
	}
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
