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
// watchers: one update a second each).
const KeyUpdatesPerSecond = 1000

// NextPaced is sub.Next for a watcher that wants at most one update per
// interval, or per its share of KeyUpdatesPerSecond if that is longer,
// sent on ticks shared by every watcher (see nextTick). An end (completed,
// failed, or the record gone) is returned at once. Anything else waits for
// a tick and is then returned as the latest state, so that what happened in
// between is coalesced into one update:
//   - more bytes, no sooner than the next tick after last (when the
//     previous update was sent);
//   - the start of an upload (or of another one on the key), at the next
//     tick, with the bytes that came by then. A watcher that waits for an
//     upload to start hears of it with its first progress, not in a message
//     of its own: when a thousand watchers wait for one upload, that is a
//     thousand messages fewer, written while the upload starts.
//
// An interval of zero or less is plain Next.
//
// Pacing bounds what a fast upload costs its watchers and the machine: at a
// gigabyte a second, one update per megabyte is a thousand messages a
// second to each watcher, more than any progress bar can show, and each
// message is a write on the proxy and a read on the watcher's side.
func NextPaced(ctx context.Context, sub Subscription, prev Snapshot, step int64, last time.Time, interval time.Duration) (Snapshot, error) {
	if interval <= 0 {
		return sub.Next(ctx, prev, step)
	}
	interval = max(interval, time.Duration(sub.Watchers())*time.Second/KeyUpdatesPerSecond)
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
