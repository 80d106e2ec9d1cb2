package redisstore

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/redistest"
	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

const (
	testFlush = 20 * time.Millisecond
	testLease = 300 * time.Millisecond
	// within bounds every wait for a node to see another's write; on a
	// loaded machine it is far above what it takes.
	within = 10 * time.Second
)

var secret = []byte("a shared secret of the test nodes")

// node is one proxy's tracker on the shared store.
func node(t *testing.T, addrs ...string) *progress.SharedTracker {
	t.Helper()
	var c redis.UniversalClient
	if len(addrs) > 1 {
		c = redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, MaxRetries: 1, DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second})
	} else {
		c = redis.NewClient(&redis.Options{Addr: addrs[0], MaxRetries: 1, DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second})
	}
	tr := progress.NewSharedTracker(progress.Options{OwnerSecret: secret, Retain: time.Minute},
		New(c, "upload_progress", "test"), progress.SharedOptions{FlushInterval: testFlush, Lease: testLease, ReadTimeout: 500 * time.Millisecond})
	t.Cleanup(tr.Close)
	return tr
}

// feed counts n bytes into rec, as a request body read through would.
func feed(t *testing.T, rec *progress.Record, n int) {
	t.Helper()
	b := progress.NewBody(io.NopCloser(bytes.NewReader(make([]byte, n))), rec)
	if _, err := io.Copy(io.Discard, b); err != nil {
		t.Fatal(err)
	}
}

// begin starts an upload of total bytes at key on tr.
func begin(t *testing.T, tr progress.Tracker, owner progress.Owner, key string, total int64) *progress.Record {
	t.Helper()
	rec, err := tr.Begin(owner, key, total)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// watch subscribes to key on tr until the test ends.
func watch(t *testing.T, tr progress.Tracker, owner progress.Owner, key string) progress.Subscription {
	t.Helper()
	sub, err := tr.Subscribe(owner, key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	return sub
}

// next waits for sub's next snapshot after prev, failing the test, as
// what, if none comes before ctx ends.
func next(t *testing.T, ctx context.Context, what string, sub progress.Subscription, prev progress.Snapshot) progress.Snapshot {
	t.Helper()
	s, err := sub.Next(ctx, prev, 1)
	if err != nil {
		t.Fatalf("%s: %v; last %s", what, err, snapString(prev))
	}
	return s
}

// carriedByA starts two nodes on srv, a and b, and an upload of 100
// bytes at /x carried by a, 10 of them in and shown on b.
func carriedByA(t *testing.T, srv *redistest.Server) (a, b *progress.SharedTracker, owner progress.Owner, rec *progress.Record) {
	t.Helper()
	a, b = node(t, srv.Addr), node(t, srv.Addr)
	owner = a.Owner("k")
	rec = begin(t, a, owner, "/x", 100)
	feed(t, rec, 10)
	showsOn(t, b, owner, "/x", func(s progress.Snapshot) bool { return s.Received == 10 })
	return a, b, owner, rec
}

// eventually polls f until it holds, for at most within.
func eventually(t *testing.T, what string, f func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, got := f()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last: %s", what, within, got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func showsOn(t *testing.T, tr progress.Tracker, owner progress.Owner, key string, want func(progress.Snapshot) bool) progress.Snapshot {
	t.Helper()
	var last progress.Snapshot
	eventually(t, "lookup of "+key, func() (bool, string) {
		last = tr.Lookup(owner, key)
		return want(last), snapString(last)
	})
	return last
}

func snapString(s progress.Snapshot) string {
	return s.State.String() + " " + time.Duration(s.Received).String()
}

func TestUploadOnOneNodeShowsOnTheOther(t *testing.T) {
	srv := redistest.Start(t)
	a, b := node(t, srv.Addr), node(t, srv.Addr)
	owner := a.Owner("api-key")
	if b.Owner("api-key") != owner {
		t.Fatal("the same credential is two owners on two nodes sharing the secret")
	}
	if b.Lookup(owner, "/x").Found {
		t.Fatal("a key nobody uploaded shows a record")
	}
	rec := begin(t, a, owner, "/x", 1000)
	sub := watch(t, b, owner, "/x")
	feed(t, rec, 400)
	showsOn(t, b, owner, "/x", func(s progress.Snapshot) bool {
		return s.State == progress.Uploading && s.Received == 400 && s.Total == 1000
	})
	if other := b.Lookup(b.Owner("another-key"), "/x"); other.Found {
		t.Fatal("another owner sees the record")
	}
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	// The watcher on b follows the bytes counted on a, then the end.
	var prev progress.Snapshot
	for prev.Received < 400 {
		prev = next(t, ctx, "watcher on the other node", sub, prev)
	}
	feed(t, rec, 600)
	a.End(rec, progress.Event{Status: 201})
	for prev.State == progress.Uploading {
		prev = next(t, ctx, "watcher on the other node", sub, prev)
	}
	if prev.State != progress.Completed || prev.Received != 1000 {
		t.Fatalf("watcher on the other node ends with %+v", prev)
	}
	got := b.Lookup(owner, "/x")
	want := a.Lookup(owner, "/x")
	if got.State != want.State || got.Received != want.Received || got.ID != want.ID || got.HTTPStatus != want.HTTPStatus {
		t.Fatalf("final states differ: carrying node %+v, other %+v", want, got)
	}
}

func TestSessionAcrossNodes(t *testing.T) {
	srv := redistest.Start(t)
	a, b := node(t, srv.Addr), node(t, srv.Addr)
	owner := a.Owner("k")
	key := "/files/abc"
	// A tus upload of 300 bytes: PATCH 0-100 through a, 100-200 through
	// b, 200-300 through a.
	ra, _, err := a.OpenSession(owner, key, progress.SessionSpec{Total: 300})
	if err != nil {
		t.Fatal(err)
	}
	patch := func(tr progress.Tracker, rec *progress.Record, from int64) {
		st := rec.StartStream(0, from, 100)
		var body progress.Body
		body.InitStream(io.NopCloser(bytes.NewReader(make([]byte, 100))), st)
		if _, err := io.Copy(io.Discard, &body); err != nil {
			t.Fatal(err)
		}
		rec.EndStream(st, true)
		rec.Acknowledge(from + 100)
	}
	patch(a, ra, 0)
	showsOn(t, b, owner, key, func(s progress.Snapshot) bool { return s.Received == 100 })
	rb := b.FindSession(owner, key)
	if rb == nil {
		t.Fatal("the node a PATCH of a session went to does not find the session the other node holds")
	}
	if rb.Total() != 300 {
		t.Fatalf("the session taken up on the other node has length %d, want 300", rb.Total())
	}
	patch(b, rb, 100)
	for _, tr := range []progress.Tracker{a, b} {
		s := showsOn(t, tr, owner, key, func(s progress.Snapshot) bool { return s.Received == 200 })
		if s.Session == nil || s.Session.Acknowledged != 200 || s.Session.Streams != 2 {
			t.Fatalf("merged session: %+v", s.Session)
		}
	}
	patch(a, ra, 200)
	a.EndSession(ra, progress.SessionEnded(progress.Completed, "", 204))
	for _, tr := range []progress.Tracker{a, b} {
		showsOn(t, tr, owner, key, func(s progress.Snapshot) bool {
			return s.State == progress.Completed && s.Received == 300 && s.Session.Acknowledged == 300
		})
	}
}

func TestPartsToTwoNodesAtOnce(t *testing.T) {
	srv := redistest.Start(t)
	a, b := node(t, srv.Addr), node(t, srv.Addr)
	owner := a.Owner("k")
	key := "upload-1"
	ra, _, err := a.OpenSession(owner, key, progress.SessionSpec{Total: -1, Parts: 2})
	if err != nil {
		t.Fatal(err)
	}
	showsOn(t, b, owner, key, func(s progress.Snapshot) bool { return s.Found })
	rb := b.FindSession(owner, key)
	if rb == nil {
		t.Fatal("no session on the second node")
	}
	// Part 1 through a and part 2 through b, both in flight.
	s1, s2 := ra.StartStream(1, -1, 500), rb.StartStream(2, -1, 700)
	read := func(st *progress.Stream, n int) {
		var body progress.Body
		body.InitStream(io.NopCloser(bytes.NewReader(make([]byte, n))), st)
		if _, err := io.Copy(io.Discard, &body); err != nil {
			t.Fatal(err)
		}
	}
	read(s1, 500)
	read(s2, 300)
	for _, tr := range []progress.Tracker{a, b} {
		s := showsOn(t, tr, owner, key, func(s progress.Snapshot) bool { return s.Received == 800 })
		if len(s.Session.InFlight) != 2 || s.Session.Acknowledged != 0 {
			t.Fatalf("in flight on both nodes: %+v", s.Session)
		}
	}
	ra.EndStream(s1, true)
	for _, tr := range []progress.Tracker{a, b} {
		showsOn(t, tr, owner, key, func(s progress.Snapshot) bool {
			return s.Received == 800 && s.Session.Acknowledged == 500 && s.Session.PartsDone == 1 && len(s.Session.InFlight) == 1
		})
	}
}

func TestStoreDownFailsOpenAndRecovers(t *testing.T) {
	srv := redistest.Start(t)
	a, b, owner, rec := carriedByA(t, srv)
	srv.Kill()
	feed(t, rec, 40)
	if s := a.Lookup(owner, "/x"); s.Received != 50 || s.State != progress.Uploading {
		t.Fatalf("the carrying node's own status while the store is down: %+v", s)
	}
	showsOn(t, b, owner, "/x", func(s progress.Snapshot) bool { return s.Unavailable && !s.Found })
	if s := b.Lookup(owner, "/never"); !s.Unavailable || s.Found {
		t.Fatalf("a key only the store could know about, store down: %+v", s)
	}
	eventually(t, "store down noticed", func() (bool, string) { return !a.StoreUp(), "up" })
	sub := watch(t, b, owner, "/x")
	if s := sub.Current(); !s.Unavailable {
		t.Fatalf("a watcher on a node that carries nothing of the key, store down: %+v", s)
	}
	srv.Restart()
	// The carrying node writes its live record again; nothing restarted.
	showsOn(t, b, owner, "/x", func(s progress.Snapshot) bool { return s.Found && s.Received == 50 })
	eventually(t, "store up again", func() (bool, string) { return a.StoreUp(), "down" })
	eventually(t, "the watcher sees the record again", func() (bool, string) {
		s := sub.Current()
		return s.Found && s.Received == 50, snapString(s)
	})
}

func TestDeadNodeIsReportedGone(t *testing.T) {
	srv := redistest.Start(t)
	a, b, owner, _ := carriedByA(t, srv)
	sub := watch(t, b, owner, "/x")
	stopped := time.Now()
	a.Close() // it writes no more: as a dead node
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	prev := sub.Current()
	for prev.State == progress.Uploading {
		prev = next(t, ctx, "watcher", sub, prev)
	}
	if prev.State != progress.Failed || prev.Error != progress.NodeGone {
		t.Fatalf("the watcher of an upload of a dead node sees %+v", prev)
	}
	s := b.Lookup(owner, "/x")
	if s.State != progress.Failed || s.Error != progress.NodeGone || s.Received != 10 {
		t.Fatalf("status of an upload of a dead node: %+v", s)
	}
	if late := s.Finished.Sub(stopped); late > testLease+testFlush+100*time.Millisecond {
		t.Fatalf("reported gone %v after the node stopped; the lease is %v", late, testLease)
	}
}

func TestClusterRecordOnEveryShard(t *testing.T) {
	servers := redistest.StartCluster(t, 3)
	addrs := []string{servers[0].Addr, servers[1].Addr, servers[2].Addr}
	a, b := node(t, addrs...), node(t, addrs...)
	owner := a.Owner("k")
	probe := New(redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs}), "upload_progress", "test")
	defer probe.Close()
	// Keys until every master holds one.
	holders := map[string]string{}
	ctx := context.Background()
	for i := 0; len(holders) < 3 && i < 200; i++ {
		key := "/k" + time.Duration(i).String()
		slot, err := probe.client.(*redis.ClusterClient).ClusterKeySlot(ctx, probe.RecordKey(owner, key)).Result()
		if err != nil {
			t.Fatal(err)
		}
		shard := slot * 3 / 16384
		if _, ok := holders[string(rune('0'+shard))]; !ok {
			holders[string(rune('0'+shard))] = key
		}
	}
	if len(holders) < 3 {
		t.Fatalf("no keys on every shard: %v", holders)
	}
	for _, key := range holders {
		rec := begin(t, a, owner, key, 10)
		feed(t, rec, 10)
		a.End(rec, progress.Event{Status: 201})
	}
	for _, key := range holders {
		showsOn(t, b, owner, key, func(s progress.Snapshot) bool { return s.State == progress.Completed && s.Received == 10 })
	}
	for _, srv := range servers {
		if n, err := srv.Do("DBSIZE"); err != nil || n == ":0" {
			t.Fatalf("master %s holds no record: %q %v", srv.Addr, n, err)
		}
	}
	// And a watcher on b hears a live upload through the cluster's pub/sub.
	sub := watch(t, b, owner, "/live")
	rec := begin(t, a, owner, "/live", 100)
	feed(t, rec, 30)
	wctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var prev progress.Snapshot
	for prev.Received < 30 {
		prev = next(t, wctx, "watcher through the cluster", sub, prev)
	}
}

func TestWatcherThroughAnOutageLongerThanTheLease(t *testing.T) {
	srv := redistest.Start(t)
	a, b, c := node(t, srv.Addr), node(t, srv.Addr), node(t, srv.Addr)
	owner := a.Owner("k")
	rec := begin(t, a, owner, "/x", 100)
	feed(t, rec, 10)
	// c carries another upload, and dies while the store is down.
	recC := begin(t, c, owner, "/y", 100)
	feed(t, recC, 5)
	sub := watch(t, b, owner, "/x")
	subC := watch(t, b, owner, "/y")
	eventually(t, "the watchers see the uploads", func() (bool, string) {
		s, sc := sub.Current(), subC.Current()
		return s.Received == 10 && sc.Received == 5, snapString(s) + ", " + snapString(sc)
	})
	srv.Kill()
	killed := time.Now()
	feed(t, rec, 40)
	c.Close()
	eventually(t, "store down noticed", func() (bool, string) { return !b.StoreUp(), "up" })
	// The outage outlasts the lease of a's last write: that is its
	// length, not a synchronisation.
	time.Sleep(time.Until(killed.Add(testLease + 50*time.Millisecond)))
	srv.Restart()
	back := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	prev := sub.Current()
	for !prev.Found || prev.Received != 50 {
		if prev.Found && prev.State != progress.Uploading {
			t.Fatalf("the watcher of a live upload, the store back after longer than a lease: %+v", prev)
		}
		prev = next(t, ctx, "watcher", sub, prev)
	}
	if prev.State != progress.Uploading {
		t.Fatalf("the watcher sees %+v", prev)
	}
	// The node that died in the outage is reported gone, a lease after
	// the store came back.
	prevC := subC.Current()
	for prevC.State == progress.Uploading || !prevC.Found {
		prevC = next(t, ctx, "watcher of the dead node's upload", subC, prevC)
	}
	if prevC.State != progress.Failed || prevC.Error != progress.NodeGone || prevC.Received != 5 || prevC.Finished.Before(back) {
		t.Fatalf("the watcher of the upload of a node that died in the outage sees %+v (the store back at %v)", prevC, back)
	}
}
