package test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// tusWatcher is a WebSocket watcher of a tus upload, at the default
// /tus/progress/ws.
type tusWatcher struct{ *socket[tusReply] }

// watchTus opens the watcher of upload (an upload URL or its path),
// failing the test if it is refused. The connection is closed, and its
// reader ended, when the test ends.
func (e *env) watchTus(upload string) *tusWatcher {
	e.t.Helper()
	return &tusWatcher{openSocket[tusReply](e.t, upload, 1<<12, func(ctx context.Context) (*websocket.Conn, *http.Response, error) {
		return e.dialWS(ctx, "/tus/progress/ws?upload="+url.QueryEscape(upload), nil)
	})}
}

// all takes the messages until the server closes, failing the test if it
// does not within the time given or the connection ends without a close;
// it returns every message taken since the watcher opened, and the close
// code.
func (w *tusWatcher) all(t testing.TB, within time.Duration) ([]tusReply, websocket.StatusCode) {
	t.Helper()
	w.rest(t, within)
	if w.err != nil {
		t.Fatalf("watcher ended without a close: %v", w.err)
	}
	return w.taken, w.close.Code
}
