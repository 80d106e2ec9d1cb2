package progress

import (
	"github.com/caddy-upload-progress/caddy-upload-progress/progress/multipart"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Record is the live state of one upload.
//
// The upload's reader goroutine calls add for every Read; that path is one
// atomic add and one atomic load, with no lock and no allocation. Watchers
// register the byte count they next care about (wakeWhen) and block on a
// broadcast channel that the writer closes only when that count is crossed or
// the record finishes, so a watcher that is slow, or gone, never blocks a writer.
type Record struct {
	id      uint64
	owner   Owner
	key     string
	total   int64 // Content-Length, or -1 when the client sent none
	started time.Time
	// sess is the state of a session record (many requests feed it), nil
	// for the record of one request.
	sess *session

	received atomic.Int64
	// wakeAt is the smallest byte count any watcher is waiting for;
	// math.MaxInt64 when nobody waits.
	wakeAt atomic.Int64
	// changes wakes every watcher of this record.
	changes broadcast
	// readErr is the first non-EOF error reading the request body returned.
	readErr atomic.Pointer[error]
	// end is set once, by the first finish, to &ended; its presence makes
	// the record terminal. finishing is claimed first, by the one finish
	// that then fills ended: the ending lives in the record rather than in
	// an allocation of its own, as every upload ends and records are kept
	// for the retention, where each object is more work for the collector.
	end       atomic.Pointer[ending]
	finishing atomic.Bool
	ended     ending
	// detail is what the upload's protocol keeps with the record (pCloud:
	// the origin's description of the stored files), opaque to the core.
	detail atomic.Pointer[recordDetail]
	// files follows the files of a multipart body, when it is one.
	files atomic.Pointer[multipart.Scanner]
	// fileName names the one file of a raw upload, when the client said it.
	fileName atomic.Pointer[string]
	// bodyDone is set when the body has been read to its end.
	bodyDone atomic.Bool
	// reported is claimed by the one End that reports the ending (counts
	// and logs it), whoever ended the record.
	reported atomic.Bool
	// detailCharge is what the kept detail was charged to the tracker's
	// budget; -1 once the tracker let go of the record (keepDetail).
	detailCharge atomic.Int64

	// The janitor's view of the record's activity, guarded by the
	// tracker's lock: the count it saw last, and when that count changed.
	seenCount   int64
	seenChanged time.Time
}

// ending is how a record finished.
type ending struct {
	outcome Outcome
	at      time.Time
	// received is the byte count at the moment of finishing; later reads
	// (the transport draining a body after an early answer) do not move it.
	received int64
	// files is what the record shows of its multipart files from now on
	// (see keepDetail), or nil.
	files *multipart.Progress
}

func newRecord(id uint64, owner Owner, key string, total int64, now time.Time) *Record {
	r := &Record{id: id, owner: owner, key: key, total: total, started: now}
	r.wakeAt.Store(math.MaxInt64)
	return r
}

// ID distinguishes this record from earlier and later uploads to the same key.
func (r *Record) ID() uint64 { return r.id }

// Key is the key the upload was tracked under.
func (r *Record) Key() string { return r.key }

// Total is the declared size of the upload, or -1 if unknown.
func (r *Record) Total() int64 {
	if s := r.sess; s != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.total
	}
	return r.total
}

// Started is when tracking of the upload began.
func (r *Record) Started() time.Time { return r.started }

// Received is the number of body bytes the proxy has read so far (for a
// session, of all its requests).
func (r *Record) Received() int64 { return r.received.Load() }

// add counts n more bytes. It is the hot path.
func (r *Record) add(n int) {
	v := r.received.Add(int64(n))
	if v >= r.wakeAt.Load() {
		r.wakeAt.Store(math.MaxInt64)
		r.wake()
	}
}

// noteReadError remembers the first error reading the body failed with.
func (r *Record) noteReadError(err error) {
	r.readErr.CompareAndSwap(nil, &err)
}

// Count is the byte count Snapshot reports: frozen at the moment the
// record finished, or the live count while it runs. It is the cheap way
// to the count for logs and metrics, which need nothing else of a snapshot.
func (r *Record) Count() int64 {
	if e := r.end.Load(); e != nil {
		return e.received
	}
	return r.received.Load()
}

// ReadError returns the first non-EOF error the body returned, or nil.
func (r *Record) ReadError() error {
	if p := r.readErr.Load(); p != nil {
		return *p
	}
	return nil
}

// finish ends the record with o unless it has already ended; the first
// outcome wins. It reports whether this call ended the record. Only the
// tracker calls it, so that its counts follow.
func (r *Record) finish(o Outcome, now time.Time, detail *detailBudget) bool {
	if !r.finishing.CompareAndSwap(false, true) {
		return false
	}
	r.ended = ending{outcome: o, at: now, received: r.received.Load()}
	if s := r.sess; s != nil {
		s.mu.Lock()
		r.ended.received = s.receivedLocked()
		s.touchLocked()
		s.mu.Unlock()
	}
	r.ended.files = r.keepDetail(detail)
	r.end.Store(&r.ended)
	// Snapshot reads files before end: once files is nil, end is set.
	r.files.Store(nil)
	r.wake()
	return true
}

// Finished reports whether the record has ended, and how.
func (r *Record) Finished() (Outcome, time.Time, bool) {
	e := r.end.Load()
	if e == nil {
		return Outcome{}, time.Time{}, false
	}
	return e.outcome, e.at, true
}

// FollowMultipart makes the record report the files of its multipart body
// as s sees them. Call it before the body is wrapped (NewBody).
func (r *Record) FollowMultipart(s *multipart.Scanner) { r.files.Store(s) }

// SetFileName names the one file of a raw (not multipart) upload, so that
// the record reports it as a file.
func (r *Record) SetFileName(name string) {
	// A copy: name is likely a piece of the request line.
	name = strings.Clone(name)
	r.fileName.Store(&name)
}

// recordDetail is a protocol's detail and the memory it holds.
type recordDetail struct {
	v    any
	size int64
}

// SetDetail keeps v, which holds about size bytes, with the record, for
// the protocol that tracks it; snapshots carry it as Detail. It is charged
// to the tracker's file-detail budget when the record finishes, and
// dropped if the budget has no room. Set it before the record finishes, so
// that watchers see it with the final state.
// A record that has ended keeps the detail it ended with; a session's
// watchers hear of a new detail as of any change.
func (r *Record) SetDetail(v any, size int64) {
	if r.finishing.Load() {
		return
	}
	r.detail.Store(&recordDetail{v, size})
	r.update(func(*session) {})
}

// SetFinalDetail is SetDetail for the detail a record is about to end
// with: its watchers are not woken for it, as the end that follows wakes
// them, so that they see the detail and the end in one update.
func (r *Record) SetFinalDetail(v any, size int64) {
	if r.finishing.Load() {
		return
	}
	r.detail.Store(&recordDetail{v, size})
}

// Snapshot returns a consistent copy of the record's state.
func (r *Record) Snapshot() Snapshot {
	s := Snapshot{
		Found:    true,
		ID:       r.id,
		Key:      r.key,
		Total:    r.total,
		State:    Uploading,
		Started:  r.started,
		Received: r.received.Load(),
	}
	s.streamed = s.Received
	if ss := r.sess; ss != nil {
		ss.mu.Lock()
		ss.snapshotLocked(&s)
		ss.mu.Unlock()
	}
	// The scanner before the ending: finish clears it after publishing
	// the ending, so a reader that finds it gone finds the ending.
	m := r.files.Load()
	e := r.end.Load()
	if e != nil {
		s.State = e.outcome.State
		s.Error = e.outcome.Error
		s.HTTPStatus = e.outcome.HTTPStatus
		s.Finished = e.at
		s.Received = e.received
	}
	// After the ending, for keepDetail may have dropped them in finish.
	if d := r.detail.Load(); d != nil {
		s.Detail = d.v
	}
	switch {
	case e != nil && e.files != nil:
		p := *e.files
		p.Files = slices.Clone(p.Files) // the caller's own, as Progress gives
		s.Files = &p
	case e == nil && m != nil:
		p := m.Progress()
		s.Files = &p
	default:
		if name := r.fileName.Load(); name != nil {
			s.Files = singleFile(*name, s.Received, s.State)
		}
	}
	return s
}

// singleFile describes a raw upload of one named file as a multipart
// upload of one file would be described.
func singleFile(name string, received int64, st State) *multipart.Progress {
	f := multipart.File{FileName: name, Size: received}
	if st == Uploading {
		return &multipart.Progress{Current: &f, Number: 1}
	}
	return &multipart.Progress{Number: 1, Files: []multipart.File{f}, Done: st == Completed}
}

// wakeWhen asks the writer to wake watchers once received reaches n.
func (r *Record) wakeWhen(n int64) {
	for {
		cur := r.wakeAt.Load()
		if n >= cur || r.wakeAt.CompareAndSwap(cur, n) {
			return
		}
	}
}

func (r *Record) wake() { r.changes.wake() }

// Snapshot is a copy of an upload's state at one moment, as the protocol
// renderers see it.
type Snapshot struct {
	// Found is false when no record is visible for the key; the rest is then zero.
	Found    bool
	ID       uint64
	Key      string
	Total    int64
	Received int64
	State    State
	// Error says why a failed upload failed.
	Error string
	// HTTPStatus is the status the client was answered with, when known.
	HTTPStatus int
	Started    time.Time
	Finished   time.Time
	// Files is what the proxy saw of the files of the upload: those of a
	// multipart body, or the one named file of a raw upload; nil otherwise.
	Files *multipart.Progress
	// Detail is what the upload's protocol kept with the record
	// (Record.SetDetail), or nil.
	Detail any
	// Session is what the record shows of its session, nil for the
	// record of one request.
	Session *SessionState
	// Version grows with every change of a session other than bytes.
	Version uint64
	// Unavailable is set, with Found false, when the shared store that
	// alone could say what the key shows cannot be reached: the reply must
	// say so rather than that the upload does not exist.
	Unavailable bool

	// streamed is the record's byte count when the snapshot was taken:
	// what watchers wait on to see Received move.
	streamed int64
}
