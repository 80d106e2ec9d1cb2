package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// watcher follows one upload on the server until it ends: over the
// protocol's WebSocket where the server takes one, else by polling its
// REST status.
type watcher struct {
	ad     adapter
	client *http.Client
	// every is how often the REST status is asked, and how long a
	// WebSocket that ended without the upload's end waits before it is
	// opened again.
	every time.Duration
	// wait bounds how long an upload the server does not know is waited
	// for.
	wait time.Duration
	// fresh, if set, says whether an end reported now can be the watched
	// upload's: an upload command re-uploading to a key sees the end of
	// the key's previous upload until its own request has reached the
	// server. An end it refuses is watched past.
	fresh func() bool
	// emit receives each update that differs from the one before.
	emit func(Update)

	last    Update
	emitted bool
	seen    bool // the server has reported the upload
	live    bool // … in a state that is not an end
}

// errNotAppeared ends a watch whose upload the server did not report
// within wait (exit code 3).
type errNotAppeared time.Duration

func (e errNotAppeared) Error() string {
	return fmt.Sprintf("the upload did not appear within %s", time.Duration(e))
}

// errGone fails a watch whose upload the server stopped knowing before
// its end was seen.
const errGone = "the server no longer knows the upload"

// run watches until the upload ends, and returns its last update: an
// end (completed or failed), unless the error says why the watch stopped.
func (w *watcher) run(ctx context.Context) (Update, error) {
	appearBy := time.Now().Add(w.wait)
	sock, _ := w.ad.socket()
	useSocket := sock != ""
	socketAgain := false // open the socket once the polled upload appears
	barren := 0          // sockets in a row that brought no message
	for {
		if useSocket {
			got, err := w.stream(ctx, appearBy)
			if err == nil {
				return w.last, nil
			}
			var ref *socketRefusal
			var nap errNotAppeared
			switch {
			case errors.As(err, &ref):
				u, derr := w.ad.decode(ref.code, ref.body)
				var ae *answerError
				if errors.As(derr, &ae) && ae.exit == exitUsage {
					return w.last, derr
				}
				// Unknown to the socket (tus, sandbox, dstor refuse an
				// upload before it exists): poll until it appears, then
				// open the socket again. Any other refusal: no socket.
				useSocket, socketAgain = false, derr == nil && u.Status == StatusWaiting && !w.seen
				continue
			case errors.As(err, &nap), ctx.Err() != nil:
				return w.last, err
			case errors.Is(err, errSocketEnded):
				if got {
					barren = 0
				} else if barren++; barren >= 2 {
					useSocket = false
					continue
				}
			default:
				return w.last, err
			}
			if err := sleep(ctx, w.every); err != nil {
				return w.last, err
			}
			continue
		}

		u, err := w.poll(ctx)
		if err != nil {
			return w.last, err
		}
		if w.take(u) {
			return w.last, nil
		}
		if !w.seen && time.Now().After(appearBy) {
			return w.last, errNotAppeared(w.wait)
		}
		if socketAgain && w.seen {
			useSocket, socketAgain = true, false
			continue
		}
		if err := sleep(ctx, w.every); err != nil {
			return w.last, err
		}
	}
}

// take notes u and emits it if it changed; it reports whether u is the
// watched upload's end.
func (w *watcher) take(u Update) bool {
	// Replies without counts (nginx's done and error) keep the last
	// seen, all of the length uploaded at a completion.
	if u.Uploaded < 0 {
		u.Uploaded, u.Total = 0, -1
		if w.seen {
			u.Uploaded, u.Total = w.last.Uploaded, w.last.Total
		}
		if u.Status == StatusCompleted && u.Total >= 0 {
			u.Uploaded = u.Total
		}
	}
	if u.Status == StatusWaiting && w.seen {
		u = Update{Uploaded: w.last.Uploaded, Total: w.last.Total, Status: StatusFailed, Reason: errGone}
	}
	if u.Status.final() && !w.live && w.fresh != nil && !w.fresh() {
		return false
	}
	if u.Status != StatusWaiting {
		w.seen = true
		w.live = w.live || !u.Status.final()
	}
	if !w.emitted || !u.same(w.last) {
		w.emitted = true
		w.emit(u)
	}
	w.last = u
	return u.Status.final()
}

// maxAnswer bounds what is read of an answer: a dstor DONE lists files.
const maxAnswer = 4 << 20

// poll asks the REST status once.
func (w *watcher) poll(ctx context.Context) (Update, error) {
	req, err := w.ad.status(ctx)
	if err != nil {
		return Update{}, err
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return Update{}, fmt.Errorf("asking the server: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return Update{}, fmt.Errorf("reading the server's answer: %w", err)
	}
	return w.ad.decode(resp.StatusCode, body)
}

// sleep waits d, or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
