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
// update per interval, or per its share of KeyUpdatesPerSecond. Another record or another state is returned at
// once, as Next does; more bytes are returned no sooner than interval
// after last (when the previous update was sent), and then as the latest
// state, so that the bytes that arrived in between are coalesced into one
// update. An interval of zero or less is plain Next.
//
// Pacing bounds what a fast upload costs its watchers and the machine: at a
// gigabyte a second, one update per megabyte is a thousand messages a
// second to each watcher, more than any progress bar can show, and each
// message is a write on the proxy and a read on the watcher's side.
func NextPaced(ctx context.Context, sub Subscription, prev Snapshot, step int64, last time.Time, interval time.Duration) (Snapshot, error) {
	snap, err := sub.Next(ctx, prev, step)
	if err != nil || interval <= 0 || snap.ID != prev.ID || snap.State != prev.State {
		return snap, err
	}
	interval = max(interval, time.Duration(sub.Watchers())*time.Second/KeyUpdatesPerSecond)
	wait := time.Until(last.Add(interval))
	if wait <= 0 {
		return snap, nil
	}
	// Until the interval is up, only another record or state is news.
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	changed, err := sub.Next(wctx, snap, math.MaxInt64)
	switch {
	case err == nil:
		return changed, nil
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return sub.Current(), nil
	default:
		return Snapshot{}, err
	}
}
