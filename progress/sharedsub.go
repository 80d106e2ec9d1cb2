package progress

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// remoteView is what the other nodes wrote of one watched key, kept from
// what the node's one subscription to the store delivers. The views of a
// tracker are guarded by its vmu.
type remoteView struct {
	entries map[string]entry // by node
	refs    int
	changed broadcast
}

func (v *remoteView) putLocked(e entry) {
	if old, ok := v.entries[e.Node]; ok && old.Seq >= e.Seq {
		return
	}
	v.entries[e.Node] = e
}

// watchView returns the view of k, made and filled from the store on its
// first watcher, before it is returned: a watcher's first answer is what
// the store has, not nothing.
func (t *SharedTracker) watchView(k slotKey) *remoteView {
	t.vmu.Lock()
	v := t.views[k]
	fresh := v == nil
	if fresh {
		v = &remoteView{entries: make(map[string]entry)}
		t.views[k] = v
	}
	v.refs++
	t.vmu.Unlock()
	if fresh {
		t.seed(k, v)
	}
	return v
}

func (t *SharedTracker) releaseView(k slotKey) {
	t.vmu.Lock()
	if v := t.views[k]; v != nil {
		if v.refs--; v.refs == 0 {
			delete(t.views, k)
		}
	}
	t.vmu.Unlock()
}

// seed reads k's entries into v, for what was written before the view
// listened.
func (t *SharedTracker) seed(k slotKey, v *remoteView) {
	if !t.up.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.opts.ReadTimeout)
	datas, err := t.store.Read(ctx, k.owner, k.key)
	cancel()
	if err != nil {
		t.failed("read")
		return
	}
	t.vmu.Lock()
	for _, d := range datas {
		if e, o, err := decodeEntry(d); err == nil && e.Node != t.node && o == k.owner && e.Key == k.key {
			v.putLocked(e)
		}
	}
	t.vmu.Unlock()
	v.changed.wake()
}

// reseedViews reads every watched key again.
func (t *SharedTracker) reseedViews() {
	t.vmu.Lock()
	views := make(map[slotKey]*remoteView, len(t.views))
	for k, v := range t.views {
		views[k] = v
	}
	t.vmu.Unlock()
	for k, v := range views {
		t.seed(k, v)
	}
}

// viewed merges this node's record of k with v: what k shows, and the
// earliest moment a live entry of another node runs out of lease (zero if
// none), when that changes without a write.
func (t *SharedTracker) viewed(k slotKey, v *remoteView) (Snapshot, time.Time) {
	now := time.Now()
	var cands []candidate
	rec := t.mem.lookupRecord(k.owner, k.key)
	if rec != nil {
		snap, sh := rec.sharedSnapshot()
		cands = append(cands, candidate{snap: snap, sh: sh, local: true})
	}
	if rec == nil && !t.up.Load() {
		// What the others wrote before the store went away may be stale.
		return Snapshot{Unavailable: true}, time.Time{}
	}
	var wake time.Time
	t.vmu.Lock()
	for _, e := range v.entries {
		if !t.lostSince.IsZero() && e.State == Uploading && e.Lease >= t.lostSince.UnixMilli() {
			// Its node cannot renew the lease while the store is lost,
			// nor this node hear it: the lease does not run out then.
			e.Lease = max(e.Lease, now.Add(t.opts.Lease).UnixMilli())
		}
		cands = append(cands, entryCandidate(&e, now))
		if e.State == Uploading && e.Lease > now.UnixMilli() {
			if at := time.UnixMilli(e.Lease + 1); wake.IsZero() || at.Before(wake) {
				wake = at
			}
		}
	}
	t.vmu.Unlock()
	return merge(cands, now, time.Duration(t.retain.Load())), wake
}

// sharedSubscription follows a key as this node and the others see it.
type sharedSubscription struct {
	t      *SharedTracker
	k      slotKey
	local  Subscription
	view   *remoteView
	closed atomic.Bool
}

func (s *sharedSubscription) Current() Snapshot {
	snap, _ := s.t.viewed(s.k, s.view)
	return snap
}

func (s *sharedSubscription) Watchers() int { return s.local.Watchers() }

// Next waits for this node's record (through its own subscription), a
// write of another node, or a lease running out, whichever comes first.
func (s *sharedSubscription) Next(ctx context.Context, prev Snapshot, step int64) (Snapshot, error) {
	step = max(step, 1)
	for {
		remote := s.view.changed.wait()
		if s.t.mem.closed.Load() {
			return Snapshot{}, ErrClosed
		}
		local := s.local.Current()
		snap, wake := s.t.viewed(s.k, s.view)
		if worthSending(snap, prev, step) {
			return snap, nil
		}
		wctx, cancel := context.WithCancel(ctx)
		var expiry <-chan time.Time
		var timer *time.Timer
		if !wake.IsZero() {
			timer = time.NewTimer(time.Until(wake))
			expiry = timer.C
		}
		go func() {
			select {
			case <-remote:
			case <-expiry:
			case <-wctx.Done():
			}
			cancel()
		}()
		_, err := s.local.Next(wctx, local, step)
		cancel()
		if timer != nil {
			timer.Stop()
		}
		switch {
		case errors.Is(err, ErrClosed):
			return Snapshot{}, err
		case ctx.Err() != nil:
			return Snapshot{}, ctx.Err()
		}
	}
}

// worthSending reports whether a watcher that was sent prev should be
// sent snap: another record, state or version, or step more bytes.
func worthSending(snap, prev Snapshot, step int64) bool {
	if snap.Found != prev.Found || snap.Unavailable != prev.Unavailable || snap.ID != prev.ID || snap.State != prev.State || snap.Version != prev.Version {
		return true
	}
	return snap.Found && (snap.Received-prev.Received >= step || snap.Received < prev.Received)
}

func (s *sharedSubscription) Close() {
	if !s.closed.CompareAndSwap(false, true) {
		return
	}
	s.local.Close()
	s.t.releaseView(s.k)
}
