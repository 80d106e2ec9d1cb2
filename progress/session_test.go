package progress

import (
	"context"
	"io"
	"testing"
	"time"
)

// readStream reads n bytes of a session request's body, as the transport does.
func readStream(t testing.TB, st *Stream, n int) {
	t.Helper()
	var b Body
	b.InitStream(io.NopCloser(io.LimitReader(zeroReader{}, int64(n))), st)
	if got, err := io.Copy(io.Discard, &b); err != nil || got != int64(n) {
		t.Fatalf("read %d bytes, %v; want %d", got, err, n)
	}
}

func openSession(t testing.TB, tr *MemoryTracker, key string, spec SessionSpec) *Record {
	t.Helper()
	rec, made, err := tr.OpenSession(Anyone, key, spec)
	if err != nil || !made {
		t.Fatalf("OpenSession = %v, %v", made, err)
	}
	return rec
}

// A tus upload: each PATCH streams from an offset, and only what the
// origin answered is acknowledged; a refused PATCH falls back to it.
func TestSessionOffsets(t *testing.T) {
	tr := newTestTracker(t, Options{})
	rec := openSession(t, tr, "/files/a", SessionSpec{Total: 100})
	if s := tr.Lookup(Anyone, "/files/a"); s.State != Uploading || s.Received != 0 || s.Total != 100 || s.Session.Streams != 0 {
		t.Fatalf("new session: %+v", s)
	}

	st := rec.StartStream(0, 0, 40)
	readStream(t, st, 30)
	s := tr.Lookup(Anyone, "/files/a")
	if s.Received != 30 || s.Session.Acknowledged != 0 || len(s.Session.InFlight) != 1 || s.Session.InFlight[0].Received != 30 {
		t.Fatalf("streaming: %+v %+v", s, s.Session)
	}
	if got := tr.Stats().InFlight; got != 1 {
		t.Errorf("in flight while a stream runs = %d, want 1", got)
	}
	rec.EndStream(st, true)
	rec.Acknowledge(30)
	if s := tr.Lookup(Anyone, "/files/a"); s.Received != 30 || s.Session.Acknowledged != 30 || len(s.Session.InFlight) != 0 {
		t.Fatalf("acknowledged: %+v %+v", s, s.Session)
	}
	if got := tr.Stats().InFlight; got != 0 {
		t.Errorf("in flight between streams = %d, want 0", got)
	}

	// A PATCH the origin refuses (409, 460): its bytes stop counting.
	st = rec.StartStream(0, 30, 70)
	readStream(t, st, 50)
	if s := tr.Lookup(Anyone, "/files/a"); s.Received != 80 {
		t.Fatalf("second stream: received %d, want 80", s.Received)
	}
	rec.EndStream(st, false)
	rec.SetError("checksum mismatch")
	if s := tr.Lookup(Anyone, "/files/a"); s.Received != 30 || s.Session.Error != "checksum mismatch" || s.State != Uploading {
		t.Fatalf("refused: %+v %+v", s, s.Session)
	}

	// Resent from an offset below the acknowledged one: only what passes
	// it shows.
	st = rec.StartStream(0, 20, 80)
	readStream(t, st, 5)
	if s := tr.Lookup(Anyone, "/files/a"); s.Received != 30 {
		t.Fatalf("overlapping stream: received %d, want 30", s.Received)
	}
	readStream(t, st, 75)
	rec.EndStream(st, true)
	rec.Acknowledge(100)
	tr.EndSession(rec, SessionEnded(Completed, "", 204))
	if s := tr.Lookup(Anyone, "/files/a"); s.State != Completed || s.Received != 100 {
		t.Fatalf("completed: %+v", s)
	}
}

// Numbered parts: a part sent again counts once, as the larger of what
// the origin accepted of it and what its newest stream brought; parts in
// flight at once add up.
func TestSessionParts(t *testing.T) {
	tr := newTestTracker(t, Options{})
	rec := openSession(t, tr, "s1", SessionSpec{Total: 40, Parts: 4})
	p1 := rec.StartStream(1, -1, 10)
	p2 := rec.StartStream(2, -1, 10)
	readStream(t, p1, 10)
	readStream(t, p2, 4)
	if s := tr.Lookup(Anyone, "s1"); s.Received != 14 || len(s.Session.InFlight) != 2 || s.Session.NextPart != 1 {
		t.Fatalf("two parts in flight: %+v %+v", s, s.Session)
	}
	rec.EndStream(p1, true)
	if s := tr.Lookup(Anyone, "s1"); s.Received != 14 || s.Session.PartsDone != 1 || s.Session.NextPart != 2 {
		t.Fatalf("part 1 accepted: %+v %+v", s, s.Session)
	}
	// Part 1 again: nothing more shows until it passes what was accepted.
	again := rec.StartStream(1, -1, 10)
	readStream(t, again, 6)
	if s := tr.Lookup(Anyone, "s1"); s.Received != 14 {
		t.Fatalf("part 1 resent, 6 bytes in: received %d, want 14", s.Received)
	}
	readStream(t, again, 4)
	rec.EndStream(again, true)
	// Part 2 restarts while its first stream still runs: the newest counts.
	p2b := rec.StartStream(2, -1, 10)
	readStream(t, p2b, 2)
	if s := tr.Lookup(Anyone, "s1"); s.Received != 12 {
		t.Fatalf("part 2's newest stream: received %d, want 12", s.Received)
	}
	rec.EndStream(p2, false)
	readStream(t, p2b, 8)
	rec.EndStream(p2b, true)
	if s := tr.Lookup(Anyone, "s1"); s.Received != 20 || s.Session.Acknowledged != 20 || s.Session.PartsDone != 2 || s.Session.NextPart != 3 {
		t.Fatalf("parts 1 and 2 in: %+v %+v", s, s.Session)
	}
}

// Unnumbered chunks add up; a rejected chunk stops counting.
func TestSessionChunks(t *testing.T) {
	tr := newTestTracker(t, Options{})
	rec := openSession(t, tr, "tok", SessionSpec{Total: -1})
	a, b := rec.StartStream(0, -1, -1), rec.StartStream(0, -1, -1)
	readStream(t, a, 7)
	readStream(t, b, 5)
	if s := tr.Lookup(Anyone, "tok"); s.Received != 12 {
		t.Fatalf("two chunks: received %d", s.Received)
	}
	rec.EndStream(a, true)
	rec.EndStream(b, false)
	rec.EndStream(b, true) // ignored: it ended already
	if s := tr.Lookup(Anyone, "tok"); s.Received != 7 || s.Session.Acknowledged != 7 {
		t.Fatalf("one accepted, one rejected: %+v", s.Session)
	}
}

// Opening a session that exists returns it; one opened over the record of
// a single request replaces it.
func TestOpenSessionFindsOrReplaces(t *testing.T) {
	tr := newTestTracker(t, Options{})
	single, err := tr.Begin(Anyone, "k", 10)
	if err != nil {
		t.Fatal(err)
	}
	rec := openSession(t, tr, "k", SessionSpec{Total: 5})
	if rec == single || tr.Lookup(Anyone, "k").ID != rec.ID() {
		t.Fatal("the session did not replace the single record")
	}
	again, made, err := tr.OpenSession(Anyone, "k", SessionSpec{Total: 9})
	if err != nil || made || again != rec || again.Total() != 5 {
		t.Fatalf("OpenSession again = %p (made %v, total %d), want %p", again, made, again.Total(), rec)
	}
	if tr.FindSession(Anyone, "k") != rec || tr.FindSession(Anyone, "other") != nil {
		t.Fatal("FindSession")
	}
	tr.EndSession(rec, SessionEnded(Aborted, "", 204))
	if again, made, _ := tr.OpenSession(Anyone, "k", SessionSpec{}); made || again != rec {
		t.Fatal("an ended session is still the key's until its retention is over")
	}
	if s := tr.Lookup(Anyone, "k"); s.State != Aborted || !s.State.Terminal() {
		t.Fatalf("aborted: %+v", s)
	}
}

// A session with no request for its idle time, or past the expiry its
// origin said, is expired as soon as anyone looks.
func TestSessionExpires(t *testing.T) {
	tr := newTestTracker(t, Options{})
	idle := openSession(t, tr, "idle", SessionSpec{Total: 10, Idle: time.Millisecond})
	waitUntil(t, "the idle session to expire", func() bool { return tr.Lookup(Anyone, "idle").State == Expired })
	if o, _, _ := idle.Finished(); o.Reason != ReasonExpired {
		t.Errorf("outcome %+v", o)
	}

	said := openSession(t, tr, "said", SessionSpec{Total: 10})
	st := said.StartStream(0, 0, 10)
	said.ExpiresAt(time.Now().Add(-time.Second))
	if s := tr.Lookup(Anyone, "said"); s.State != Expired || s.Error != SessionExpired(true).Error {
		t.Fatalf("past the origin's expiry: %+v", s)
	}
	said.EndStream(st, false)

	busy := openSession(t, tr, "busy", SessionSpec{Total: 10, Idle: time.Millisecond})
	st = busy.StartStream(0, 0, 10)
	time.Sleep(5 * time.Millisecond) // past the idle time, with a stream in flight
	if s := tr.Lookup(Anyone, "busy"); s.State != Uploading {
		t.Fatalf("a session with a request in flight expired: %+v", s)
	}
	busy.EndStream(st, false)
}

// A watcher of a session hears of a stream starting and ending, and of its
// bytes, as of any record's.
func TestSessionWatcher(t *testing.T) {
	tr := newTestTracker(t, Options{})
	rec := openSession(t, tr, "w", SessionSpec{Total: 100})
	sub, err := tr.Subscribe(Anyone, "w")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitDeadline)
	defer cancel()
	prev := sub.Current()

	got := make(chan Snapshot, 1)
	go func() {
		s, _ := sub.Next(ctx, prev, 10)
		got <- s
	}()
	waitParkedInNext(t, 1)
	st := rec.StartStream(0, 0, 100)
	s := <-got
	if len(s.Session.InFlight) != 1 || s.Version == prev.Version {
		t.Fatalf("stream start: %+v", s.Session)
	}

	prev = s
	go func() {
		s, _ := sub.Next(ctx, prev, 10)
		got <- s
	}()
	waitParkedInNext(t, 1)
	readStream(t, st, 9)
	select {
	case s := <-got:
		t.Fatalf("woken before the step: %+v", s)
	default:
	}
	readStream(t, st, 1)
	if s := <-got; s.Received != 10 {
		t.Fatalf("after the step: received %d", s.Received)
	}
	rec.EndStream(st, false)
}

// Reading a session's body costs no allocation.
func TestSessionBodyAllocs(t *testing.T) {
	tr := newTestTracker(t, Options{})
	rec := openSession(t, tr, "a", SessionSpec{Total: -1})
	st := rec.StartStream(0, 0, -1)
	var b Body
	b.InitStream(io.NopCloser(zeroReader{}), st)
	buf := make([]byte, 32<<10)
	if n := testing.AllocsPerRun(100, func() { b.Read(buf) }); n != 0 {
		t.Errorf("Body.Read of a stream allocates %v times", n)
	}
}

// Parallel requests of one session count correctly: every byte of every
// accepted chunk, read on many goroutines at once while watchers look.
func TestSessionParallelStreams(t *testing.T) {
	tr := newTestTracker(t, Options{})
	rec := openSession(t, tr, "p", SessionSpec{Total: -1})
	const streams, each = 16, 1 << 20
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 1000 {
			if s := tr.Lookup(Anyone, "p"); s.Received < 0 || s.Received > streams*each {
				t.Errorf("received %d out of bounds", s.Received)
				return
			}
		}
	}()
	errs := make(chan error, streams)
	for i := range streams {
		go func() {
			st := rec.StartStream(0, -1, each)
			var b Body
			b.InitStream(io.NopCloser(io.LimitReader(zeroReader{}, each)), st)
			_, err := io.Copy(io.Discard, &b)
			rec.EndStream(st, i%2 == 0)
			errs <- err
		}()
	}
	for range streams {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	<-done
	s := tr.Lookup(Anyone, "p")
	if want := int64(streams / 2 * each); s.Received != want || s.Session.Acknowledged != want || len(s.Session.InFlight) != 0 || s.Session.Streams != streams {
		t.Fatalf("after %d streams, half accepted: %+v", streams, s.Session)
	}
	if got := tr.Stats().InFlight; got != 0 {
		t.Fatalf("in flight after every stream ended: %d", got)
	}
}

// A client that comes back after its session expired (it paused longer
// than the idle time) gets a new session, which keeps the length and
// detail the old one knew; a session that ended otherwise stays as it
// ended, whatever its late requests say.
func TestSessionAfterItsEnd(t *testing.T) {
	tr := newTestTracker(t, Options{})
	old := openSession(t, tr, "e", SessionSpec{Total: 10, Idle: time.Millisecond})
	old.SetDetail("metadata", 8)
	waitUntil(t, "the session to expire", func() bool { return tr.Lookup(Anyone, "e").State == Expired })
	if tr.FindSession(Anyone, "e") != nil {
		t.Fatal("FindSession returned an expired session")
	}
	rec, made, err := tr.OpenSession(Anyone, "e", SessionSpec{Total: -1})
	if err != nil || !made || rec == old {
		t.Fatalf("OpenSession after expiry = %v, %v", made, err)
	}
	if s := tr.Lookup(Anyone, "e"); s.State != Uploading || s.Total != 10 || s.Detail != "metadata" || s.ID == old.ID() {
		t.Fatalf("the new session: %+v", s)
	}

	rec.Acknowledge(10)
	tr.EndSession(rec, SessionEnded(Completed, "", 204))
	rec.Acknowledge(3)
	rec.SetError("late")
	st := rec.StartStream(0, 0, 10)
	readStream(t, st, 4)
	rec.EndStream(st, true)
	if s := tr.Lookup(Anyone, "e"); s.State != Completed || s.Received != 10 || s.Session.Acknowledged != 10 || s.Session.Error != "" {
		t.Fatalf("a completed session moved: %+v %+v", s, s.Session)
	}
	if got := tr.Stats().InFlight; got != 0 {
		t.Fatalf("in flight after a late stream ended: %d", got)
	}
}
