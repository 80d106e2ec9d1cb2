package cli

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

// endGrace is how long, once the upload's answer has come, the server
// has to report the upload's end: it ends its record at that answer.
const endGrace = 10 * time.Second

// upload sends the file and follows the server's count of it until the
// server reports its end.
func (r *run) upload(ctx context.Context) (Update, error) {
	f, err := os.Open(r.o.file)
	if err != nil {
		return Update{}, &usageError{err.Error()}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Update{}, &usageError{err.Error()}
	}
	s, err := senders[r.o.protocol](ctx, r, f, st.Size())
	if err != nil {
		return Update{}, err
	}

	sctx, cancelSend := context.WithCancel(ctx)
	defer cancelSend()
	var answeredAt atomic.Bool
	sent := make(chan error, 1)
	go func() {
		err := s.send(sctx)
		answeredAt.Store(true)
		sent <- err
	}()

	// Until the upload's answer has come, an end the server reports for
	// the key may be an earlier upload's (a re-upload to a shard path).
	w := r.watcher(s.key, answeredAt.Load)
	wctx, cancelWatch := context.WithCancel(ctx)
	defer cancelWatch()
	type result struct {
		last Update
		err  error
	}
	watched := make(chan result, 1)
	go func() {
		last, err := w.run(wctx)
		watched <- result{last, err}
	}()

	select {
	case res := <-watched:
		if res.err != nil {
			// The watch cannot go on: the upload is not what the
			// command is for without it.
			cancelSend()
			<-sent
			return res.last, res.err
		}
		// The server reported the end, so the answer is on its way; if
		// it does not come, the server's word stands.
		select {
		case sendErr := <-sent:
			if res.last.Status == StatusCompleted && sendErr != nil && ctx.Err() == nil {
				res.last.Status, res.last.Reason = StatusFailed, sendErr.Error()
			}
		case <-time.After(endGrace):
			cancelSend()
			<-sent
		}
		return res.last, nil
	case sendErr := <-sent:
		var res result
		select {
		case res = <-watched:
		case <-time.After(endGrace):
			cancelWatch()
			res = <-watched
			switch {
			case ctx.Err() != nil:
			case !w.seen && sendErr != nil:
				res.err = sendErr
			case !w.seen:
				res.err = errNotAppeared(r.o.wait)
			case sendErr != nil:
				res.last.Status, res.last.Reason, res.err = StatusFailed, sendErr.Error(), nil
			default:
				res.err = fmt.Errorf("the server reported no end of the upload within %s of its answer", endGrace)
			}
		}
		if res.err == nil && res.last.Status == StatusCompleted && sendErr != nil {
			res.last.Status, res.last.Reason = StatusFailed, sendErr.Error()
		}
		return res.last, res.err
	}
}
