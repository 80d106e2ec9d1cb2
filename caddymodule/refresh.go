package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
	protocolapi "github.com/caddy-upload-progress/caddy-upload-progress/protocol"
)

// How often a watched session's origin is asked how it stands, at most,
// and how long one answer may take.
const (
	refreshEvery   = time.Second
	refreshTimeout = 5 * time.Second
)

// errRefreshDue ends a watcher's wait for news when its session's origin
// is due to be asked.
var errRefreshDue = errors.New("refresh due")

// refreshes shares the origin's status requests of watched sessions among
// their watchers (protocols that are Refreshers): one request a second at
// most per session, whichever watcher asks it.
type refreshes struct {
	mu    sync.Mutex
	gates map[refreshKey]*refreshGate
}

type refreshKey struct {
	owner progress.Owner
	key   string
}

// refreshGate is one watched session's turn to ask the origin.
type refreshGate struct {
	watchers int
	last     time.Time
	busy     bool
	// refused is why the origin refused the watchers' credential; every
	// watcher of the session is then closed with it.
	refused string
}

// join counts a watcher of k and returns its session's gate.
func (rs *refreshes) join(k refreshKey) *refreshGate {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.gates == nil {
		rs.gates = map[refreshKey]*refreshGate{}
	}
	g := rs.gates[k]
	if g == nil {
		g = &refreshGate{}
		rs.gates[k] = g
	}
	g.watchers++
	return g
}

// leave forgets a watcher of k; the gate goes with the last one.
func (rs *refreshes) leave(k refreshKey, g *refreshGate) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if g.watchers--; g.watchers == 0 && rs.gates[k] == g {
		delete(rs.gates, k)
	}
}

// claim reports whether the watcher is to ask the origin now (its session
// is idle, and nobody asked within refreshEvery), or why the origin
// refused the session's watchers.
func (rs *refreshes) claim(g *refreshGate, idle bool, now time.Time) (ask bool, refused string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if !idle || g.refused != "" || g.busy || now.Sub(g.last) < refreshEvery {
		return false, g.refused
	}
	g.busy, g.last = true, now
	return true, ""
}

func (rs *refreshes) done(g *refreshGate, refused string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	g.busy, g.refused = false, refused
}

// refresh asks the origin how the watched session stands, if it is the
// watcher's turn and no request of the session is passing through (its
// answer tells more, and sooner). A watcher that may not ask (it holds
// no credential) never takes the turn. It returns why the origin refused
// the session's watchers, if it did.
func (h *Handler) refresh(ctx context.Context, r *http.Request, p *protocol, g *refreshGate, k refreshKey, cur progress.Snapshot, mayAsk bool) string {
	idle := mayAsk && cur.Found && cur.Session != nil && !cur.State.Terminal() && len(cur.Session.InFlight) == 0
	ask, refused := h.refreshes.claim(g, idle, time.Now())
	if !ask {
		return refused
	}
	// The exchange lends its way of opening and ending the owner's
	// sessions; it is no request of its own.
	x := &exchange{h: h, p: p, owner: k.owner}
	a := protocolapi.NewAnswered(x)
	a.Session = h.tracker().FindSession(k.owner, k.key)
	if a.Session == nil {
		h.refreshes.done(g, "")
		return ""
	}
	rctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	refused, err := p.refresher.Refresh(rctx, r, a)
	cancel()
	if err != nil {
		h.logger.Debug("asking the origin about a watched session failed; trying again",
			zap.String("protocol", p.name), zap.Error(err))
	}
	h.refreshes.done(g, refused)
	return refused
}
