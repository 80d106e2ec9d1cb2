package progress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"
)

// readN reads n bytes through body.
func readBytes(t *testing.T, body *Body, n int) {
	t.Helper()
	if _, err := io.CopyN(io.Discard, body, int64(n)); err != nil {
		t.Fatalf("reading %d bytes: %v", n, err)
	}
}

func zeroBody(rec *Record) *Body { return NewBody(io.NopCloser(zeroReader{}), rec) }

func TestMemoryLifecycle(t *testing.T) {
	tr := newTestTracker(t, Options{})
	owner := tr.Owner("secret-key")
	before := time.Now()
	rec, err := tr.Begin(owner, "/files/a.bin", 100)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Key() != "/files/a.bin" || rec.Total() != 100 || rec.ID() == 0 {
		t.Fatalf("record: key %q total %d id %d", rec.Key(), rec.Total(), rec.ID())
	}

	s := tr.Lookup(owner, "/files/a.bin")
	want := Snapshot{Found: true, ID: rec.ID(), Key: "/files/a.bin", Total: 100, State: Uploading, Started: s.Started}
	if s != want {
		t.Fatalf("fresh Lookup = %+v, want %+v", s, want)
	}
	if s.Started.Before(before) || s.Started.After(time.Now()) {
		t.Errorf("Started = %v, not within Begin", s.Started)
	}

	readBytes(t, zeroBody(rec), 40)
	if s := tr.Lookup(owner, "/files/a.bin"); s.Received != 40 || s.State != Uploading || !s.Finished.IsZero() {
		t.Fatalf("after 40 bytes Lookup = %+v", s)
	}

	if !tr.Finish(rec, Judge(Event{Status: 201, Received: 40})) {
		t.Fatal("Finish of a live record returned false")
	}
	s = tr.Lookup(owner, "/files/a.bin")
	if !s.Found || s.ID != rec.ID() || s.State != Completed || s.HTTPStatus != 201 || s.Error != "" || s.Received != 40 {
		t.Fatalf("finished Lookup = %+v", s)
	}
	if s.Finished.Before(s.Started) {
		t.Errorf("Finished %v before Started %v", s.Finished, s.Started)
	}
	if _, at, done := rec.Finished(); !done || !at.Equal(s.Finished) {
		t.Errorf("Record.Finished = %v, %v; snapshot says %v", at, done, s.Finished)
	}
}

func TestMemorySnapshotUnknownTotalAndFailure(t *testing.T) {
	tr := newTestTracker(t, Options{})
	rec, err := tr.Begin(Anyone, "/chunked", -1)
	if err != nil {
		t.Fatal(err)
	}
	readBytes(t, zeroBody(rec), 12345)
	s := tr.Lookup(Anyone, "/chunked")
	if s.Total != -1 || s.Received != 12345 || s.State != Uploading {
		t.Fatalf("Lookup = %+v, want Total -1, Received 12345, uploading", s)
	}
	tr.Finish(rec, Judge(Event{Status: 409, Received: 12345}))
	s = tr.Lookup(Anyone, "/chunked")
	if s.State != Failed || s.Error != "origin responded 409 Conflict" || s.HTTPStatus != 409 || s.Total != -1 {
		t.Fatalf("Lookup = %+v", s)
	}
}

func TestMemoryReceivedFrozenAtFinish(t *testing.T) {
	// The transport may drain the body after an early answer; the finished
	// record keeps the count it had when it was judged.
	tr := newTestTracker(t, Options{})
	rec, _ := tr.Begin(Anyone, "/early", 1000)
	body := zeroBody(rec)
	readBytes(t, body, 100)
	tr.Finish(rec, Judge(Event{Status: 413, Received: 100}))
	readBytes(t, body, 900)
	if got := tr.Lookup(Anyone, "/early").Received; got != 100 {
		t.Fatalf("Lookup.Received = %d after finish, want 100", got)
	}
	if rec.Received() != 1000 {
		t.Fatalf("Record.Received = %d, want 1000", rec.Received())
	}
}

func TestMemoryUnknownKey(t *testing.T) {
	tr := newTestTracker(t, Options{})
	s := tr.Lookup(Anyone, "/never")
	if s != (Snapshot{}) || s.Found || s.State != NotExist {
		t.Fatalf("Lookup of an unused key = %+v, want the zero Snapshot", s)
	}
}

func TestMemoryOwnersAreNamespaced(t *testing.T) {
	tr := newTestTracker(t, Options{})
	a, b := tr.Owner("key-a"), tr.Owner("key-b")
	if a == b {
		t.Fatal("two credentials map to the same owner")
	}
	if tr.Owner("key-a") != a {
		t.Fatal("the same credential maps to two owners")
	}
	if a == Anyone || b == Anyone {
		t.Fatal("a credential maps to Anyone")
	}

	recA, err := tr.Begin(a, "/shared/name", 10)
	if err != nil {
		t.Fatal(err)
	}
	readBytes(t, zeroBody(recA), 7)

	never := tr.Lookup(b, "/never/used")
	if got := tr.Lookup(b, "/shared/name"); got != never || got.Found {
		t.Fatalf("owner B sees owner A's key: %+v (an unused key gives %+v)", got, never)
	}
	if got := tr.Lookup(Anyone, "/shared/name"); got.Found {
		t.Fatalf("Anyone sees owner A's key: %+v", got)
	}
	subB, err := tr.Subscribe(b, "/shared/name")
	if err != nil {
		t.Fatal(err)
	}
	defer subB.Close()
	if got := subB.Current(); got != never {
		t.Fatalf("owner B's subscription sees owner A's key: %+v", got)
	}

	// B uploads the same key: two independent records.
	recB, err := tr.Begin(b, "/shared/name", 20)
	if err != nil {
		t.Fatal(err)
	}
	tr.Finish(recB, Judge(Event{Status: 500}))
	if s := tr.Lookup(a, "/shared/name"); s.ID != recA.ID() || s.State != Uploading || s.Received != 7 || s.Total != 10 {
		t.Fatalf("owner A's record changed by owner B's upload: %+v", s)
	}
	if s := tr.Lookup(b, "/shared/name"); s.ID != recB.ID() || s.State != Failed || s.Total != 20 {
		t.Fatalf("owner B's record: %+v", s)
	}
}

func TestMemoryOwnerSecretIsPerTracker(t *testing.T) {
	// Owners are an HMAC under a secret of the tracker: another tracker
	// (or a dump of this one) cannot reproduce them from the credential alone.
	t1 := newTestTracker(t, Options{})
	t2 := newTestTracker(t, Options{})
	if t1.Owner("key") == t2.Owner("key") {
		t.Fatal("two trackers derive the same owner from a credential")
	}
}

func TestMemoryReplacement(t *testing.T) {
	tr := newTestTracker(t, Options{})
	old, err := tr.Begin(Anyone, "/re", 100)
	if err != nil {
		t.Fatal(err)
	}
	oldBody := zeroBody(old)
	readBytes(t, oldBody, 30)

	cur, err := tr.Begin(Anyone, "/re", 200)
	if err != nil {
		t.Fatal(err)
	}
	if cur.ID() == old.ID() {
		t.Fatal("replacement has the old record's ID")
	}
	if s := tr.Lookup(Anyone, "/re"); s.ID != cur.ID() || s.Total != 200 || s.Received != 0 {
		t.Fatalf("Lookup after replacement = %+v, want the new record", s)
	}
	if st := tr.Stats(); st.InFlight != 2 || st.Keys != 1 {
		t.Fatalf("Stats = %+v, want 2 in flight on 1 key", st)
	}

	// The old upload keeps counting, invisibly, and finishes on its own.
	readBytes(t, oldBody, 20)
	if old.Received() != 50 {
		t.Fatalf("old Received = %d, want 50", old.Received())
	}
	if s := tr.Lookup(Anyone, "/re"); s.ID != cur.ID() || s.Received != 0 {
		t.Fatalf("old record's bytes leaked into Lookup: %+v", s)
	}
	if !tr.Finish(old, Judge(Event{ClientGone: true, Received: 50})) {
		t.Fatal("finishing the replaced record returned false")
	}
	if o, _, done := old.Finished(); !done || o.State != Failed {
		t.Fatalf("old record not failed: %+v %v", o, done)
	}
	if s := tr.Lookup(Anyone, "/re"); s.ID != cur.ID() || s.State != Uploading {
		t.Fatalf("finishing the old record changed what the key shows: %+v", s)
	}
	if st := tr.Stats(); st.InFlight != 1 {
		t.Fatalf("InFlight = %d, want 1", st.InFlight)
	}
	if !tr.Finish(cur, Judge(Event{Status: 200})) {
		t.Fatal("finishing the new record returned false")
	}
	if s := tr.Lookup(Anyone, "/re"); s.ID != cur.ID() || s.State != Completed {
		t.Fatalf("Lookup = %+v", s)
	}
	if st := tr.Stats(); st.InFlight != 0 {
		t.Fatalf("InFlight = %d, want 0", st.InFlight)
	}
}

func TestMemoryFinishFirstWins(t *testing.T) {
	tr := newTestTracker(t, Options{})
	rec, _ := tr.Begin(Anyone, "/once", 5)
	if !tr.Finish(rec, Judge(Event{Status: 200})) {
		t.Fatal("first Finish returned false")
	}
	if tr.Finish(rec, Judge(Event{Status: 500})) {
		t.Fatal("second Finish returned true")
	}
	if rec.finish(Outcome{State: Failed, Error: "late"}, time.Now(), nil) {
		t.Fatal("Record.finish after the end returned true")
	}
	s := tr.Lookup(Anyone, "/once")
	if s.State != Completed || s.HTTPStatus != 200 || s.Error != "" {
		t.Fatalf("Lookup = %+v, want the first outcome", s)
	}
	if st := tr.Stats(); st.InFlight != 0 {
		t.Fatalf("InFlight = %d after a double Finish, want 0", st.InFlight)
	}
}

func TestMemoryFinishConcurrentOnlyOneWins(t *testing.T) {
	tr := newTestTracker(t, Options{})
	rec, _ := tr.Begin(Anyone, "/race", 5)
	wins := make(chan bool)
	for i := range 32 {
		go func() { wins <- tr.Finish(rec, Outcome{State: Failed, Error: fmt.Sprint(i)}) }()
	}
	n := 0
	for range 32 {
		if <-wins {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d concurrent Finish calls won, want 1", n)
	}
	if st := tr.Stats(); st.InFlight != 0 {
		t.Fatalf("InFlight = %d, want 0", st.InFlight)
	}
}

func TestMemoryRetention(t *testing.T) {
	const retain = 50 * time.Millisecond
	tr := newTestTracker(t, Options{Retain: retain})
	live, _ := tr.Begin(Anyone, "/live", -1)
	rec, _ := tr.Begin(Anyone, "/done", 10)
	tr.Finish(rec, Judge(Event{Status: 200}))
	_, at, _ := rec.Finished()

	s := tr.Lookup(Anyone, "/done")
	if !s.Found && time.Since(at) <= retain {
		t.Fatalf("finished record invisible %v after finishing, retention is %v", time.Since(at), retain)
	}

	waitUntil(t, "the finished record to expire", func() bool {
		s := tr.Lookup(Anyone, "/done")
		if s.Found {
			return false
		}
		if seen := time.Since(at); seen <= retain {
			t.Fatalf("finished record gone after %v, before the %v retention", seen, retain)
		}
		return true
	})
	if got := tr.Lookup(Anyone, "/done"); got != (Snapshot{}) {
		t.Fatalf("expired key Lookup = %+v, want the zero Snapshot", got)
	}
	// Retention applies to finished uploads only.
	if s := tr.Lookup(Anyone, "/live"); !s.Found || s.ID != live.ID() || s.State != Uploading {
		t.Fatalf("an unfinished upload expired: %+v", s)
	}
}

func TestMemoryMaxKeys(t *testing.T) {
	tr := newTestTracker(t, Options{Retain: 50 * time.Millisecond, MaxKeys: 2})
	r1, err1 := tr.Begin(Anyone, "/1", -1)
	r2, err2 := tr.Begin(Anyone, "/2", -1)
	if err1 != nil || err2 != nil {
		t.Fatalf("Begin under the limit: %v, %v", err1, err2)
	}
	if _, err := tr.Begin(Anyone, "/3", -1); !errors.Is(err, ErrFull) {
		t.Fatalf("Begin past MaxKeys = %v, want ErrFull", err)
	}
	if _, err := tr.Subscribe(Anyone, "/3"); !errors.Is(err, ErrFull) {
		t.Fatalf("Subscribe to a new key past MaxKeys = %v, want ErrFull", err)
	}
	if s := tr.Lookup(Anyone, "/3"); s.Found {
		t.Fatalf("refused upload is visible: %+v", s)
	}
	// Re-uploading a key that is already held needs no room.
	r1b, err := tr.Begin(Anyone, "/1", -1)
	if err != nil {
		t.Fatalf("replacing a held key at the limit: %v", err)
	}
	if st := tr.Stats(); st.Keys != 2 {
		t.Fatalf("Keys = %d, want 2", st.Keys)
	}

	// A finished record makes room at once, before its retention ends:
	// the uploads people watch come before the ones that are over. An
	// unfinished one never does.
	tr.Finish(r2, Judge(Event{Status: 200}))
	r3, err := tr.Begin(Anyone, "/3", -1)
	if err != nil {
		t.Fatalf("Begin with a finished record held = %v, want room made", err)
	}
	if s := tr.Lookup(Anyone, "/2"); s.Found {
		t.Fatalf("the finished record is still held: %+v", s)
	}
	if st := tr.Stats(); st.Evicted != 1 {
		t.Fatalf("Evicted = %d, want 1", st.Evicted)
	}
	if s := tr.Lookup(Anyone, "/3"); s.ID != r3.ID() {
		t.Fatalf("Lookup /3 = %+v", s)
	}
	if st := tr.Stats(); st.Keys != 2 {
		t.Fatalf("Keys = %d, want 2", st.Keys)
	}
	if _, err := tr.Begin(Anyone, "/4", -1); !errors.Is(err, ErrFull) {
		t.Fatalf("Begin past MaxKeys again = %v, want ErrFull", err)
	}
	tr.Finish(r1, Outcome{State: Failed})
	tr.Finish(r1b, Outcome{State: Failed})
	tr.Finish(r3, Outcome{State: Failed})
}

func TestMemoryStats(t *testing.T) {
	tr := newTestTracker(t, Options{})
	if st := tr.Stats(); st != (Stats{}) {
		t.Fatalf("fresh Stats = %+v", st)
	}
	ra, _ := tr.Begin(Anyone, "/a", -1)
	rb, _ := tr.Begin(Anyone, "/b", -1)
	if st := tr.Stats(); st != (Stats{InFlight: 2, Keys: 2}) {
		t.Fatalf("Stats = %+v, want 2 in flight, 2 keys", st)
	}
	subA, err := tr.Subscribe(Anyone, "/a")
	if err != nil {
		t.Fatal(err)
	}
	subC, err := tr.Subscribe(Anyone, "/c") // a key with a watcher and no upload yet
	if err != nil {
		t.Fatal(err)
	}
	subC2, err := tr.Subscribe(Anyone, "/c")
	if err != nil {
		t.Fatal(err)
	}
	if st := tr.Stats(); st != (Stats{InFlight: 2, Keys: 3, Watchers: 3}) {
		t.Fatalf("Stats = %+v, want 2 in flight, 3 keys, 3 watchers", st)
	}
	subA.Close()
	subA.Close() // a second Close changes nothing
	if st := tr.Stats(); st != (Stats{InFlight: 2, Keys: 3, Watchers: 2}) {
		t.Fatalf("Stats = %+v, want 2 watchers", st)
	}
	subC.Close()
	if st := tr.Stats(); st.Keys != 3 || st.Watchers != 1 {
		t.Fatalf("Stats = %+v, /c still has a watcher", st)
	}
	subC2.Close()
	if st := tr.Stats(); st != (Stats{InFlight: 2, Keys: 2, Watchers: 0}) {
		t.Fatalf("Stats = %+v, want the watcher-only key dropped", st)
	}
	tr.Finish(ra, Judge(Event{Status: 200}))
	if st := tr.Stats(); st.InFlight != 1 || st.Keys != 2 {
		t.Fatalf("Stats = %+v, want 1 in flight, finished key still held", st)
	}
	tr.Finish(rb, Judge(Event{Status: 200}))
	if st := tr.Stats(); st.InFlight != 0 {
		t.Fatalf("InFlight = %d, want 0", st.InFlight)
	}
}

func TestMemoryClose(t *testing.T) {
	tr := NewMemoryTracker(Options{})
	rec, _ := tr.Begin(Anyone, "/up", -1)
	subUp, err := tr.Subscribe(Anyone, "/up")
	if err != nil {
		t.Fatal(err)
	}
	subIdle, err := tr.Subscribe(Anyone, "/idle") // no record: waits for a Begin
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), waitDeadline)
	defer cancel()
	upDone := make(chan error, 1)
	idleDone := make(chan error, 1)
	go func() {
		_, err := subUp.Next(ctx, subUp.Current(), 1<<40)
		upDone <- err
	}()
	go func() {
		_, err := subIdle.Next(ctx, subIdle.Current(), 1)
		idleDone <- err
	}()
	waitWatched(t, rec, 1<<40)
	waitParkedInNext(t, 2)

	tr.Close()
	if err := <-upDone; !errors.Is(err, ErrClosed) {
		t.Errorf("blocked Next on an upload = %v, want ErrClosed", err)
	}
	if err := <-idleDone; !errors.Is(err, ErrClosed) {
		t.Errorf("blocked Next on an idle key = %v, want ErrClosed", err)
	}
	if _, err := subUp.Next(ctx, Snapshot{}, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Next after Close = %v, want ErrClosed", err)
	}
	if _, err := tr.Begin(Anyone, "/new", -1); !errors.Is(err, ErrClosed) {
		t.Errorf("Begin after Close = %v, want ErrClosed", err)
	}
	if _, err := tr.Subscribe(Anyone, "/new"); !errors.Is(err, ErrClosed) {
		t.Errorf("Subscribe after Close = %v, want ErrClosed", err)
	}
	tr.Close() // twice is fine
	subUp.Close()
	subIdle.Close()
	if st := tr.Stats(); st.Watchers != 0 {
		t.Errorf("Watchers = %d after every subscription closed", st.Watchers)
	}
}

// closeRaceSink keeps the allocations of TestMemoryCloseWakesEveryBlockedNext
// alive long enough to cause garbage collections.
var closeRaceSink []byte

// TestMemoryCloseWakesEveryBlockedNext checks the promise of Tracker.Close
// ("ends every subscription with ErrClosed") for Next calls that are just
// starting while Close runs. It matters: the WebSocket watcher calls Next with
// a context that a config reload does not end, relying on ErrClosed.
//
// It guards against a lost wake-up: Next must take the slot's channel
// before it checks closed, or a Next that sees "not closed" and takes the
// channel only after Close woke every slot waits forever. Garbage-collection
// pressure (an allocation in broadcast.wait can park the goroutine in
// between) made the race show within a second before it was fixed.
func TestMemoryCloseWakesEveryBlockedNext(t *testing.T) {
	if testing.Short() {
		t.Skip("stress test")
	}
	const (
		budget   = 2 * time.Second // how long to try to provoke the race
		watchers = 100
	)
	stop := make(chan struct{})
	pressureDone := make(chan struct{})
	go func() {
		defer close(pressureDone)
		for {
			select {
			case <-stop:
				return
			default:
				closeRaceSink = make([]byte, 64<<10)
				runtime.Gosched()
			}
		}
	}()
	defer func() { close(stop); <-pressureDone }()

	start := time.Now()
	for iter := 1; time.Since(start) < budget; iter++ {
		tr := NewMemoryTracker(Options{})
		subs := make([]Subscription, watchers)
		for i := range subs {
			sub, err := tr.Subscribe(Anyone, "/idle")
			if err != nil {
				t.Fatal(err)
			}
			subs[i] = sub
		}
		ctx, cancel := context.WithCancel(t.Context())
		results := make(chan error, watchers)
		for _, sub := range subs {
			go func() {
				_, err := sub.Next(ctx, Snapshot{}, 1)
				results <- err
			}()
		}
		tr.Close()
		// Every Next must now return ErrClosed, promptly. The generous
		// bound only tells a lost wake-up from a slow scheduler.
		timeout := time.After(waitDeadline / 5)
		var hung int
	collect:
		for got := 0; got < watchers; got++ {
			select {
			case err := <-results:
				if !errors.Is(err, ErrClosed) {
					t.Errorf("Next = %v, want ErrClosed", err)
				}
			case <-timeout:
				hung = watchers - got
				break collect
			}
		}
		cancel()
		for _, sub := range subs {
			sub.Close()
		}
		if hung > 0 {
			t.Fatalf("BUG: iteration %d: %d of %d Next calls started around Close were never woken with ErrClosed (lost wake-up in memorySubscription.Next)", iter, hung, watchers)
		}
	}
}
