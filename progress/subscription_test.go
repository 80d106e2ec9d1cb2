package progress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// quietPeriod is how long a test waits to show that Next does NOT return. Running
// out of it is the assertion: nothing worth sending arrived.
const quietPeriod = 100 * time.Millisecond

type nextResult struct {
	snap Snapshot
	err  error
}

// goNext calls sub.Next on another goroutine.
func goNext(ctx context.Context, sub Subscription, prev Snapshot, step int64) <-chan nextResult {
	ch := make(chan nextResult, 1)
	go func() {
		s, err := sub.Next(ctx, prev, step)
		ch <- nextResult{s, err}
	}()
	return ch
}

func awaitNext(t *testing.T, ch <-chan nextResult) nextResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(waitDeadline):
		t.Fatalf("Next did not return within %v", waitDeadline)
		return nextResult{}
	}
}

// expectQuiet asserts that Next(prev, step) does not return for quietPeriod.
func expectQuiet(t *testing.T, sub Subscription, prev Snapshot, step int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), quietPeriod)
	defer cancel()
	s, err := sub.Next(ctx, prev, step)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next returned %+v, %v; want nothing (DeadlineExceeded)", s, err)
	}
}

func mustSubscribe(t testing.TB, tr Tracker, owner Owner, key string) Subscription {
	t.Helper()
	sub, err := tr.Subscribe(owner, key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	return sub
}

func TestSubscriptionNextWaitsForStep(t *testing.T) {
	tr := newTestTracker(t, Options{})
	rec, _ := tr.Begin(Anyone, "/s", 1000)
	sub := mustSubscribe(t, tr, Anyone, "/s")
	u := startPipeUpload(t, rec)

	cur := sub.Current()
	if !cur.Found || cur.ID != rec.ID() || cur.State != Uploading || cur.Received != 0 || cur.Total != 1000 {
		t.Fatalf("Current = %+v", cur)
	}

	const step = 100
	u.send(t, step-1)
	expectQuiet(t, sub, cur, step)

	res := goNext(t.Context(), sub, cur, step)
	waitWatched(t, rec, step)
	u.send(t, 1)
	r := awaitNext(t, res)
	if r.err != nil || r.snap.ID != rec.ID() || r.snap.State != Uploading || r.snap.Received != step {
		t.Fatalf("Next after exactly step bytes = %+v, %v", r.snap, r.err)
	}

	// More than a step at once: Next reports everything that arrived.
	prev := r.snap
	u.send(t, 250)
	r = awaitNext(t, goNext(t.Context(), sub, prev, step))
	if r.err != nil || r.snap.Received != 350 {
		t.Fatalf("Next = %+v, %v; want Received 350", r.snap, r.err)
	}

	// Counted from prev, not from the last wake-up.
	prev = r.snap
	u.send(t, 60)
	expectQuiet(t, sub, prev, step)
	u.send(t, 40)
	r = awaitNext(t, goNext(t.Context(), sub, prev, step))
	if r.err != nil || r.snap.Received != 450 {
		t.Fatalf("Next = %+v, %v; want Received 450", r.snap, r.err)
	}
	if c := sub.Current(); c.Received != 450 {
		t.Fatalf("Current = %+v, want Received 450", c)
	}
}

func TestSubscriptionStepBelowOneMeansEveryByte(t *testing.T) {
	tr := newTestTracker(t, Options{})
	rec, _ := tr.Begin(Anyone, "/s", -1)
	sub := mustSubscribe(t, tr, Anyone, "/s")
	u := startPipeUpload(t, rec)
	for i, step := range []int64{0, -5} {
		prev := sub.Current()
		expectQuiet(t, sub, prev, step)
		u.send(t, 1)
		r := awaitNext(t, goNext(t.Context(), sub, prev, step))
		if r.err != nil || r.snap.Received != int64(i+1) {
			t.Fatalf("step %d: Next = %+v, %v", step, r.snap, r.err)
		}
	}
}

func TestSubscriptionNextReturnsOnFinish(t *testing.T) {
	// In a synctest bubble, synctest.Wait returns once every goroutine of
	// the test waits: a Next that the bytes woke has returned by then, or
	// waits again.
	synctest.Test(t, func(t *testing.T) {
		tr := newTestTracker(t, Options{})
		rec, _ := tr.Begin(Anyone, "/f", 500)
		sub := mustSubscribe(t, tr, Anyone, "/f")
		u := startPipeUpload(t, rec)

		const step = 1 << 40
		cur := sub.Current()
		res := goNext(t.Context(), sub, cur, step)
		waitWatched(t, rec, step)
		u.send(t, 10)
		synctest.Wait()
		select {
		case r := <-res:
			t.Fatalf("Next returned after 10 bytes of a %d step: %+v, %v", step, r.snap, r.err)
		default:
		}
		tr.Finish(rec, Judge(Event{Status: 500, Received: 10}))
		r := awaitNext(t, res)
		if r.err != nil || r.snap.ID != rec.ID() || r.snap.State != Failed || r.snap.Received != 10 ||
			r.snap.HTTPStatus != 500 || r.snap.Error != "origin responded 500 Internal Server Error" {
			t.Fatalf("Next after Finish = %+v, %v", r.snap, r.err)
		}

		// Nothing follows a terminal state until something else happens to the key.
		expectQuiet(t, sub, r.snap, 1)
	})
}

func TestSubscriptionBeforeUploadSeesBegin(t *testing.T) {
	tr := newTestTracker(t, Options{})
	sub := mustSubscribe(t, tr, Anyone, "/later")
	cur := sub.Current()
	if cur != (Snapshot{}) || cur.State != NotExist {
		t.Fatalf("Current before any upload = %+v, want not found", cur)
	}
	expectQuiet(t, sub, cur, 1)

	res := goNext(t.Context(), sub, cur, 1<<20)
	waitParkedInNext(t, 1)
	rec, err := tr.Begin(Anyone, "/later", 77)
	if err != nil {
		t.Fatal(err)
	}
	r := awaitNext(t, res)
	if r.err != nil || !r.snap.Found || r.snap.ID != rec.ID() || r.snap.State != Uploading || r.snap.Total != 77 {
		t.Fatalf("Next after Begin = %+v, %v", r.snap, r.err)
	}
}

func TestSubscriptionFollowsReplacement(t *testing.T) {
	tr := newTestTracker(t, Options{})
	first, _ := tr.Begin(Anyone, "/r", 100)
	sub := mustSubscribe(t, tr, Anyone, "/r")
	cur := sub.Current()

	const step = 1 << 30
	res := goNext(t.Context(), sub, cur, step)
	waitWatched(t, first, step)
	second, _ := tr.Begin(Anyone, "/r", 200)
	r := awaitNext(t, res)
	if r.err != nil || r.snap.ID != second.ID() || r.snap.State != Uploading || r.snap.Total != 200 || r.snap.Received != 0 {
		t.Fatalf("Next after a re-upload = %+v, %v; want record %d", r.snap, r.err, second.ID())
	}

	// The watcher now follows the new record's bytes...
	u := startPipeUpload(t, second)
	prev := r.snap
	res = goNext(t.Context(), sub, prev, 50)
	waitWatched(t, second, 50)
	u.send(t, 50)
	r = awaitNext(t, res)
	if r.err != nil || r.snap.ID != second.ID() || r.snap.Received != 50 {
		t.Fatalf("Next = %+v, %v; want 50 bytes of the new record", r.snap, r.err)
	}
	// ...and the old record finishing is none of its business.
	tr.Finish(first, Judge(Event{ClientGone: true}))
	expectQuiet(t, sub, r.snap, 50)
	if c := sub.Current(); c.ID != second.ID() || c.State != Uploading {
		t.Fatalf("Current = %+v after the replaced record finished", c)
	}
}

func TestSubscriptionContext(t *testing.T) {
	tr := newTestTracker(t, Options{})
	rec, _ := tr.Begin(Anyone, "/c", -1)
	sub := mustSubscribe(t, tr, Anyone, "/c")
	cur := sub.Current()

	ctx, cancel := context.WithCancel(t.Context())
	res := goNext(ctx, sub, cur, 1000)
	waitWatched(t, rec, 1000)
	cancel()
	if r := awaitNext(t, res); !errors.Is(r.err, context.Canceled) || r.err != ctx.Err() {
		t.Fatalf("Next after cancel = %+v, %v; want ctx.Err()", r.snap, r.err)
	}

	// An already-ended context, with nothing new to report.
	if _, err := sub.Next(ctx, cur, 1000); err != context.Canceled {
		t.Fatalf("Next with a cancelled context = %v", err)
	}
	// On an idle key too.
	idle := mustSubscribe(t, tr, Anyone, "/idle")
	if _, err := idle.Next(ctx, idle.Current(), 1); err != context.Canceled {
		t.Fatalf("Next on an idle key with a cancelled context = %v", err)
	}
	dctx, dcancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer dcancel()
	if _, err := idle.Next(dctx, idle.Current(), 1); err != context.DeadlineExceeded {
		t.Fatalf("Next past its deadline = %v", err)
	}
}

func TestSubscriptionExpiredRecordIsNotExist(t *testing.T) {
	const retain = 50 * time.Millisecond
	tr := newTestTracker(t, Options{Retain: retain})
	rec, _ := tr.Begin(Anyone, "/x", 10)
	sub := mustSubscribe(t, tr, Anyone, "/x")
	tr.Finish(rec, Judge(Event{Status: 200}))
	done := sub.Current()
	_, at, _ := rec.Finished()
	if !done.Found && time.Since(at) <= retain {
		t.Fatal("finished record invisible before its retention ran out")
	}
	waitUntil(t, "the record to expire", func() bool { return !sub.Current().Found })
	if c := sub.Current(); c != (Snapshot{}) {
		t.Fatalf("Current after expiry = %+v", c)
	}
	// A watcher that last saw the finished record is told it is gone.
	if done.Found {
		r := awaitNext(t, goNext(t.Context(), sub, done, 1))
		if r.err != nil || r.snap != (Snapshot{}) {
			t.Fatalf("Next after expiry = %+v, %v; want not found", r.snap, r.err)
		}
	}
}

func TestSubscriptionManyWatchers(t *testing.T) {
	const (
		watchers = 200
		total    = 1 << 20
		chunk    = 64 << 10
		step     = 100 << 10
	)
	tr := newTestTracker(t, Options{})
	subs := make([]Subscription, 0, watchers)
	for range watchers / 2 { // half watch before the upload begins
		subs = append(subs, mustSubscribe(t, tr, Anyone, "/many"))
	}
	rec, _ := tr.Begin(Anyone, "/many", total)
	for range watchers / 2 {
		subs = append(subs, mustSubscribe(t, tr, Anyone, "/many"))
	}
	if st := tr.Stats(); st.Watchers != watchers {
		t.Fatalf("Watchers = %d, want %d", st.Watchers, watchers)
	}

	ctx, cancel := context.WithTimeout(t.Context(), waitDeadline)
	defer cancel()
	finals := make(chan Snapshot, watchers)
	errs := make(chan error, watchers)
	var wg sync.WaitGroup
	for _, sub := range subs {
		wg.Go(func() {
			s := sub.Current()
			for !s.State.Terminal() {
				next, err := sub.Next(ctx, s, step)
				if err != nil {
					errs <- err
					return
				}
				if next.ID == s.ID && next.Received < s.Received {
					errs <- fmt.Errorf("Received went back from %d to %d", s.Received, next.Received)
					return
				}
				s = next
			}
			finals <- s
		})
	}

	u := startPipeUpload(t, rec)
	for range total / chunk {
		u.send(t, chunk)
	}
	tr.Finish(rec, Judge(Event{Status: 204, Received: total}))
	wg.Wait()
	close(errs)
	close(finals)
	for err := range errs {
		t.Error(err)
	}
	n := 0
	for s := range finals {
		n++
		if s.ID != rec.ID() || s.State != Completed || s.Received != total || s.HTTPStatus != 204 {
			t.Errorf("a watcher ended with %+v", s)
		}
	}
	if n != watchers {
		t.Fatalf("%d of %d watchers saw the final state", n, watchers)
	}
}

func TestSubscriptionWriterNeverBlockedByWatchers(t *testing.T) {
	const (
		total = 64 << 20
		subs  = 100
	)
	tr := newTestTracker(t, Options{})
	rec, _ := tr.Begin(Anyone, "/big", total)
	stuck := make(chan struct{})
	defer close(stuck)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var woke sync.WaitGroup
	for i := range subs {
		sub := mustSubscribe(t, tr, Anyone, "/big")
		if i%2 == 0 {
			continue // subscribed, never calls Next
		}
		// Calls Next once, then is stuck (like a WebSocket whose peer stopped reading).
		// Its starting point is taken before the writer starts, so that it
		// asks for the first byte; taken later, it could ask for one past the
		// end and rightly wait forever.
		start := sub.Current()
		woke.Add(1)
		go func() {
			sub.Next(ctx, start, 1)
			woke.Done()
			<-stuck
		}()
	}
	waitWatched(t, rec, 1)

	done := make(chan error, 1)
	go func() {
		body := NewBody(io.NopCloser(io.LimitReader(zeroReader{}, total)), rec)
		buf := make([]byte, 32<<10)
		for {
			_, err := body.Read(buf)
			if err == io.EOF {
				done <- nil
				return
			}
			if err != nil {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * waitDeadline):
		t.Fatalf("writer blocked: %d of %d bytes after %v", rec.Received(), total, 3*waitDeadline)
	}
	if rec.Received() != total {
		t.Fatalf("Received = %d, want %d", rec.Received(), total)
	}
	woke.Wait() // every watcher that asked was woken, though none came back
	tr.Finish(rec, Judge(Event{Status: 200}))
	if s := tr.Lookup(Anyone, "/big"); s.State != Completed || s.Received != total {
		t.Fatalf("Lookup = %+v", s)
	}
}
