package caddymodule

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// The watchers of a key are fed from one goroutine, the key's feed,
// rather than each waiting on the key in a goroutine of its own: the feed
// waits on the key for all of them, decides for each what goes out and
// when (progress.Paced: the pacing of NextPaced), and hands each message
// to the watcher, whose writer is a goroutine that lives as long as its
// write. A watcher at rest is then its connection and its reader
// goroutine; a much-watched key wakes one goroutine per change rather
// than one per watcher, with one timer rather than one each
// (docs/performance.md, W10).
//
// Watchers whose protocol asks the origin about watched sessions (its
// refresher) follow their key on their own (follow), as do event streams
// that stay responses (HTTP/2, HTTP/3): they have a goroutine anyway.

// feeds are a handler's feeds, one per watched key and owner.
type feeds struct {
	mu sync.Mutex
	m  map[refreshKey]*feed
}

// feed drives the watchers of one key and owner.
type feed struct {
	h *Handler
	k refreshKey

	mu      sync.Mutex
	members []*fedWatcher
	// wait is the subscription the feed waits on, a member's; retired
	// are subscriptions of members gone, closed once not waited on.
	wait    progress.Subscription
	retired []progress.Subscription
	// kick ends the feed's wait (nil when not waiting); until is the
	// wait's deadline (zero: none), live whether the key shows an upload
	// under way; stale that a member came or went that the last turn did
	// not see, and that the feed must look again before it waits.
	stale   bool
	kick    context.CancelFunc
	until   time.Time
	live    bool
	stopped bool

	next feedWait // the run's: what it waits for after a turn
}

// fedTransport is where a fed watcher's messages go.
type fedTransport interface {
	watchSink
	// over is called once, when the watcher is over: err is nil once its
	// end was written, else why it went (errWatcherGone, errNoPong, a
	// write's error).
	over(err error)
}

// fedWatcher is one watcher of a feed.
type fedWatcher struct {
	sub  progress.Subscription
	t    fedTransport
	pace progress.Paced // the feed's, once joined
	idx  int            // where it is in its feed's members, under the feed's lock

	mu       sync.Mutex
	f        *feed // nil until joined
	writing  bool  // a writer goroutine runs
	next     progress.Snapshot
	hasNext  bool
	end      *watchEnd
	done     bool // nothing more is to be written but the end
	overOnce sync.Once
}

// newFedWatcher is a watcher of sub over t, started by start.
func newFedWatcher(sub progress.Subscription, t fedTransport, step int64) *fedWatcher {
	w := &fedWatcher{sub: sub, t: t}
	w.pace.Step = step
	return w
}

// start sends first, the watcher's first message, and joins the key's
// feed; a first that is final ends the watcher at once.
func (h *Handler) startFed(w *fedWatcher, k refreshKey, first progress.Snapshot) {
	if first.State.Terminal() {
		w.sub.Close()
		w.finish(watchEnd{kind: endFinal, state: first.State, snap: first})
		return
	}
	w.pace.Sent(first, time.Now())
	w.deliver(first)
	h.feeds.join(h, k, w)
}

// join adds w to the feed of k, starting one if none runs.
func (fs *feeds) join(h *Handler, k refreshKey, w *fedWatcher) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := fs.m[k]
	if f != nil {
		f.mu.Lock()
		if f.stopped {
			// It ended with its last member, and is about to be
			// forgotten.
			f.mu.Unlock()
			f = nil
		}
	}
	if f == nil {
		if fs.m == nil {
			fs.m = make(map[refreshKey]*feed)
		}
		f = &feed{h: h, k: k}
		fs.m[k] = f
		f.mu.Lock()
		go f.run()
	}
	defer f.mu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return // it left before it joined, and closed its subscription
	}
	w.f, w.idx = f, len(f.members)
	f.members = append(f.members, w)
	// A feed that sleeps past the newcomer's first tick, with an upload
	// under way, looks again.
	if f.live && (f.until.IsZero() || w.pace.Tick(f.h.pace.For(w.sub.Watchers())).Before(f.until)) {
		f.wakeLocked()
	}
}

// wakeLocked has the feed look again: its wait ends, or the next does not
// begin.
func (f *feed) wakeLocked() {
	f.stale = true
	if f.kick != nil {
		f.kick()
	}
}

// remove takes w out of the feed and closes its subscription, or retires
// it if the feed waits on it. It may be called more than once.
func (f *feed) remove(w *fedWatcher) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i := w.idx; i < len(f.members) && f.members[i] == w {
		last := len(f.members) - 1
		f.members[i] = f.members[last]
		f.members[i].idx = i
		f.members[last] = nil
		f.members = f.members[:last]
	}
	if len(f.members) == 0 {
		f.wakeLocked() // to end
	}
	if w.sub == f.wait {
		f.wait = nil
		f.retired = append(f.retired, w.sub)
		f.wakeLocked()
		return
	}
	w.sub.Close()
}

// run feeds the members until there is none left: it looks at the key
// for each (turn), then waits for the key to change, the earliest tick,
// or a kick. The wait is in a frame of its own, so that a feed at rest
// holds a small stack.
func (f *feed) run() {
	for f.turn() {
		f.await()
	}
}

// feedWait is what a feed waits for after a turn: the key to show
// something else than seen (or step bytes more), until (if not zero), or
// a kick.
type feedWait struct {
	sub   progress.Subscription
	seen  progress.Snapshot
	step  int64
	until time.Time
}

// turn sends each member what is due, and sets what to wait for next
// (f.next); false once there is no member left.
func (f *feed) turn() bool {
	f.mu.Lock()
	if len(f.members) == 0 {
		f.stopped = true
		retired := f.retired
		f.retired = nil
		f.mu.Unlock()
		f.h.feeds.forget(f)
		for _, s := range retired {
			s.Close()
		}
		return false
	}
	f.stale = false
	if f.wait == nil {
		f.wait = f.members[0].sub
	}
	retired := f.retired
	f.retired = nil
	list := slices.Clone(f.members)
	sub := f.wait
	f.mu.Unlock()
	for _, s := range retired {
		s.Close()
	}

	now := time.Now()
	snap := named(sub.Current(), f.k.key)
	interval := f.h.pace.For(sub.Watchers())
	var until time.Time
	bytes := int64(math.MaxInt64)
	for _, w := range list {
		send, u, b := w.pace.Look(snap, now, interval)
		if send {
			if snap.State.Terminal() {
				f.remove(w)
				w.finish(watchEnd{kind: endFinal, state: snap.State, snap: snap})
				continue
			}
			w.pace.Sent(snap, now)
			w.deliver(snap)
			// What it waits for next.
			_, u, b = w.pace.Look(snap, now, interval)
		}
		if !u.IsZero() && (until.IsZero() || u.Before(until)) {
			until = u
		}
		bytes = min(bytes, b)
	}
	step := int64(math.MaxInt64)
	if bytes != math.MaxInt64 {
		step = max(bytes-snap.Received, 1)
	}
	f.next = feedWait{sub: sub, seen: snap, step: step, until: until}
	return true
}

// await waits as f.next says; the tracker closing ends every member.
func (f *feed) await() {
	t := &f.next
	var ctx context.Context
	var kick context.CancelFunc
	if t.until.IsZero() {
		ctx, kick = context.WithCancel(context.Background())
	} else {
		ctx, kick = context.WithDeadline(context.Background(), t.until)
	}
	f.mu.Lock()
	f.until, f.live = t.until, t.seen.Found && !t.seen.State.Terminal()
	if f.stale {
		// A member came or went since the turn.
		f.mu.Unlock()
		kick()
		return
	}
	f.kick = kick
	f.mu.Unlock()
	_, err := t.sub.Next(ctx, t.seen, t.step)
	woken := ctx.Err() != nil // kicked, or its deadline
	f.mu.Lock()
	f.kick = nil
	f.mu.Unlock()
	kick()
	if err != nil && !woken {
		// The tracker closed (the server shuts down), or the key cannot
		// be read: every watcher ends.
		f.endAll(err)
	}
}

// endAll ends every member: with a going-away end when the tracker closed,
// else as if each had gone.
func (f *feed) endAll(err error) {
	f.mu.Lock()
	list := slices.Clone(f.members)
	f.mu.Unlock()
	for _, w := range list {
		f.remove(w)
		if errors.Is(err, progress.ErrClosed) {
			w.finish(watchEnd{kind: endClosed})
		} else {
			w.leave(err)
		}
	}
}

// forget drops f from the feeds, once it stopped.
func (fs *feeds) forget(f *feed) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.m[f.k] == f {
		delete(fs.m, f.k)
	}
}

// deliver hands snap's message to the watcher's writer: at once, or after
// the write under way, in place of any message still waiting (the latest
// state is what a watcher wants).
func (w *fedWatcher) deliver(snap progress.Snapshot) { w.hand(snap, nil) }

// finish ends the watcher on the server's side: e goes out after the
// write under way, in place of any message waiting, and nothing after it.
func (w *fedWatcher) finish(e watchEnd) { w.hand(progress.Snapshot{}, &e) }

// hand gives the writer snap's message, or the end e if not nil, unless
// the watcher is done, and starts the writer if none runs.
func (w *fedWatcher) hand(snap progress.Snapshot, e *watchEnd) {
	w.mu.Lock()
	if w.done {
		w.mu.Unlock()
		return
	}
	if e != nil {
		w.done = true
		w.end, w.hasNext = e, false
	} else {
		w.next, w.hasNext = snap, true
	}
	start := !w.writing
	w.writing = true
	w.mu.Unlock()
	if start {
		go w.write()
	}
}

// leave ends the watcher for err, from its side: it went away, did not
// answer pings, or a write failed.
func (w *fedWatcher) leave(err error) {
	w.mu.Lock()
	w.done = true
	w.end, w.hasNext = nil, false
	f := w.f
	w.mu.Unlock()
	if f != nil {
		f.remove(w)
	} else {
		w.sub.Close()
	}
	w.overOnce.Do(func() { w.t.over(err) })
}

// write is the watcher's writer: it writes what is handed to it, then
// ends.
func (w *fedWatcher) write() {
	for {
		w.mu.Lock()
		end, snap, has := w.end, w.next, w.hasNext
		w.end, w.hasNext = nil, false
		if end == nil && !has {
			w.writing = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		if end != nil {
			w.t.end(*end)
			w.overOnce.Do(func() { w.t.over(nil) })
			return
		}
		if err := w.t.send(context.Background(), snap); err != nil {
			w.leave(err)
			return
		}
	}
}
