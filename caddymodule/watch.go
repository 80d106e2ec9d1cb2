package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// watch is one watcher of one key, over either transport (WebSocket or
// Server-Sent Events), from its request to its end.
type watch struct {
	p   *protocol
	r   *http.Request
	sr  statusAsked
	sub progress.Subscription
}

// watchSink is where a watch's messages go: a WebSocket or an event stream.
type watchSink interface {
	// send writes one message, the protocol's reply of snap; an error
	// ends the watch.
	send(ctx context.Context, snap progress.Snapshot) error
	// end tells the watcher the watch is over, and why.
	end(e watchEnd)
}

// watchEnd is why a watch ended on the server's side.
type watchEnd struct {
	kind endKind
	// state and snap are the final state and what the key shows then,
	// whose message goes with the end (endFinal); reason is what the
	// origin said (endRefused).
	state  progress.State
	snap   progress.Snapshot
	reason string
}

type endKind uint8

const (
	// endFinal: the upload reached its final state, which the sink sends
	// with the end.
	endFinal endKind = iota
	// endRefused: the origin refused the credential of the session's
	// watchers.
	endRefused
	// endClosed: the tracker closed (the server is shutting down).
	endClosed
)

// openWatch reads a watcher's request and takes its place in the tracker,
// or refuses it in the protocol's shape (the reply written; nil watch).
// check, if set, refuses what the transport cannot serve, once the
// request is read.
func (h *Handler) openWatch(w http.ResponseWriter, r *http.Request, p *protocol, transport string, check func() *progress.Failure) (*watch, error) {
	sr, f := h.parseStatusRequest(r, p)
	if f == nil && check != nil {
		f = check()
	}
	if f != nil {
		return nil, h.refuse(w, r, p, transport, f)
	}
	if p.coder != nil {
		// A protocol whose replies carry their own status (404 for an
		// unknown upload) refuses a watcher with that reply.
		if snap := h.lookup(r, p, sr.owner, sr.q.Key); p.statusCode(snap) != http.StatusOK {
			return nil, h.reply(w, r, p, transport, p.statusCode(snap), p.Render(snap))
		}
	}
	sub, err := h.tracker().Subscribe(sr.owner, sr.q.Key)
	if err != nil {
		return nil, h.refuseWatcher(w, r, p, transport, err)
	}
	return &watch{p: p, r: r, sr: sr, sub: sub}, nil
}

// firstState is what a watcher is sent first: what its key shows now, or
// what the origin says of a key the tracker does not know.
func (h *Handler) firstState(wt *watch) progress.Snapshot {
	snap := wt.sub.Current()
	if !snap.Found {
		snap = named(probe(wt.r, wt.p, wt.sr.owner, wt.sr.q.Key, snap), wt.sr.q.Key)
	}
	return snap
}

// follow is the loop of a watcher that follows its key on its own
// goroutine: one whose protocol asks the origin about watched sessions
// (the refresh turn below), or an event stream that stays a response. The
// others are fed by their key's feed (feed.go), by the same rules.
//
// It sends first (firstState) at once, then an update each time the
// asked-for number of bytes more arrived (paced by progress.NextPaced:
// update_interval, key_updates_per_second), then the final state, with
// the end of the sink. A watcher of a key with no upload yet gets its
// not-found state and may stay: it then follows the upload from its first
// tick.
//
// It returns nil when the watch ended on the server's side (told to the
// sink), or what ended it otherwise: a send's error, or ctx's.
func (h *Handler) follow(ctx context.Context, wt *watch, first progress.Snapshot, sink watchSink) error {
	p, r, sub, key := wt.p, wt.r, wt.sub, wt.sr.q.Key
	snap := first
	var gate *refreshGate
	rk := refreshKey{wt.sr.owner, key}
	if p.refresher != nil {
		gate = h.refreshes.join(rk)
		defer h.refreshes.leave(rk, gate)
	}
	for {
		if snap.State.Terminal() {
			sink.end(watchEnd{kind: endFinal, state: snap.State, snap: snap})
			return nil
		}
		if err := sink.send(ctx, snap); err != nil {
			return err
		}
		sent := time.Now()
		var err error
		for {
			wctx, cancel := ctx, context.CancelFunc(func() {})
			if gate != nil {
				// The origin moves some sessions on its own: ask it now
				// and then while nothing else happens.
				wctx, cancel = context.WithTimeoutCause(ctx, refreshEvery, errRefreshDue)
			}
			var next progress.Snapshot
			next, err = progress.NextPaced(wctx, sub, snap, wt.sr.q.Step, sent, h.pace)
			due := context.Cause(wctx) == errRefreshDue && ctx.Err() == nil
			cancel()
			if err == nil || !due {
				snap = next
				break
			}
			// A watcher by token holds no credential to ask the origin
			// with: it hears what the others learn.
			if refused := h.refresh(ctx, r, p, gate, rk, sub.Current(), !wt.sr.byToken); refused != "" {
				sub.Close()
				sink.end(watchEnd{kind: endRefused, reason: refused})
				return nil
			}
		}
		snap = named(snap, key)
		if errors.Is(err, progress.ErrClosed) {
			sink.end(watchEnd{kind: endClosed})
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// refuseWatcher answers a watcher the tracker cannot take: at a limit, or
// while it shuts down.
func (h *Handler) refuseWatcher(w http.ResponseWriter, r *http.Request, p *protocol, transport string, err error) error {
	f := &progress.Failure{Kind: progress.Unavailable, Message: "too many watchers, try again later"}
	reason := refusedLimit
	if errors.Is(err, progress.ErrClosed) {
		f.Message, reason = "the server is shutting down, try again later", refusedClosed
	} else {
		h.warnings.watchersRefused(h.Zone, p.name, err)
	}
	watchersRefused.WithLabelValues(h.Zone, p.name, reason).Inc()
	return h.refuse(w, r, p, transport, f)
}

// Why a watcher was refused, as counted in watchers_refused_total.
const (
	refusedLimit  = "limit"
	refusedClosed = "closed"
)
