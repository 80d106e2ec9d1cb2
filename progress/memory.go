package progress

import (
	"context"
	"math"
	mathrand "math/rand/v2"
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

	// finished lists finished records in the order they finished, for
	// making room when the tracker is full: the first are those closest
	// to the end of their retention. Entries of records that are gone
	// already are skipped when they come up.
	fmu      sync.Mutex
	finished finishedQueue
	evicted  atomic.Int64

	stop chan struct{}
	done chan struct{}
	// reconfigured wakes the janitor to take new timings at once.
	reconfigured chan struct{}
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
		owners: newOwnerHasher(opts.OwnerSecret),
		slots:  make(map[slotKey]*slot),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),

		reconfigured: make(chan struct{}, 1),
	}
	// Record IDs tell uploads to one key apart; starting at a random
	// point keeps them apart across the proxies sharing a store too.
	t.nextID.Store(uint64(mathrand.Uint32()) << 32)
	t.Configure(opts)
	go t.janitor()
	return t
}

// Configure implements Tracker.
func (t *MemoryTracker) Configure(opts Options) {
	opts = opts.withDefaults()
	t.retain.Store(int64(opts.Retain))
	t.idleTimeout.Store(int64(opts.IdleTimeout))
	t.maxKeys.Store(int64(opts.MaxKeys))
	t.maxWatchers.Store(int64(opts.MaxWatchers))
	t.maxWatchersPerKey.Store(int64(opts.MaxWatchersPerKey))
	t.detail.max.Store(opts.MaxFileDetails)
	select {
	case t.reconfigured <- struct{}{}:
	default:
	}
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
	rec := newRecord(t.nextID.Add(1), owner, key, total, now)
	sl, _, err := t.slotFor(slotKey{owner, key}, now, rec)
	if err != nil {
		return nil, err
	}
	sl.replaced.wake()
	t.inFlight.Add(1)
	return rec, nil
}

// OpenSession implements Tracker.
func (t *MemoryTracker) OpenSession(owner Owner, key string, spec SessionSpec) (*Record, bool, error) {
	if rec := t.FindSession(owner, key); rec != nil {
		return rec, false, nil
	}
	if t.closed.Load() {
		return nil, false, ErrClosed
	}
	key = strings.Clone(key) // as in Begin
	now := time.Now()
	rec := newRecord(t.nextID.Add(1), owner, key, spec.Total, now)
	idle := spec.Idle
	if idle <= 0 {
		idle = DefaultSessionIdle
	}
	rec.sess = &session{total: spec.Total, parts: spec.Parts, updated: now, idle: idle, inFlight: &t.inFlight}
	sl, cur, err := t.slotFor(slotKey{owner, key}, now, rec)
	if err != nil {
		return nil, false, err
	}
	if cur != rec {
		// Another request opened it in between.
		return cur, false, nil
	}
	sl.replaced.wake()
	return rec, true, nil
}

// FindSession implements Tracker.
func (t *MemoryTracker) FindSession(owner Owner, key string) *Record {
	t.mu.RLock()
	sl := t.slots[slotKey{owner, key}]
	t.mu.RUnlock()
	if sl == nil {
		return nil
	}
	if rec := sl.current.Load(); rec != nil && t.holdsSession(rec, time.Now()) {
		return rec
	}
	return nil
}

// holdsSession reports whether rec is a session its key still holds for
// its requests: not past its retention, and not expired by the tracker. A
// request of a session the tracker expired (its client paused longer than
// the session's idle time, or past the expiry its origin once said) opens
// a new one, which takes over what the old one knew; a session its origin
// said has expired stays as it ended, like any other.
func (t *MemoryTracker) holdsSession(rec *Record, now time.Time) bool {
	if rec.sess == nil || t.expired(rec, now) {
		return false
	}
	o, _, done := rec.Finished()
	return !done || o.State != Expired || o.Reason != ReasonExpired
}

// slotFor returns the slot of k, making it if there is room. Under the same
// lock, so the janitor cannot drop the slot in between, it makes rec the
// slot's record if rec is not nil, or else counts a watcher on it. A
// session stays the slot's record when rec is another session: the
// record the slot holds is returned.
func (t *MemoryTracker) slotFor(k slotKey, now time.Time, rec *Record) (*slot, *Record, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	sl := t.slots[k]
	if rec == nil {
		if t.watchers.Load() >= t.maxWatchers.Load() || sl != nil && int64(sl.watchers.Load()) >= t.maxWatchersPerKey.Load() {
			return nil, nil, ErrTooManyWatchers
		}
	}
	if sl == nil {
		for len(t.slots) >= int(t.maxKeys.Load()) {
			if !t.makeRoomLocked(now) {
				return nil, nil, ErrFull
			}
		}
		sl = &slot{}
		t.slots[k] = sl
	}
	if rec == nil {
		sl.watchers.Add(1)
		t.watchers.Add(1)
		return sl, nil, nil
	}
	cur := sl.current.Load()
	if rec.sess != nil && cur != nil && cur.sess != nil {
		if t.holdsSession(cur, now) {
			return sl, cur, nil
		}
		rec.inherit(cur)
	}
	sl.current.Store(rec)
	if cur != nil {
		cur.releaseDetail(&t.detail)
	}
	return sl, rec, nil
}

// End implements Tracker.
func (t *MemoryTracker) End(rec *Record, ev Event) (Outcome, bool) {
	if _, _, done := rec.Finished(); !done {
		ev.ReadErr = rec.ReadError()
		ev.Received = rec.Received()
		t.Finish(rec, Judge(ev))
	}
	o, _, _ := rec.Finished()
	return o, rec.reported.CompareAndSwap(false, true)
}

// EndSession implements Tracker.
func (t *MemoryTracker) EndSession(rec *Record, o Outcome) bool {
	if rec.sess == nil {
		return false
	}
	return t.Finish(rec, o)
}

// Finish ends rec with o unless it has ended already, and reports whether
// this call ended it. The janitor ends stalled uploads and idle sessions
// with it; requests end theirs with End and EndSession.
func (t *MemoryTracker) Finish(rec *Record, o Outcome) bool {
	if !rec.finish(o, time.Now(), &t.detail) {
		return false
	}
	if rec.sess == nil {
		// A session's requests are counted in flight by its streams.
		t.inFlight.Add(-1)
	}
	t.fmu.Lock()
	t.finished.push(rec)
	t.fmu.Unlock()
	return true
}

// makeRoomLocked forgets the finished record that is closest to the end of
// its retention, unless watchers follow its key, to make room for a new
// key. It reports false when no finished record can go: uploads in flight
// and watched keys fill the tracker. The caller holds t.mu.
func (t *MemoryTracker) makeRoomLocked(now time.Time) bool {
	t.fmu.Lock()
	defer t.fmu.Unlock()
	for {
		rec := t.finished.pop()
		if rec == nil {
			return false
		}
		k := slotKey{rec.owner, rec.key}
		sl := t.slots[k]
		if sl == nil || sl.current.Load() != rec || sl.watchers.Load() > 0 {
			// Gone already, replaced by a newer upload, or watched: a
			// watched key stays, and its record with it.
			continue
		}
		if !t.expired(rec, now) {
			t.evicted.Add(1)
		}
		sl.current.Store(nil)
		rec.releaseDetail(&t.detail)
		delete(t.slots, k)
		return true
	}
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

// lookupRecord returns the record owner's key shows now, or nil: what
// Lookup shows, as the record.
func (t *MemoryTracker) lookupRecord(owner Owner, key string) *Record {
	t.mu.RLock()
	sl := t.slots[slotKey{owner, key}]
	t.mu.RUnlock()
	if sl == nil {
		return nil
	}
	rec, now := sl.current.Load(), time.Now()
	if rec == nil || t.expired(rec, now) {
		return nil
	}
	t.expireSession(rec, now)
	return rec
}

// visible is what a record shows to status requests: nothing once it has
// been finished for longer than the retention, even before the janitor ran.
func (t *MemoryTracker) visible(rec *Record, now time.Time) Snapshot {
	if rec == nil || t.expired(rec, now) {
		return Snapshot{}
	}
	t.expireSession(rec, now)
	return rec.Snapshot()
}

// expireSession ends a session whose time is up as soon as anyone looks,
// rather than at the janitor's next round.
func (t *MemoryTracker) expireSession(rec *Record, now time.Time) {
	if rec.sess == nil {
		return
	}
	if _, _, done := rec.Finished(); !done && rec.sess.expiredAt(now) {
		t.Finish(rec, SessionExpired(rec.sess.expiresSaid()))
	}
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
	sl, _, err := t.slotFor(k, time.Now(), nil)
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
		Evicted:            t.evicted.Load(),
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
		case <-t.reconfigured:
			// A shorter retention or idle timeout applies from now, not
			// once the wait set under the old one is over.
			timer.Stop()
		case now := <-timer.C:
			t.mu.Lock()
			stalled, sessions := t.stalledLocked(now)
			t.reapLocked(now)
			t.mu.Unlock()
			for _, rec := range stalled {
				t.Finish(rec, Stalled(time.Duration(t.idleTimeout.Load()), rec.Received()))
			}
			for _, rec := range sessions {
				t.expireSession(rec, now)
			}
		}
	}
}

// stalledLocked returns the uploads whose client has sent nothing for the
// idle timeout while their body is incomplete, and the open sessions, whose
// time the caller checks once it has let go of t.mu. The caller holds t.mu.
func (t *MemoryTracker) stalledLocked(now time.Time) (stalled, sessions []*Record) {
	idle := time.Duration(t.idleTimeout.Load())
	for _, sl := range t.slots {
		rec := sl.current.Load()
		if rec == nil || rec.bodyDone.Load() {
			continue
		}
		if _, _, done := rec.Finished(); done {
			continue
		}
		if rec.sess != nil {
			sessions = append(sessions, rec)
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
	return stalled, sessions
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
	t.fmu.Lock()
	t.finished.dropGone(func(rec *Record) bool { return t.expired(rec, now) })
	t.fmu.Unlock()
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
			if snap.ID != prev.ID || snap.State != prev.State || snap.Version != prev.Version {
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
				// The record counts every byte its requests bring; what
				// it shows grows by at most as much (a session's part
				// sent again shows nothing until it passes the first).
				at := want
				if want != math.MaxInt64 {
					at = snap.streamed + (want - snap.Received)
				}
				rec.wakeWhen(at)
				// The writer may have crossed it before it saw our wish.
				if rec.Received() >= at {
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
