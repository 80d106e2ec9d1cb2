package progress

import (
	"context"
	"errors"
	"math"
	"time"
)

// KeyUpdatesPerSecond is the most progress updates a second that the
// watchers of one key get between them: a key with more watchers than
// KeyUpdatesPerSecond x interval paces each of them further apart (1,000
// watchers: one update a second each). Changes of state are not counted.
const KeyUpdatesPerSecond = 1000

// NextPaced is sub.Next for a watcher that wants at most one progress
// update per interval, or per its share of KeyUpdatesPerSecond if that is
// longer. Another record or another state is returned at once, as Next
// does; more bytes are returned no sooner than the next tick after last
// (when the previous update was sent, see nextTick), and then as the
// latest state, so that the bytes that arrived in between are coalesced
// into one update. An interval of zero or less is plain Next.
//
// Pacing bounds what a fast upload costs its watchers and the machine: at a
// gigabyte a second, one update per megabyte is a thousand messages a
// second to each watcher, more than any progress bar can show, and each
// message is a write on the proxy and a read on the watcher's side.
func NextPaced(ctx context.Context, sub Subscription, prev Snapshot, step int64, last time.Time, interval time.Duration) (Snapshot, error) {
	if interval > 0 {
		interval = max(interval, time.Duration(sub.Watchers())*time.Second/KeyUpdatesPerSecond)
		// Until the interval is up, only another record or state is news.
		// Waiting for bytes only after it means that a watcher of a fast
		// upload sets no byte threshold, so the upload wakes nobody.
		if wait := time.Until(nextTick(last, interval)); wait > 0 {
			wctx, cancel := context.WithTimeout(ctx, wait)
			changed, err := sub.Next(wctx, prev, math.MaxInt64)
			cancel()
			switch {
			case err == nil:
				return changed, nil
			case errors.Is(err, ErrClosed):
				return Snapshot{}, err
			case ctx.Err() != nil:
				return Snapshot{}, ctx.Err()
			case !errors.Is(err, context.DeadlineExceeded):
				return Snapshot{}, err
			}
		}
	}
	return sub.Next(ctx, prev, step)
}

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
