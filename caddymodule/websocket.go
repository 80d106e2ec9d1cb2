package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"os"

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

	c, err := acceptWatcher(w, r, h.watcherTimeout)
	if err != nil {
		// The handshake was answered (400 or 426).
		wt.sub.Close()
		h.logger.Debug("websocket handshake refused", zap.Error(err))
		return nil
	}
	statusRequests.WithLabelValues(h.Zone, p.name, transportWebSocket, "101").Inc()

	// The watcher goes on in a goroutine of its own, and the request
	// returns: the server's goroutine, with its deep stack, and the
	// request's state are not held for as long as the watcher stays.
	first := h.firstState(wt)
	ctx := detachWatch(wt, r)
	if p.refresher == nil {
		h.feedSocket(wt, c, first)
		return nil
	}
	ctx, drop := context.WithCancelCause(ctx)
	c.onGone = func() { drop(errWatcherGone) }
	c.noPong = func() { drop(errNoPong) }
	go c.readClient()
	go h.watchSocket(ctx, drop, wt, first, c)
	return nil
}

// watchSocket follows an accepted watcher's upload over its WebSocket on
// a goroutine of its own (a protocol that asks its origin, follow),
// from its first message to its close; ctx ends when the client goes
// away, or is dropped for not answering pings (the pinger's).
func (h *Handler) watchSocket(ctx context.Context, drop context.CancelCauseFunc, wt *watch, first progress.Snapshot, c *wsConn) {
	p, sub := wt.p, wt.sub
	defer sub.Close()
	defer c.abort()
	defer drop(nil)
	h.pinger.add(c)
	defer h.pinger.remove(c)

	var dropped error
	if err := h.follow(ctx, wt, first, socketSink{h, p, c}); errors.Is(err, os.ErrDeadlineExceeded) {
		dropped = errWriteTimeout
	}

	// The watcher went away, or is dropped for being too slow.
	if dropped == nil && errors.Is(context.Cause(ctx), errNoPong) {
		dropped = errNoPong
	}
	if dropped == nil {
		return
	}
	sub.Close() // free its place at once; the close handshake may take a while
	h.socketDropped(p, c, dropped)
}

// socketDropped counts and logs a watcher dropped for dropped (errNoPong,
// errWriteTimeout), and tells it why where its connection still takes
// bytes.
func (h *Handler) socketDropped(p *protocol, c *wsConn, dropped error) {
	watchersDropped.WithLabelValues(h.Zone, p.name, dropped.Error()).Inc()
	h.logger.Debug("websocket watcher dropped", zap.String("protocol", p.name), zap.String("reason", dropped.Error()))
	if dropped == errNoPong {
		c.close(nil, closePolicyViolation, "watcher too slow: no pong within "+h.watcherTimeout.String())
	}
}

// feedSocket has the key's feed follow an accepted watcher's upload over
// its WebSocket (feed.go); the watcher has no goroutine of its own but its
// reader.
func (h *Handler) feedSocket(wt *watch, c *wsConn, first progress.Snapshot) {
	w := newFedWatcher(wt.sub, socketFeed{socketSink{h, wt.p, c}}, wt.sr.q.Step)
	c.onGone = func() { w.leave(c.goneWhy()) }
	c.noPong = func() { w.leave(errNoPong) }
	h.pinger.add(c)
	go c.readClient()
	h.startFed(w, refreshKey{wt.sr.owner, wt.sr.q.Key}, first)
}

// socketFeed is a fed watch over a WebSocket.
type socketFeed struct{ socketSink }

// over implements fedTransport.
func (s socketFeed) over(err error) {
	s.h.pinger.remove(s.c)
	switch {
	case errors.Is(err, errNoPong):
		s.h.socketDropped(s.p, s.c, errNoPong)
		return
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.h.socketDropped(s.p, s.c, errWriteTimeout)
	}
	s.c.abort()
}

// socketSink is a watch over a WebSocket. Its messages are the frames the
// watchers of a key share (frames.go).
type socketSink struct {
	h *Handler
	p *protocol
	c *wsConn
}

func (s socketSink) send(_ context.Context, snap progress.Snapshot) error {
	frame, err := s.h.frames.text(s.p, snap)
	if err != nil {
		return err
	}
	return s.c.send(frame)
}

// end closes the WebSocket: normally, naming the final state, in one
// write with the final message; with 1008 and the origin's refusal; with
// 1001 when the server shuts down.
func (s socketSink) end(e watchEnd) {
	switch e.kind {
	case endFinal:
		frame, err := s.h.frames.text(s.p, e.snap)
		if err != nil {
			frame = nil
		}
		s.c.close(frame, closeNormal, e.state.String())
	case endRefused:
		s.c.close(nil, closePolicyViolation, e.reason)
	case endClosed:
		s.c.close(nil, closeGoingAway, "server shutting down")
	}
}
