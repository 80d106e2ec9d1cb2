package progress

import (
	"context"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MemoryTracker is a Tracker that keeps its records in this process.
type MemoryTracker struct {
	owners *ownerHasher
	nextID atomic.Uint64

	retain            atomic.Int64 // time.Duration
	idleTimeout       atomic.Int64 // time.Duration
	maxKeys           atomic.Int64
	maxWatchers       atomic.Int64
	maxWatchersPerKey atomic.Int64

	inFlight atomic.Int64
	watchers atomic.Int64
	closed   atomic.Bool
	detail   detailBudget

	mu    sync.RWMutex
	slots map[slotKey]*slot

	stop chan struct{}
	done chan struct{}
}

// slotKey namespaces keys by owner.
type slotKey struct {
	owner Owner
	key   string
}

// slot is one key of one owner: the record it shows now, and the watchers
// that follow it from record to record.
type slot struct {
	current atomic.Pointer[Record]
	// replaced wakes watchers when current changes or the tracker closes.
	replaced broadcast
	// watchers changes under MemoryTracker.mu; it is atomic so that a
	// watcher can read it to pace itself without taking the lock.
	watchers atomic.Int32
}

var _ Tracker = (*MemoryTracker)(nil)

// NewMemoryTracker returns a tracker that keeps records in memory and
// forgets finished ones after opts.Retain.
func NewMemoryTracker(opts Options) *MemoryTracker {
	t := &MemoryTracker{
		owners: newOwnerHasher(),
		slots:  make(map[slotKey]*slot),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	t.Configure(opts)
	go t.janitor()
	return t
}

// Configure applies new options to a running tracker (on a config reload).
func (t *MemoryTracker) Configure(opts Options) {
	opts = opts.withDefaults()
	t.retain.Store(int64(opts.Retain))
	t.idleTimeout.Store(int64(opts.IdleTimeout))
	t.maxKeys.Store(int64(opts.MaxKeys))
	t.maxWatchers.Store(int64(opts.MaxWatchers))
	t.maxWatchersPerKey.Store(int64(opts.MaxWatchersPerKey))
	t.detail.max.Store(opts.MaxFileDetails)
}

// Owner implements Tracker.
func (t *MemoryTracker) Owner(credential string) Owner { return t.owners.owner(credential) }

// Begin implements Tracker.
func (t *MemoryTracker) Begin(owner Owner, key string, total int64) (*Record, error) {
	if t.closed.Load() {
		return nil, ErrClosed
	}
	// A key cut from a request's URL or headers would keep the whole
	// request line or header block alive for as long as the record is
	// kept: up to a megabyte for a key of a few bytes.
	key = strings.Clone(key)
	now := time.Now()
	rec := newRecord(t.nextID.Add(1), key, total, now)
	sl, err := t.slotFor(slotKey{owner, key}, now, rec)
	if err != nil {
		return nil, err
	}
	sl.replaced.wake()
	t.inFlight.Add(1)
	return rec, nil
}

// slotFor returns the slot of k, making it if there is room. Under the same
// lock, so the janitor cannot drop the slot in between, it makes rec the
// slot's record if rec is not nil, or else counts a watcher on it.
func (t *MemoryTracker) slotFor(k slotKey, now time.Time, rec *Record) (*slot, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	sl := t.slots[k]
	if rec == nil {
		if t.watchers.Load() >= t.maxWatchers.Load() || sl != nil && int64(sl.watchers.Load()) >= t.maxWatchersPerKey.Load() {
			return nil, ErrTooManyWatchers
		}
	}
	if sl == nil {
		if len(t.slots) >= int(t.maxKeys.Load()) {
			t.reapLocked(now)
			if len(t.slots) >= int(t.maxKeys.Load()) {
				return nil, ErrFull
			}
		}
		sl = &slot{}
		t.slots[k] = sl
	}
	if rec != nil {
		if old := sl.current.Swap(rec); old != nil {
			old.releaseDetail(&t.detail)
		}
	} else {
		sl.watchers.Add(1)
		t.watchers.Add(1)
	}
	return sl, nil
}

// Finish implements Tracker.
func (t *MemoryTracker) Finish(rec *Record, o Outcome) bool {
	if !rec.finish(o, time.Now(), &t.detail) {
		return false
	}
	t.inFlight.Add(-1)
	return true
}

// Lookup implements Tracker.
func (t *MemoryTracker) Lookup(owner Owner, key string) Snapshot {
	t.mu.RLock()
	sl := t.slots[slotKey{owner, key}]
	t.mu.RUnlock()
	if sl == nil {
		return Snapshot{}
	}
	return t.visible(sl.current.Load(), time.Now())
}

// visible is what a record shows to status requests: nothing once it has
// been finished for longer than the retention, even before the janitor ran.
func (t *MemoryTracker) visible(rec *Record, now time.Time) Snapshot {
	if rec == nil || t.expired(rec, now) {
		return Snapshot{}
	}
	return rec.Snapshot()
}

func (t *MemoryTracker) expired(rec *Record, now time.Time) bool {
	_, at, done := rec.Finished()
	return done && now.Sub(at) > time.Duration(t.retain.Load())
}

// Subscribe implements Tracker.
func (t *MemoryTracker) Subscribe(owner Owner, key string) (Subscription, error) {
	if t.closed.Load() {
		return nil, ErrClosed
	}
	// A copy, as in Begin: the slot may outlive the watcher's request.
	k := slotKey{owner, strings.Clone(key)}
	sl, err := t.slotFor(k, time.Now(), nil)
	if err != nil {
		return nil, err
	}
	return &memorySubscription{t: t, k: k, sl: sl}, nil
}

// Stats implements Tracker.
func (t *MemoryTracker) Stats() Stats {
	t.mu.RLock()
	keys := len(t.slots)
	t.mu.RUnlock()
	return Stats{
		InFlight:           t.inFlight.Load(),
		Keys:               keys,
		Watchers:           t.watchers.Load(),
		FileDetailBytes:    t.detail.used.Load(),
		FileDetailsDropped: t.detail.dropped.Load(),
	}
}

// Close implements Tracker.
func (t *MemoryTracker) Close() {
	if !t.closed.CompareAndSwap(false, true) {
		return
	}
	close(t.stop)
	<-t.done
	t.mu.RLock()
	for _, sl := range t.slots {
		sl.replaced.wake()
	}
	t.mu.RUnlock()
}

// janitor forgets expired records now and then, so memory follows the
// retention even for keys nobody asks about again.
func (t *MemoryTracker) janitor() {
	defer close(t.done)
	for {
		// A quarter of the shorter of retention and idle timeout, so that
		// either is kept to within a quarter of itself.
		every := min(time.Duration(t.retain.Load()), time.Duration(t.idleTimeout.Load())) / 4
		every = min(max(every, 50*time.Millisecond), time.Minute)
		timer := time.NewTimer(every)
		select {
		case <-t.stop:
			timer.Stop()
			return
		case now := <-timer.C:
			t.mu.Lock()
			stalled := t.stalledLocked(now)
			t.reapLocked(now)
			t.mu.Unlock()
			for _, rec := range stalled {
				t.Finish(rec, Stalled(time.Duration(t.idleTimeout.Load()), rec.Received()))
			}
		}
	}
}

// stalledLocked returns the uploads whose client has sent nothing for the
// idle timeout while their body is incomplete. The caller holds t.mu.
func (t *MemoryTracker) stalledLocked(now time.Time) []*Record {
	idle := time.Duration(t.idleTimeout.Load())
	var stalled []*Record
	for _, sl := range t.slots {
		rec := sl.current.Load()
		if rec == nil || rec.bodyDone.Load() {
			continue
		}
		if _, _, done := rec.Finished(); done {
			continue
		}
		if n := rec.Received(); n != rec.seenCount || rec.seenChanged.IsZero() {
			rec.seenCount, rec.seenChanged = n, now
			continue
		}
		if now.Sub(rec.seenChanged) >= idle {
			stalled = append(stalled, rec)
		}
	}
	return stalled
}

// reapLocked drops expired records and slots that hold neither a record
// nor a watcher. The caller holds t.mu.
func (t *MemoryTracker) reapLocked(now time.Time) {
	for k, sl := range t.slots {
		if rec := sl.current.Load(); rec != nil && t.expired(rec, now) {
			if sl.current.CompareAndSwap(rec, nil) {
				rec.releaseDetail(&t.detail)
			}
		}
		if sl.current.Load() == nil && sl.watchers.Load() == 0 {
			delete(t.slots, k)
		}
	}
}

type memorySubscription struct {
	t      *MemoryTracker
	k      slotKey
	sl     *slot
	closed atomic.Bool
}

func (s *memorySubscription) Current() Snapshot {
	return s.t.visible(s.sl.current.Load(), time.Now())
}

func (s *memorySubscription) Watchers() int { return int(s.sl.watchers.Load()) }

func (s *memorySubscription) Next(ctx context.Context, prev Snapshot, step int64) (Snapshot, error) {
	step = max(step, 1)
	for {
		// Take the channel before checking closed: Close sets closed, then
		// wakes every slot, so either we see closed or our channel is woken.
		replaced := s.sl.replaced.wait()
		if s.t.closed.Load() {
			return Snapshot{}, ErrClosed
		}
		rec := s.sl.current.Load()
		var changed <-chan struct{}
		if rec != nil {
			changed = rec.changes.wait()
			snap := s.t.visible(rec, time.Now())
			if snap.ID != prev.ID || snap.State != prev.State {
				return snap, nil
			}
			want := int64(math.MaxInt64)
			if prev.Received <= math.MaxInt64-step {
				want = prev.Received + step
			}
			if snap.State == Uploading {
				if snap.Received >= want {
					return snap, nil
				}
				rec.wakeWhen(want)
				// The writer may have crossed want before it saw our wish.
				if rec.Received() >= want {
					continue
				}
			}
		} else if prev.Found {
			return Snapshot{}, nil
		}
		select {
		case <-replaced:
		case <-changed:
		case <-ctx.Done():
			return Snapshot{}, ctx.Err()
		}
	}
}

func (s *memorySubscription) Close() {
	if !s.closed.CompareAndSwap(false, true) {
		return
	}
	s.t.watchers.Add(-1)
	s.t.mu.Lock()
	if s.sl.watchers.Add(-1) == 0 && s.sl.current.Load() == nil && s.t.slots[s.k] == s.sl {
		delete(s.t.slots, s.k)
	}
	s.t.mu.Unlock()
}
