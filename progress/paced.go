package progress

import (
	"math"
	"time"
)

// Paced is one watcher's pacing, for a caller that follows many watchers
// of a key from one goroutine (rather than each waiting in NextPaced):
// it is told what the key shows (Look) and says whether to send it now,
// or when to look again. It keeps NextPaced's rules: at most one update
// per interval on ticks shared by every watcher, an end at once, the
// start of an upload held for the next tick, with its first bytes.
type Paced struct {
	// Last is what the watcher was last sent.
	Last Snapshot
	// Step is the bytes more that make an update worth sending.
	Step int64

	sent     time.Time // when Last was sent
	held     bool      // something new came before the tick, and goes out at it
	heldTill time.Time // a start held to this tick, if not zero
}

// Sent records that the watcher was sent snap at now.
func (w *Paced) Sent(snap Snapshot, now time.Time) {
	w.Last, w.sent, w.held, w.heldTill = snap, now, false, time.Time{}
}

// Tick is when the watcher may next be sent an update, paced at
// interval: the first shared tick at least half an interval after the
// last update (nextTick), or the tick a start is held to.
func (w *Paced) Tick(interval time.Duration) time.Time {
	if !w.heldTill.IsZero() {
		return w.heldTill
	}
	return nextTick(w.sent, interval)
}

// Look reports whether snap, what the key shows at now, goes to the
// watcher now (then call Sent). If not, the watcher is to be looked at
// again at until (zero: not for time's sake), or once the key shows
// bytes received (math.MaxInt64: not for bytes), or at any change of
// what the key shows but its bytes.
func (w *Paced) Look(snap Snapshot, now time.Time, interval time.Duration) (send bool, until time.Time, bytes int64) {
	prev := w.Last
	var tick time.Time
	if interval > 0 {
		tick = w.Tick(interval)
	}
	step := max(w.Step, 1)
	changed := worthSending(snap, prev, math.MaxInt64)
	more := snap.Found && (snap.Received-prev.Received >= step || snap.Received < prev.Received)
	if !changed && !more {
		if now.Before(tick) {
			// Until the tick, only an end is news: the upload wakes
			// nobody for its bytes.
			return false, tick, math.MaxInt64
		}
		want := int64(math.MaxInt64)
		if prev.Received <= math.MaxInt64-step {
			want = prev.Received + step
		}
		return false, time.Time{}, want
	}
	if isEnd(snap) || interval <= 0 {
		return true, time.Time{}, math.MaxInt64
	}
	if now.Before(tick) {
		w.held = true
		return false, tick, math.MaxInt64
	}
	if (snap.ID != prev.ID || snap.State != prev.State) && !w.held {
		// An upload started long after the tick (its watcher was
		// waiting for it): it goes out on the next tick, with its first
		// bytes.
		w.held = true
		w.heldTill = now.Truncate(interval).Add(interval)
		return false, w.heldTill, math.MaxInt64
	}
	return true, time.Time{}, math.MaxInt64
}

// Interval is the pace of one of n watchers of a key: Interval, or the
// watcher's share of KeyRate if that is longer.
func (p Pace) For(n int) time.Duration { return p.interval(n) }
