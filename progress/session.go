package progress

import (
	"github.com/caddy-upload-progress/caddy-upload-progress/progress/multipart"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// A session is an upload that spans many requests: the PATCHes of a tus
// upload, the parts of a multi-part upload session, the chunks of a folder
// upload. Its record lives across them; each request whose body carries
// session bytes is a Stream of it.
//
// What the session has received is what its origin acknowledged plus
// what streams through the proxy now, each part counted once:
//   - a stream with a start offset (tus) covers the bytes from there: the
//     session has received max(acknowledged, start + the stream's bytes);
//   - a stream of a numbered part (a multi-part session) adds what it
//     brought beyond what the origin accepted of that part before, the
//     newest stream of a part only (a part sent again counts once);
//   - any other stream (a chunk) adds its bytes until the origin answers.
//
// The state a session keeps besides its byte counts changes once per
// request, never per byte, and is guarded by a lock; the upload's Read
// path touches only the stream's counter and the record's.
type session struct {
	mu sync.Mutex
	// version grows with every change that is not bytes: a stream that
	// starts or ends, an acknowledgement, an error. Watchers compare it.
	version atomic.Uint64

	total   int64 // declared length in bytes, -1 while unknown
	parts   int   // declared number of parts, 0 when not numbered
	acked   int64 // bytes the origin acknowledged
	partAck map[int]int64
	// What acked is made of, for proxies that share the session through a
	// store (see shares): the offset the origin last answered, and the
	// bytes of accepted chunks.
	offsetAck, chunkAck int64
	// accepted is how many streams the origin accepted, and files how
	// many files the multipart bodies of those streams held.
	accepted int
	files    int
	streams  []*Stream
	// streamed is how many streams the session has had, for telling a
	// session that never received a byte from one that paused.
	streamed int
	lastErr  string
	// lastByte is when a stream that brought bytes last ended.
	lastByte time.Time
	updated  time.Time
	expires  time.Time
	idle     time.Duration
	// inFlight is the tracker's count of requests being received, which
	// the session's streams are part of.
	inFlight *atomic.Int64
}

// SessionSpec is what a session is opened with.
type SessionSpec struct {
	// Total is the declared length in bytes, -1 while unknown.
	Total int64
	// Parts is the declared number of numbered parts, 0 if parts are not numbered.
	Parts int
	// Idle is how long the session may have no request before it expires.
	// Zero: DefaultSessionIdle.
	Idle time.Duration
}

// DefaultSessionIdle is how long a session lives without a request when
// its protocol sets no other time.
const DefaultSessionIdle = 24 * time.Hour

// Stream is one request of a session whose body brings session bytes.
type Stream struct {
	rec  *Record
	part int   // the part number, 0 when not numbered
	from int64 // where the stream starts in the upload, -1 when it does not say
	size int64 // the request's Content-Length, -1 without one
	n    atomic.Int64
	// readErr is the first non-EOF error reading the body returned.
	readErr atomic.Pointer[error]
	// scan follows the files of a multipart body, when the stream's
	// protocol reports files (FollowMultipart).
	scan atomic.Pointer[multipart.Scanner]
	// done is set once the stream no longer counts (Session.EndStream).
	done bool
}

// Received is the number of body bytes the stream has brought.
func (st *Stream) Received() int64 { return st.n.Load() }

// FollowMultipart makes the stream report the files of its multipart body
// as s sees them. Call it before the body is wrapped (Body.InitStream).
func (st *Stream) FollowMultipart(s *multipart.Scanner) { st.scan.Store(s) }

// noteReadError remembers the first error reading the body failed with.
// It is a function of its own so that taking the error's address moves
// only this copy to the heap, not Body.Read's on every call.
func (st *Stream) noteReadError(err error) {
	st.readErr.CompareAndSwap(nil, &err)
}

// ReadError returns the first non-EOF error the body returned, or nil.
func (st *Stream) ReadError() error {
	if p := st.readErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Record is the session the stream belongs to.
func (st *Stream) Record() *Record { return st.rec }

// IsSession reports whether r is a session record.
func (r *Record) IsSession() bool { return r.sess != nil }

// StartStream counts the body of a request of the session from now on:
// part is the part number (0: not numbered), from the offset where the
// stream starts (-1: not said), size its length (-1: unknown). It returns
// nil for a record that is not a session.
func (r *Record) StartStream(part int, from, size int64) *Stream {
	s := r.sess
	if s == nil {
		return nil
	}
	st := &Stream{rec: r, part: part, from: from, size: size}
	s.mu.Lock()
	s.streams = append(s.streams, st)
	s.streamed++
	s.inFlight.Add(1)
	s.touchLocked()
	s.mu.Unlock()
	r.wake()
	return st
}

// EndStream stops counting st as in flight. accepted says the origin
// accepted what it brought: a numbered part then keeps it as the part's
// accepted bytes, a stream of no part and no offset (a chunk) adds it to
// the acknowledged bytes. A stream with an offset is acknowledged by
// Acknowledge, with the offset the origin answered. It is idempotent.
func (r *Record) EndStream(st *Stream, accepted bool) {
	s := r.sess
	if s == nil || st == nil {
		return
	}
	s.mu.Lock()
	if st.done {
		s.mu.Unlock()
		return
	}
	st.done = true
	s.inFlight.Add(-1)
	if st.n.Load() > 0 {
		s.lastByte = time.Now()
	}
	if i := slices.Index(s.streams, st); i >= 0 {
		s.streams = slices.Delete(s.streams, i, i+1)
	}
	// The scanner's buffers go with the stream; its count stays if the
	// origin took the files.
	scan := st.scan.Swap(nil)
	if accepted && !r.finishing.Load() {
		s.accepted++
		if scan != nil {
			s.files += len(scan.Progress().Files)
		}
	}
	if accepted && st.from < 0 && !r.finishing.Load() {
		n := st.n.Load()
		if st.part > 0 {
			if s.partAck == nil {
				s.partAck = make(map[int]int64)
			}
			s.acked += n - s.partAck[st.part]
			s.partAck[st.part] = n
		} else {
			s.acked += n
			s.chunkAck += n
		}
	}
	s.touchLocked()
	s.mu.Unlock()
	r.wake()
}

// Acknowledge sets the bytes the origin holds of the upload (tus: the
// Upload-Offset of its answer).
func (r *Record) Acknowledge(offset int64) {
	r.update(func(s *session) {
		s.acked = max(offset, 0)
		s.offsetAck = s.acked
	})
}

// SetTotal sets the declared length once it is known (tus: a deferred
// Upload-Length).
func (r *Record) SetTotal(total int64) {
	r.update(func(s *session) { s.total = total })
}

// SetError records the last error of the session, which goes on.
func (r *Record) SetError(msg string) {
	r.update(func(s *session) { s.lastErr = msg })
}

// ExpiresAt sets when the origin will forget an unfinished session.
func (r *Record) ExpiresAt(t time.Time) {
	r.update(func(s *session) { s.expires = t })
}

// update changes a session's state under its lock and wakes its watchers.
// A session that has ended stays as it ended.
func (r *Record) update(f func(*session)) {
	s := r.sess
	if s == nil {
		return
	}
	s.mu.Lock()
	if r.finishing.Load() {
		s.mu.Unlock()
		return
	}
	f(s)
	s.touchLocked()
	s.mu.Unlock()
	r.wake()
}

func (s *session) touchLocked() {
	s.updated = time.Now()
	s.version.Add(1)
}

// receivedLocked is what the session has received: see session.
func (s *session) receivedLocked() int64 {
	got := s.acked
	for i, st := range s.streams {
		n := st.n.Load()
		switch {
		case st.from >= 0:
			got = max(got, st.from+n)
		case st.part > 0:
			if newerStreamOf(s.streams[i+1:], st.part) {
				continue
			}
			got += max(0, n-s.partAck[st.part])
		default:
			got += n
		}
	}
	return got
}

// inherit takes over what an expired session of the same key knew: its
// length, parts, and the protocol's detail (tus metadata), for a session
// opened when its client came back.
func (r *Record) inherit(old *Record) {
	s, o := r.sess, old.sess
	o.mu.Lock()
	total, parts := o.total, o.parts
	o.mu.Unlock()
	if s.total < 0 {
		s.total = total
		r.total = total
	}
	if s.parts == 0 {
		s.parts = parts
	}
	if d := old.detail.Load(); d != nil && r.detail.Load() == nil {
		r.detail.Store(d)
	}
}

// newerStreamOf reports whether one of later streams sends part again.
func newerStreamOf(later []*Stream, part int) bool {
	return slices.ContainsFunc(later, func(st *Stream) bool { return st.part == part })
}

// SessionState is what a snapshot shows of a session.
type SessionState struct {
	// Acknowledged is what the origin has acknowledged.
	Acknowledged int64
	// Parts is the declared number of parts (0: not numbered), PartsDone
	// how many the origin accepted, NextPart the lowest it has not.
	Parts, PartsDone, NextPart int
	// InFlight is the streams of the session now, oldest first.
	InFlight []StreamState
	// Streams is how many requests have brought bytes to the session,
	// Accepted how many of them the origin accepted, and Files how many
	// files the multipart bodies of those held.
	Streams, Accepted, Files int
	// Error is the last error, which did not end the session.
	Error string
	// Updated is when the session last changed other than by bytes.
	Updated time.Time
	// LastByte is about when its last byte arrived: now while a stream
	// brings bytes, else when the last stream that brought some ended.
	LastByte time.Time
	// Expires is when the origin forgets the unfinished session; zero if unknown.
	Expires time.Time
}

// StreamState is what a snapshot shows of one stream.
type StreamState struct {
	Part     int
	From     int64
	Received int64
	Size     int64
	// Files is what the stream's multipart body showed so far, for a
	// protocol that follows files; nil otherwise.
	Files *multipart.Progress
}

// snapshotLocked fills in what snap shows of the session.
func (s *session) snapshotLocked(snap *Snapshot) {
	snap.Total = s.total
	snap.Received = s.receivedLocked()
	snap.Version = s.version.Load()
	st := &SessionState{
		Acknowledged: s.acked,
		Parts:        s.parts,
		PartsDone:    len(s.partAck),
		NextPart:     s.nextPartLocked(),
		Streams:      s.streamed,
		Accepted:     s.accepted,
		Files:        s.files,
		Error:        s.lastErr,
		Updated:      s.updated,
		Expires:      s.expires,
	}
	st.LastByte = s.lastByte
	if len(s.streams) > 0 {
		st.InFlight = make([]StreamState, len(s.streams))
		for i, x := range s.streams {
			st.InFlight[i] = StreamState{Part: x.part, From: x.from, Received: x.n.Load(), Size: x.size}
			if m := x.scan.Load(); m != nil {
				p := m.Progress()
				st.InFlight[i].Files = &p
			}
			if st.InFlight[i].Received > 0 {
				st.LastByte = time.Now()
			}
		}
	}
	snap.Session = st
}

// nextPartLocked is the lowest numbered part the origin has not accepted,
// 0 when parts are not numbered or all are in.
func (s *session) nextPartLocked() int {
	if s.parts <= 0 {
		return 0
	}
	for p := 1; p <= s.parts; p++ {
		if _, ok := s.partAck[p]; !ok {
			return p
		}
	}
	return 0
}

// expiredAt reports whether the session has had no stream in flight and
// no change for its idle time at now, or its origin's expiry has passed.
func (s *session) expiredAt(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.expires.IsZero() && now.After(s.expires) {
		return true
	}
	return len(s.streams) == 0 && now.Sub(s.updated) >= s.idle
}

// expiresSaid reports whether the origin said when the session expires.
func (s *session) expiresSaid() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.expires.IsZero()
}

// SessionExpired is the outcome of a session whose time ran out: the
// expiry its origin said passed (byOrigin), or it had no request for its
// idle time.
func SessionExpired(byOrigin bool) Outcome {
	msg := "no request for the session's idle time"
	if byOrigin {
		msg = "the upload expired at the origin before it was complete"
	}
	return Outcome{State: Expired, Error: msg, Reason: ReasonExpired}
}

// SessionEnded is the outcome of a session its origin or client ended:
// Completed, Aborted, or Failed with why.
func SessionEnded(state State, why string, httpStatus int) Outcome {
	o := Outcome{State: state, Error: why, HTTPStatus: httpStatus}
	switch state {
	case Completed:
		o.Reason = ReasonCompleted
	case Aborted:
		o.Reason = ReasonAborted
	default:
		o.Reason = ReasonOriginError
	}
	return o
}
