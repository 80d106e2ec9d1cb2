package progress

import (
	"context"
	"errors"
	"math"
	"time"
)

// Pace is how often watchers are sent progress.
type Pace struct {
	// Interval is the least time between two progress updates to one
	// watcher; they go out on ticks every Interval, shared by every
	// watcher (see nextTick). Zero or less: no pacing, every step and
	// every change at once.
	Interval time.Duration
	// KeyRate is the most progress updates a second that the watchers of
	// one key get between them: with more than KeyRate x Interval
	// watchers, each is paced further apart (at 250, 1,000 watchers get
	// an update every 4 s each). It bounds what a much-watched key costs
	// the machine, as each update is a write for every watcher. Zero or
	// less: no bound.
	KeyRate int
}

// interval is the pace of one of n watchers of a key.
func (p Pace) interval(n int) time.Duration {
	if p.KeyRate <= 0 {
		return p.Interval
	}
	return max(p.Interval, time.Duration(n)*time.Second/time.Duration(p.KeyRate))
}

// NextPaced is sub.Next for a watcher paced by pace: at most one update per
// interval, or per its share of the key's rate if that is longer, sent on
// ticks shared by every watcher. An end (completed, failed, or the record
// gone) is returned at once. Anything else waits for a tick and is then
// returned as the latest state, so that what happened in between is
// coalesced into one update:
//   - more bytes, no sooner than the next tick after last (when the
//     previous update was sent);
//   - the start of an upload (or of another one on the key), at the next
//     tick, with the bytes that came by then. A watcher that waits for an
//     upload to start hears of it with its first progress, not in a message
//     of its own: when a thousand watchers wait for one upload, that is a
//     thousand messages fewer, written while the upload starts.
//
// Without an interval it is plain Next.
//
// Pacing bounds what a fast upload costs its watchers and the machine: at a
// gigabyte a second, one update per megabyte is a thousand messages a
// second to each watcher, more than any progress bar can show, and each
// message is a write on the proxy and a read on the watcher's side.
func NextPaced(ctx context.Context, sub Subscription, prev Snapshot, step int64, last time.Time, pace Pace) (Snapshot, error) {
	if pace.Interval <= 0 {
		return sub.Next(ctx, prev, step)
	}
	interval := pace.interval(sub.Watchers())
	tick := nextTick(last, interval)
	held := false // prev is a start not yet returned
	for {
		// Until the tick, only an end is news. Waiting for bytes only
		// after it means that a watcher of a fast upload sets no byte
		// threshold, so the upload wakes nobody.
		if wait := time.Until(tick); wait > 0 {
			wctx, cancel := context.WithTimeout(ctx, wait)
			changed, err := sub.Next(wctx, prev, math.MaxInt64)
			cancel()
			switch {
			case err == nil:
				if isEnd(changed) {
					return changed, nil
				}
				prev, held = changed, true
				continue
			case errors.Is(err, ErrClosed):
				return Snapshot{}, err
			case ctx.Err() != nil:
				return Snapshot{}, ctx.Err()
			case !errors.Is(err, context.DeadlineExceeded):
				return Snapshot{}, err
			}
		}
		if held {
			return sub.Current(), nil
		}
		next, err := sub.Next(ctx, prev, step)
		if err != nil || isEnd(next) || (next.ID == prev.ID && next.State == prev.State) {
			return next, err
		}
		// An upload started long after the tick (its watcher was waiting
		// for it): it goes out on the next tick, with its first bytes.
		prev, held = next, true
		tick = time.Now().Truncate(interval).Add(interval)
	}
}

// isEnd reports whether s ends what its watcher was following: a final
// state, or no record any more.
func isEnd(s Snapshot) bool { return !s.Found || s.State.Terminal() }

// nextTick is when a watcher that was sent an update at last may get the
// next one: the first tick of a clock beating every interval, shared by
// every watcher with that interval, at least half an interval after last.
// Watchers paced to shared ticks wake together, so their messages go out
// in one burst rather than each waking the proxy (and its own client) at
// its own moment; a watcher in step with the ticks gets one update per
// interval.
func nextTick(last time.Time, interval time.Duration) time.Time {
	t := last.Add(interval).Truncate(interval)
	if t.Sub(last) < interval/2 {
		t = t.Add(interval)
	}
	return t
}
