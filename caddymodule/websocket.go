package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// Timings of WebSocket watchers.
const (
	// watchWriteTimeout is how long one message may take to be written
	// before the watcher is dropped.
	watchWriteTimeout = 10 * time.Second
	// watchPingInterval keeps idle connections through proxies and NATs.
	watchPingInterval = 30 * time.Second
)

// serveWatch streams an upload's progress over a WebSocket: the current
// state at once, then an update each time the asked-for number of bytes
// more arrived and at every change of state, then the final state and a
// normal close. A watcher of a key with no upload yet gets not_exist and
// may stay: it then streams the upload when it starts.
func (h *Handler) serveWatch(w http.ResponseWriter, r *http.Request, p *protocol) error {
	if r.Method != http.MethodGet {
		return h.refuse(w, r, p, "websocket", &progress.Failure{Kind: progress.MethodNotAllowed, Message: "method not allowed: use GET"})
	}
	owner, q, f := h.parseStatusRequest(r, p)
	if f != nil {
		return h.refuse(w, r, p, "websocket", f)
	}
	sub, err := h.tracker().Subscribe(owner, q.Key)
	if err != nil {
		watchersRefused.WithLabelValues(h.Zone, p.name).Inc()
		return h.refuse(w, r, p, "websocket", &progress.Failure{Kind: progress.Unavailable, Message: "too many watchers, try again later"})
	}
	defer sub.Close()

	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: h.OriginPatterns})
	if err != nil {
		// Accept has answered the client (400, 403 or 426).
		h.logger.Debug("websocket handshake refused", zap.Error(err))
		return nil
	}
	defer c.CloseNow()
	statusRequests.WithLabelValues(h.Zone, p.name, "websocket", "101").Inc()

	// The client has nothing to say; reading in the background handles its
	// pongs and close frame, and ends ctx when it goes. The request's own
	// context is not used for the rest: a config reload must not end a
	// watcher whose upload goes on (the tracker closing does).
	ctx := c.CloseRead(context.WithoutCancel(r.Context()))
	go keepAlive(ctx, c)

	snap := sub.Current()
	if h.ExistsProbe != nil && !snap.Found {
		snap = h.lookup(r, owner, q.Key)
	}
	for {
		if err := sendJSON(ctx, c, p.render(snap)); err != nil {
			h.logger.Debug("websocket watcher dropped", zap.Error(err))
			return nil
		}
		if snap.State.Terminal() {
			c.Close(websocket.StatusNormalClosure, snap.State.String())
			return nil
		}
		snap, err = sub.Next(ctx, snap, q.Step)
		switch {
		case errors.Is(err, progress.ErrClosed):
			c.Close(websocket.StatusGoingAway, "server shutting down")
			return nil
		case err != nil:
			return nil
		}
	}
}

// sendJSON writes one message, giving up after watchWriteTimeout so that a
// watcher that does not read cannot hold anything.
func sendJSON(ctx context.Context, c *websocket.Conn, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, watchWriteTimeout)
	defer cancel()
	return c.Write(ctx, websocket.MessageText, b)
}

// keepAlive pings the client until ctx ends; a client that does not answer
// within the write timeout is disconnected.
func keepAlive(ctx context.Context, c *websocket.Conn) {
	t := time.NewTicker(watchPingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, watchWriteTimeout)
			err := c.Ping(pctx)
			cancel()
			if err != nil {
				c.CloseNow()
				return
			}
		}
	}
}
