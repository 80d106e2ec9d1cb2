package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// pollInterval is how often the REST status is asked where no WebSocket
// is taken.
const pollInterval = 500 * time.Millisecond

// run is one command's run: its options, output and HTTP client.
type run struct {
	o      *options
	stdio  Stdio
	client *http.Client
	render renderer
}

// watcher is a watcher of the upload the server names key, showing its
// updates. fresh is the watcher's.
func (r *run) watcher(key string, fresh func() bool) *watcher {
	if r.render == nil {
		r.render = newRenderer(r.stdio.Out, r.o.json, r.stdio.TTY, r.stdio.Columns)
	}
	t := r.o.target
	t.key = key
	v := &view{r: r.render, now: time.Now}
	return &watcher{
		ad:     newAdapters[r.o.protocol](t),
		client: r.client,
		every:  pollInterval,
		wait:   r.o.wait,
		fresh:  fresh,
		emit:   v.show,
	}
}

// watch follows the upload --key names until it ends.
func (r *run) watch(ctx context.Context) (Update, error) {
	return r.watcher(r.o.key, nil).run(ctx)
}

// report closes the display, says how the run ended on stderr (unless it
// completed) and returns the exit code.
func (r *run) report(ctx context.Context, last Update, err error) int {
	if r.render != nil {
		r.render.end(last)
	}
	var nap errNotAppeared
	var ae *answerError
	var ue *usageError
	code := exitCompleted
	switch {
	case ctx.Err() != nil:
		err, code = errors.New("interrupted"), exitInterrupted
	case errors.As(err, &nap):
		code = exitNotAppeared
	case errors.As(err, &ae):
		code = ae.exit
	case errors.As(err, &ue):
		code = exitUsage
	case err != nil:
		code = exitFailed
	case last.Status == StatusCompleted:
		return exitCompleted
	default:
		err, code = errors.New("the upload failed"), exitFailed
		if last.Reason != "" {
			err = fmt.Errorf("the upload failed: %s", last.Reason)
		}
	}
	fmt.Fprintf(r.stdio.Err, "upload-progress: %v\n", err)
	return code
}
