package progress

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"
)

// SharedTracker is a Tracker for proxies that serve one zone together
// behind a load balancer: each node keeps the uploads it carries in its
// own MemoryTracker, where they are counted as on a single proxy, and
// shares them through a Store, so that every node answers for every
// upload.
//
// The upload never waits on the store: a flusher writes the state of the
// node's live records every FlushInterval (at once when one begins or
// ends), all of them in one Write, off the upload's path. A record
// carries a lease: a node that stops renewing it (dead, or cut off from
// the store) leaves it to be reported failed (NodeGone) by every node once
// the lease has passed. Status requests about records the node does not
// carry read the store; watchers hear of other nodes' writes through one
// Listen per tracker. When the store cannot be reached, the node goes on
// tracking and answering for its own uploads, and says ErrStoreUnavailable
// (Snapshot.Unavailable) where only the store could answer; when it comes
// back, the node writes all its live records again.
type SharedTracker struct {
	mem   *MemoryTracker
	store Store
	opts  SharedOptions
	node  string
	// self is how this node's entries begin, encoded (see entry).
	self   []byte
	seq    atomic.Uint64
	up     atomic.Bool
	retain atomic.Int64 // time.Duration

	lmu  sync.Mutex
	live map[*Record]*written
	// republish makes the next flush write every live record.
	republish atomic.Bool
	kick      chan struct{}

	vmu   sync.Mutex
	views map[slotKey]*remoteView
	// lostSince is when the store was found unreachable, until the views
	// are current again (zero then); listening says whether the
	// subscription is up. Both guarded by vmu.
	lostSince time.Time
	listening bool

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// SharedOptions configure how a SharedTracker uses its store. Zero values
// mean the defaults.
type SharedOptions struct {
	// FlushInterval is how often the node writes its live records.
	// Default 100ms.
	FlushInterval time.Duration
	// Lease is how long a live record stays true in the store without
	// being written again. Default 10s.
	Lease time.Duration
	// ReadTimeout bounds a status request's read of the store. Default 1s.
	ReadTimeout time.Duration
	// OnError is told of every failed store operation ("write", "read",
	// "ping", "listen"), for metrics.
	OnError func(op string)
	// OnState is told when the store becomes reachable (true) or not.
	OnState func(up bool)
}

// Defaults of SharedOptions.
const (
	DefaultFlushInterval = 100 * time.Millisecond
	DefaultLease         = 10 * time.Second
	DefaultReadTimeout   = time.Second
)

// findTimeout bounds the read of the store that a request of a session
// the node has not seen makes before its body passes: the upload waits at
// most that long, and not at all while the store is down.
const findTimeout = 250 * time.Millisecond

// written is what the store last heard of one live record.
type written struct {
	state    State
	received int64
	version  uint64
	at       time.Time
}

var _ Tracker = (*SharedTracker)(nil)

// NewSharedTracker returns a tracker that keeps records as
// NewMemoryTracker(opts) does and shares them through store, which it
// owns from now on (Close closes it).
func NewSharedTracker(opts Options, store Store, so SharedOptions) *SharedTracker {
	if so.FlushInterval <= 0 {
		so.FlushInterval = DefaultFlushInterval
	}
	if so.Lease <= 0 {
		so.Lease = DefaultLease
	}
	if so.ReadTimeout <= 0 {
		so.ReadTimeout = DefaultReadTimeout
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	ctx, cancel := context.WithCancel(context.Background())
	t := &SharedTracker{
		mem:    NewMemoryTracker(opts),
		store:  store,
		opts:   so,
		node:   hex.EncodeToString(id[:]),
		live:   make(map[*Record]*written),
		kick:   make(chan struct{}, 1),
		views:  make(map[slotKey]*remoteView),
		cancel: cancel,
	}
	t.listening = true // until the subscription says otherwise
	t.self = []byte(`{"n":"` + t.node + `"`)
	t.retain.Store(int64(opts.withDefaults().Retain))
	t.up.Store(true)
	t.wg.Add(2)
	go t.flusher(ctx)
	go t.listen(ctx)
	return t
}

// Node names this node in the store; a new one every start.
func (t *SharedTracker) Node() string { return t.node }

// StoreUp reports whether the store was reachable at its last use.
func (t *SharedTracker) StoreUp() bool { return t.up.Load() }

func (t *SharedTracker) setUp(up bool) {
	if t.up.Swap(up) != up {
		if up {
			t.republish.Store(true)
		}
		if t.opts.OnState != nil {
			t.opts.OnState(up)
		}
		// Watchers of keys only the store knows see it go and come back.
		t.vmu.Lock()
		if !up && t.lostSince.IsZero() {
			t.lostSince = time.Now()
		} else if up && t.listening {
			// The subscription did not break: the views missed nothing.
			t.renewLeasesLocked()
		}
		for _, v := range t.views {
			v.changed.wake()
		}
		t.vmu.Unlock()
	}
}

// renewLeasesLocked ends the store's loss for the views: the other
// nodes' entries that were live when the store was lost get a lease from
// now. No node could renew its lease while the store was unreachable, so
// an upload whose node went on carrying it must not read as its node gone
// once the store is back, before that node has written again; a node that
// did die meanwhile shows so a lease after the store's return.
func (t *SharedTracker) renewLeasesLocked() {
	if t.lostSince.IsZero() {
		return
	}
	since := t.lostSince.UnixMilli()
	lease := time.Now().Add(t.opts.Lease).UnixMilli()
	for _, v := range t.views {
		for node, e := range v.entries {
			if e.State == Uploading && e.Lease >= since && e.Lease < lease {
				e.Lease = lease
				v.entries[node] = e
			}
		}
	}
	t.lostSince = time.Time{}
}

func (t *SharedTracker) failed(op string) {
	t.setUp(false)
	if t.opts.OnError != nil {
		t.opts.OnError(op)
	}
}

// Owner implements Tracker.
func (t *SharedTracker) Owner(credential string) Owner { return t.mem.Owner(credential) }

// Begin implements Tracker.
func (t *SharedTracker) Begin(owner Owner, key string, total int64) (*Record, error) {
	rec, err := t.mem.Begin(owner, key, total)
	if err == nil {
		t.track(rec)
	}
	return rec, err
}

// End implements Tracker.
func (t *SharedTracker) End(rec *Record, ev Event) (Outcome, bool) {
	o, report := t.mem.End(rec, ev)
	t.flushSoon()
	return o, report
}

// OpenSession implements Tracker. A session another node holds is taken
// up where that node's entry says, as FindSession does.
func (t *SharedTracker) OpenSession(owner Owner, key string, spec SessionSpec) (*Record, bool, error) {
	if rec := t.FindSession(owner, key); rec != nil {
		return rec, false, nil
	}
	rec, made, err := t.mem.OpenSession(owner, key, spec)
	if err == nil && made {
		t.track(rec)
		// The next request of the session may go to another node at
		// once, even before this answer is through: that node must find
		// it. The request that opened it waits one write, not its body.
		t.writeNow(rec)
	}
	return rec, made, err
}

// FindSession implements Tracker. A session this node does not hold but
// another one does (the load balancer sent this request of it here) is
// opened here, with the length, parts and detail the store has of it: the
// node then counts this request's bytes into it, and the store merges
// both nodes' views.
func (t *SharedTracker) FindSession(owner Owner, key string) *Record {
	if rec := t.mem.FindSession(owner, key); rec != nil {
		return rec
	}
	if !t.up.Load() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), min(findTimeout, t.opts.ReadTimeout))
	cands, err := t.remote(ctx, owner, key)
	cancel()
	if err != nil {
		return nil
	}
	snap := merge(cands, time.Now(), time.Duration(t.retain.Load()))
	if !snap.Found || snap.Session == nil || snap.State != Uploading {
		return nil
	}
	rec, made, err := t.mem.OpenSession(owner, key, SessionSpec{Total: snap.Total, Parts: snap.Session.Parts})
	if err != nil {
		return nil
	}
	if made {
		if snap.Detail != nil {
			rec.detail.Store(&recordDetail{v: snap.Detail})
		}
		t.track(rec)
	}
	return rec
}

// EndSession implements Tracker.
func (t *SharedTracker) EndSession(rec *Record, o Outcome) bool {
	ended := t.mem.EndSession(rec, o)
	t.flushSoon()
	return ended
}

// Lookup implements Tracker. An upload the node carries is answered from
// memory; anything else asks the store.
func (t *SharedTracker) Lookup(owner Owner, key string) Snapshot {
	rec := t.mem.lookupRecord(owner, key)
	var cands []candidate
	if rec != nil {
		snap, sh := rec.sharedSnapshot()
		if rec.sess == nil && snap.State == Uploading {
			return snap
		}
		cands = append(cands, candidate{snap: snap, sh: sh, local: true})
	}
	var err error
	if t.up.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), t.opts.ReadTimeout)
		var more []candidate
		more, err = t.remote(ctx, owner, key)
		cancel()
		cands = append(cands, more...)
	} else {
		err = ErrStoreUnavailable
	}
	if err != nil {
		if rec != nil {
			return cands[0].snap
		}
		return Snapshot{Unavailable: true}
	}
	return merge(cands, time.Now(), time.Duration(t.retain.Load()))
}

// View is what the zone shows of rec, a session this node holds: its
// own view merged with the other nodes' (see merge), or its own alone
// when the store cannot say.
func (t *SharedTracker) View(rec *Record) Snapshot {
	snap, sh := rec.sharedSnapshot()
	if rec.sess == nil || !t.up.Load() {
		return snap
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.opts.ReadTimeout)
	more, err := t.remote(ctx, rec.owner, rec.key)
	cancel()
	if err != nil {
		return snap
	}
	cands := []candidate{{snap: snap, sh: sh, local: true}}
	for _, c := range more {
		if c.snap.Session != nil {
			cands = append(cands, c)
		}
	}
	if merged := merge(cands, time.Now(), time.Duration(t.retain.Load())); merged.Found {
		return merged
	}
	return snap
}

// Viewer is a tracker whose records are not the whole of what the zone
// shows of them (SharedTracker): View merges the rest in.
type Viewer interface {
	View(rec *Record) Snapshot
}

var _ Viewer = (*SharedTracker)(nil)

// remote reads the other nodes' entries of owner's key.
func (t *SharedTracker) remote(ctx context.Context, owner Owner, key string) ([]candidate, error) {
	datas, err := t.store.Read(ctx, owner, key)
	if err != nil {
		t.failed("read")
		return nil, err
	}
	now := time.Now()
	var cands []candidate
	for _, d := range datas {
		e, o, err := decodeEntry(d)
		if err != nil || e.Node == t.node || o != owner || e.Key != key {
			continue
		}
		cands = append(cands, entryCandidate(&e, now))
	}
	return cands, nil
}

// Subscribe implements Tracker.
func (t *SharedTracker) Subscribe(owner Owner, key string) (Subscription, error) {
	local, err := t.mem.Subscribe(owner, key)
	if err != nil {
		return nil, err
	}
	k := slotKey{owner, key}
	return &sharedSubscription{t: t, k: k, local: local, view: t.watchView(k)}, nil
}

// Stats implements Tracker.
func (t *SharedTracker) Stats() Stats { return t.mem.Stats() }

// Configure implements Tracker.
func (t *SharedTracker) Configure(opts Options) {
	t.mem.Configure(opts)
	t.retain.Store(int64(opts.withDefaults().Retain))
}

// Close implements Tracker. The node's live records stay in the store
// until their lease passes: another node may still be carrying on with a
// session of theirs, and one that is not is then reported gone.
func (t *SharedTracker) Close() {
	t.cancel()
	t.wg.Wait()
	t.mem.Close()
	_ = t.store.Close()
}

// track makes rec one of the live records the flusher writes, at its next
// tick: an upload shorter than flush_interval is then written once, ended.
func (t *SharedTracker) track(rec *Record) {
	t.lmu.Lock()
	t.live[rec] = &written{}
	t.lmu.Unlock()
}

// writeNow writes rec at once, waiting at most findTimeout, and not at all
// while the store is down; the flusher writes it again as it changes.
func (t *SharedTracker) writeNow(rec *Record) {
	if !t.up.Load() {
		return
	}
	now := time.Now()
	e, snap := entryOf(t.node, t.seq.Add(1), rec, now.Add(t.opts.Lease))
	e.Detail = encodeDetail(snap.Detail)
	data, err := json.Marshal(&e)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), min(findTimeout, t.opts.ReadTimeout))
	defer cancel()
	err = t.store.Write(ctx, []StoreEntry{{Owner: rec.owner, Key: rec.key, Node: t.node, Data: data, TTL: t.opts.Lease + time.Duration(t.retain.Load())}})
	if err != nil {
		t.failed("write")
	}
}

// flushSoon asks for a flush now: a record ended.
func (t *SharedTracker) flushSoon() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

func (t *SharedTracker) flusher(ctx context.Context) {
	defer t.wg.Done()
	tick := time.NewTicker(t.opts.FlushInterval)
	defer tick.Stop()
	// Endings that come close together go in one write: after a flush the
	// flusher rests a twentieth of the interval, which delays an ending
	// by at most that.
	rest := time.NewTimer(0)
	defer rest.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-t.kick:
		}
		t.flush(ctx)
		rest.Reset(max(t.opts.FlushInterval/20, time.Millisecond))
		select {
		case <-ctx.Done():
			return
		case <-rest.C:
		}
	}
}

// flush writes the live records that changed since they were last
// written, or whose lease needs renewing, in one Write.
func (t *SharedTracker) flush(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, max(t.opts.FlushInterval, t.opts.ReadTimeout))
	defer cancel()
	if !t.up.Load() {
		if err := t.store.Ping(ctx); err != nil {
			t.failed("ping")
			return
		}
		t.setUp(true)
	}
	now := time.Now()
	lease := t.opts.Lease
	renew := lease / 3
	all := t.republish.Swap(false)
	type pending struct {
		rec *Record
		w   written
	}
	var batch []StoreEntry
	var done []pending
	t.lmu.Lock()
	for rec, w := range t.live {
		e, snap := entryOf(t.node, 0, rec, now.Add(lease))
		dirty := all || w.at.IsZero() || e.State != w.state || e.Received != w.received || e.Version != w.version ||
			e.State == Uploading && now.Sub(w.at) >= renew
		if !dirty {
			continue
		}
		e.Seq = t.seq.Add(1)
		e.Detail = encodeDetail(snap.Detail)
		data, err := json.Marshal(&e)
		if err != nil {
			continue
		}
		ttl := lease + time.Duration(t.retain.Load())
		if e.State != Uploading {
			ttl = max(time.Duration(t.retain.Load())-now.Sub(snap.Finished), time.Second)
		}
		batch = append(batch, StoreEntry{Owner: rec.owner, Key: rec.key, Node: t.node, Data: data, TTL: ttl})
		done = append(done, pending{rec, written{state: e.State, received: e.Received, version: e.Version, at: now}})
	}
	t.lmu.Unlock()
	if len(batch) == 0 {
		return
	}
	if err := t.store.Write(ctx, batch); err != nil {
		t.failed("write")
		t.republish.Store(true)
		return
	}
	t.setUp(true)
	t.lmu.Lock()
	for _, p := range done {
		if p.w.state != Uploading {
			delete(t.live, p.rec)
		} else if w := t.live[p.rec]; w != nil {
			*w = p.w
		}
	}
	t.lmu.Unlock()
}

// listen feeds other nodes' writes to the views of watched keys.
func (t *SharedTracker) listen(ctx context.Context) {
	defer t.wg.Done()
	t.store.Listen(ctx, t.deliver, func(up bool) {
		t.vmu.Lock()
		t.listening = up
		if up {
			t.renewLeasesLocked()
		}
		t.vmu.Unlock()
		if up {
			// The store is back. What was written while the
			// subscription was down is missed: watchers read it again.
			t.setUp(true)
			t.reseedViews()
			return
		}
		t.failed("listen")
	})
}

func (t *SharedTracker) deliver(data []byte) {
	// The node hears its own writes too; they need no decoding.
	if bytes.HasPrefix(data, t.self) {
		return
	}
	e, owner, err := decodeEntry(data)
	if err != nil || e.Node == t.node {
		return
	}
	t.followEnd(owner, &e)
	k := slotKey{owner, e.Key}
	t.vmu.Lock()
	v := t.views[k]
	if v != nil {
		v.putLocked(e)
	}
	t.vmu.Unlock()
	if v != nil {
		v.changed.wake()
	}
}

// followEnd ends this node's part of a session that another node saw its
// origin end (the last PATCH went there), so that this node stops
// renewing it as live and its requests see it ended.
func (t *SharedTracker) followEnd(owner Owner, e *entry) {
	if e.Session == nil || !(e.State == Completed || e.State == Aborted || e.State == Failed && e.Error != NodeGone) {
		return
	}
	rec := t.mem.lookupRecord(owner, e.Key)
	if rec == nil || rec.sess == nil || rec.started.UnixMilli() > e.Finished {
		return
	}
	if _, _, done := rec.Finished(); !done {
		if t.mem.EndSession(rec, SessionEnded(e.State, e.Error, e.HTTPStatus)) {
			t.flushSoon()
		}
	}
}
