package progress

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// goNextPaced calls NextPaced on another goroutine.
func goNextPaced(ctx context.Context, sub Subscription, prev Snapshot, step int64, last time.Time, interval time.Duration) <-chan nextResult {
	ch := make(chan nextResult, 1)
	go func() {
		s, err := NextPaced(ctx, sub, prev, step, last, Pace{Interval: interval})
		ch <- nextResult{s, err}
	}()
	return ch
}

// pacedUpload begins a 1000-byte upload of /p, watched by one subscriber,
// whose bytes the test sends.
func pacedUpload(t *testing.T) (*MemoryTracker, *Record, Subscription, *pipeUpload) {
	t.Helper()
	tr := newTestTracker(t, Options{})
	rec, _ := tr.Begin(Anyone, "/p", 1000)
	sub := mustSubscribe(t, tr, Anyone, "/p")
	return tr, rec, sub, startPipeUpload(t, rec)
}

func TestNextPacedCoalescesBytesWithinTheInterval(t *testing.T) {
	_, _, sub, u := pacedUpload(t)
	cur := sub.Current()

	const interval = time.Second
	last := time.Now()
	u.send(t, 30) // three steps' worth before the interval is up
	res := goNextPaced(t.Context(), sub, cur, 10, last, interval)
	waitParkedInNext(t, 1) // holding the update until the interval is up
	u.send(t, 15)
	r := awaitNext(t, res)
	if r.err != nil || r.snap.State != Uploading || r.snap.Received != 45 {
		t.Fatalf("NextPaced = %+v, %v; want one update with all 45 bytes", r.snap, r.err)
	}
	if waited := time.Since(last); waited < interval/2 {
		t.Fatalf("NextPaced returned %v after the last update; want no sooner than %v", waited, interval/2)
	}
}

func TestNextPacedSendsAChangeOfStateAtOnce(t *testing.T) {
	tr, rec, sub, u := pacedUpload(t)
	cur := sub.Current()

	u.send(t, 10)
	res := goNextPaced(t.Context(), sub, cur, 10, time.Now(), time.Hour)
	waitParkedInNext(t, 1)
	tr.Finish(rec, Judge(Event{Status: 201, Received: 10}))
	if r := awaitNext(t, res); r.err != nil || r.snap.State != Completed || r.snap.Received != 10 {
		t.Fatalf("NextPaced after Finish = %+v, %v; want completed at once", r.snap, r.err)
	}
}

func TestNextPacedSendsTheStartOfAnUploadWithItsFirstBytesOnTheNextTick(t *testing.T) {
	// In a synctest bubble the clock moves only when every goroutine of the
	// test waits: the bytes are sent before the tick however loaded the
	// machine is, and the tick comes at its exact time.
	synctest.Test(t, func(t *testing.T) {
		tr := newTestTracker(t, Options{})
		sub := mustSubscribe(t, tr, Anyone, "/p")
		waiting := sub.Current() // not_exist: the watcher waits for an upload

		const interval = 200 * time.Millisecond
		res := goNextPaced(t.Context(), sub, waiting, 10, time.Now().Add(-time.Hour), interval)
		synctest.Wait()
		began := time.Now()
		rec, _ := tr.Begin(Anyone, "/p", 1000)
		u := startPipeUpload(t, rec)
		u.send(t, 30)
		synctest.Wait()
		select {
		case r := <-res:
			t.Fatalf("NextPaced returned the start before the tick: %+v, %v", r.snap, r.err)
		default:
		}

		// The start is held to the first tick after it, with the bytes that
		// came by then.
		r := awaitNext(t, res)
		tick := began.Truncate(interval).Add(interval)
		if r.err != nil || r.snap.State != Uploading || r.snap.ID != rec.ID() || r.snap.Received != 30 {
			t.Fatalf("NextPaced = %+v, %v; want the upload with the 30 bytes sent before the tick", r.snap, r.err)
		}
		if returned := time.Now(); !returned.Equal(tick) {
			t.Fatalf("NextPaced returned the start at %v, want the tick at %v", returned, tick)
		}
	})
}

func TestNextPacedSendsTheEndOfAnUnannouncedUploadAtOnce(t *testing.T) {
	tr := newTestTracker(t, Options{})
	sub := mustSubscribe(t, tr, Anyone, "/p")
	waiting := sub.Current()

	// The next tick is half an hour away or more: only an end can return.
	res := goNextPaced(t.Context(), sub, waiting, 10, time.Now(), time.Hour)
	waitParkedInNext(t, 1)
	rec, _ := tr.Begin(Anyone, "/p", 1000)
	u := startPipeUpload(t, rec)
	u.send(t, 10)
	tr.Finish(rec, Judge(Event{Status: 201, Received: 10}))
	if r := awaitNext(t, res); r.err != nil || r.snap.State != Completed || r.snap.Received != 10 {
		t.Fatalf("NextPaced = %+v, %v; want the upload completed, at once and without its start", r.snap, r.err)
	}
}

func TestNextPacedWithoutIntervalIsNext(t *testing.T) {
	_, _, sub, u := pacedUpload(t)
	cur := sub.Current()

	u.send(t, 10)
	for _, interval := range []time.Duration{0, -1} {
		s, err := NextPaced(t.Context(), sub, cur, 10, time.Now(), Pace{Interval: interval, KeyRate: 1})
		if err != nil || s.Received != 10 {
			t.Fatalf("NextPaced with interval %v = %+v, %v; want the update at once", interval, s, err)
		}
	}
	// An interval already over: at once too.
	s, err := NextPaced(t.Context(), sub, cur, 10, time.Now().Add(-time.Hour), Pace{Interval: time.Second})
	if err != nil || s.Received != 10 {
		t.Fatalf("NextPaced past the interval = %+v, %v", s, err)
	}
}

func TestNextPacedEndsWithItsContextAndTheTracker(t *testing.T) {
	tr := NewMemoryTracker(Options{})
	defer tr.Close()
	rec, _ := tr.Begin(Anyone, "/p", 1000)
	sub := mustSubscribe(t, tr, Anyone, "/p")
	u := startPipeUpload(t, rec)
	cur := sub.Current()
	u.send(t, 10)

	ctx, cancel := context.WithCancel(t.Context())
	res := goNextPaced(ctx, sub, cur, 10, time.Now(), time.Hour)
	waitParkedInNext(t, 1)
	cancel()
	if r := awaitNext(t, res); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("NextPaced after cancel = %+v, %v; want context.Canceled", r.snap, r.err)
	}

	res = goNextPaced(t.Context(), sub, cur, 10, time.Now(), time.Hour)
	waitParkedInNext(t, 1)
	tr.Close()
	if r := awaitNext(t, res); !errors.Is(r.err, ErrClosed) {
		t.Fatalf("NextPaced after the tracker closed = %+v, %v; want ErrClosed", r.snap, r.err)
	}
}

func TestNextPacedSharesTheKeysRateAmongManyWatchers(t *testing.T) {
	tr := newTestTracker(t, Options{})
	rec, _ := tr.Begin(Anyone, "/p", 1000)
	sub := mustSubscribe(t, tr, Anyone, "/p")
	// 50 watchers of a key with 250 updates a second: one update per 200 ms
	// tick each, far more than the 1 ms asked for.
	pace := Pace{Interval: time.Millisecond, KeyRate: 250}
	const watchers = 50
	for range watchers - 1 {
		mustSubscribe(t, tr, Anyone, "/p")
	}
	if n := sub.Watchers(); n != watchers {
		t.Fatalf("Watchers() = %d, want %d", n, watchers)
	}
	u := startPipeUpload(t, rec)
	cur := sub.Current()
	u.send(t, 10)
	last := time.Now()
	s, err := NextPaced(t.Context(), sub, cur, 10, last, pace)
	if err != nil || s.Received != 10 {
		t.Fatalf("NextPaced = %+v, %v", s, err)
	}
	if waited, want := time.Since(last), 100*time.Millisecond; waited < want {
		t.Fatalf("NextPaced returned after %v with %d watchers; want no sooner than %v", waited, watchers, want)
	}
}

func TestPaceIntervalGrowsWithTheWatchersOfAKey(t *testing.T) {
	for _, tc := range []struct {
		pace     Pace
		watchers int
		want     time.Duration
	}{
		{Pace{Interval: 250 * time.Millisecond, KeyRate: 250}, 1, 250 * time.Millisecond},
		{Pace{Interval: 250 * time.Millisecond, KeyRate: 250}, 62, 250 * time.Millisecond},
		{Pace{Interval: 250 * time.Millisecond, KeyRate: 250}, 100, 400 * time.Millisecond},
		{Pace{Interval: 250 * time.Millisecond, KeyRate: 250}, 1000, 4 * time.Second},
		{Pace{Interval: 250 * time.Millisecond}, 1000, 250 * time.Millisecond}, // no rate: no bound
		{Pace{Interval: 250 * time.Millisecond, KeyRate: -1}, 1000, 250 * time.Millisecond},
	} {
		if got := tc.pace.interval(tc.watchers); got != tc.want {
			t.Errorf("%+v.interval(%d) = %v, want %v", tc.pace, tc.watchers, got, tc.want)
		}
	}
}

func TestNextTickIsSharedAndAtLeastHalfAnIntervalAway(t *testing.T) {
	const interval = 100 * time.Millisecond
	tick := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		last, want time.Duration // after tick
	}{
		{0, interval},                  // on a tick: the next one
		{time.Millisecond, interval},   // just after one: the next one, as every watcher in step
		{interval / 2, interval},       // half way: the next, half an interval away
		{interval/2 + 1, 2 * interval}, // past half way: the one after
		{interval - 1, 2 * interval},   // just before a tick: the one after
	} {
		if got := nextTick(tick.Add(tc.last), interval).Sub(tick); got != tc.want {
			t.Errorf("nextTick(tick+%v) = tick+%v, want tick+%v", tc.last, got, tc.want)
		}
	}
	for i := range 1000 {
		last := tick.Add(time.Duration(i) * 997 * time.Microsecond)
		next := nextTick(last, interval)
		if gap := next.Sub(last); gap < interval/2 || gap >= 3*interval/2 || !next.Equal(next.Truncate(interval)) {
			t.Fatalf("nextTick(%v) = %v: gap %v, want a tick in [%v, %v)", last, next, gap, interval/2, 3*interval/2)
		}
	}
}
