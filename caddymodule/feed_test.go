package caddymodule

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// recordingTransport records what a fed watcher is sent.
type recordingTransport struct {
	msgs  chan progress.Snapshot
	ends  chan watchEnd
	overs chan error
}

func newRecordingTransport() *recordingTransport {
	return &recordingTransport{msgs: make(chan progress.Snapshot, 100), ends: make(chan watchEnd, 1), overs: make(chan error, 2)}
}

func (r *recordingTransport) send(_ context.Context, s progress.Snapshot) error {
	r.msgs <- s
	return nil
}
func (r *recordingTransport) end(e watchEnd) { r.ends <- e }
func (r *recordingTransport) over(err error) { r.overs <- err }

// joinFeed starts a fed watcher of k with step, recording what it is sent.
func joinFeed(t *testing.T, h *Handler, k refreshKey, step int64) (*fedWatcher, *recordingTransport) {
	t.Helper()
	sub, err := h.tracker().Subscribe(k.owner, k.key)
	if err != nil {
		t.Fatal(err)
	}
	rt := newRecordingTransport()
	w := newFedWatcher(sub, rt, step)
	h.startFed(w, k, named(sub.Current(), k.key))
	return w, rt
}

// until returns the first message that ok accepts, skipping others.
func (r *recordingTransport) until(t *testing.T, what string, ok func(progress.Snapshot) bool) progress.Snapshot {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case s := <-r.msgs:
			if ok(s) {
				return s
			}
		case <-deadline:
			t.Fatalf("no message %s", what)
		}
	}
}

// TestFeedFollowsAKeyForEachOfItsWatchers: the watchers of a key, fed
// from one goroutine, each get the key's first state, its progress and
// its end; one that leaves is told once and the others go on; when the
// last is over, the feed and the watchers' places are gone.
func TestFeedFollowsAKeyForEachOfItsWatchers(t *testing.T) {
	h := &Handler{Zone: uniqueZone(t), UpdateInterval: caddy.Duration(5 * time.Millisecond), KeyUpdatesPerSecond: 100000}
	provisionForTest(t, h)
	tr := h.tracker()
	k := refreshKey{progress.Anyone, "/fed.bin"}
	var ts []*recordingTransport
	var ws []*fedWatcher
	for range 3 {
		w, rt := joinFeed(t, h, k, 100)
		ts, ws = append(ts, rt), append(ws, w)
	}
	for i, rt := range ts {
		if s := <-rt.msgs; s.Found || s.Key != k.key {
			t.Fatalf("watcher %d: first message %+v, want the key's not-found state", i, s)
		}
	}

	rec, err := tr.Begin(progress.Anyone, k.key, 1000)
	if err != nil {
		t.Fatal(err)
	}
	body := progress.NewBody(io.NopCloser(bytes.NewReader(make([]byte, 1000))), rec)
	read := func(n int) {
		if _, err := io.ReadFull(body, make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}
	read(500)
	for _, rt := range ts {
		rt.until(t, "with 500 bytes", func(s progress.Snapshot) bool { return s.State == progress.Uploading && s.Received == 500 })
	}

	// One leaves: it is told once, and its place is freed.
	ws[0].leave(errWatcherGone)
	ws[0].leave(errWatcherGone)
	if err := <-ts[0].overs; err != errWatcherGone {
		t.Errorf("the watcher that left: over(%v)", err)
	}
	waitFor(t, "the place of the watcher that left", func() bool { return tr.Stats().Watchers == 2 })

	read(500)
	tr.End(rec, progress.Event{Status: 201, Received: 1000})
	for i, rt := range ts[1:] {
		select {
		case e := <-rt.ends:
			if e.kind != endFinal || e.state != progress.Completed || e.snap.Received != 1000 {
				t.Errorf("watcher %d ended with %+v, want completed with 1000 bytes", i+1, e)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("watcher %d: no end", i+1)
		}
		if err := <-rt.overs; err != nil {
			t.Errorf("watcher %d: over(%v) after its end, want nil", i+1, err)
		}
	}
	select {
	case e := <-ts[0].ends:
		t.Errorf("the watcher that left was sent the end %+v", e)
	default:
	}
	waitFor(t, "the feed to end", func() bool {
		h.feeds.mu.Lock()
		defer h.feeds.mu.Unlock()
		return len(h.feeds.m) == 0 && tr.Stats().Watchers == 0
	})
}

// TestFeedEndsItsWatchersWhenTheTrackerCloses: a server shutting down
// ends every fed watcher with a going-away end.
func TestFeedEndsItsWatchersWhenTheTrackerCloses(t *testing.T) {
	h := &Handler{Zone: uniqueZone(t)}
	provisionForTest(t, h)
	tr := h.tracker()
	k := refreshKey{progress.Anyone, "/closing.bin"}
	_, rt := joinFeed(t, h, k, 1)
	<-rt.msgs
	tr.Close()
	select {
	case e := <-rt.ends:
		if e.kind != endClosed {
			t.Errorf("ended with %+v, want the server going away", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no end when the tracker closed")
	}
}

// TestFeedStartsAgainForANewWatcher: a watcher of a key whose feed ended
// with its last watcher is fed by a new one.
func TestFeedStartsAgainForANewWatcher(t *testing.T) {
	h := &Handler{Zone: uniqueZone(t), UpdateInterval: caddy.Duration(5 * time.Millisecond), KeyUpdatesPerSecond: 100000}
	provisionForTest(t, h)
	tr := h.tracker()
	k := refreshKey{progress.Anyone, "/again.bin"}
	join := func() (*fedWatcher, *recordingTransport) {
		w, rt := joinFeed(t, h, k, 1)
		<-rt.msgs
		return w, rt
	}
	first, _ := join()
	first.leave(errWatcherGone)
	waitFor(t, "the feed to end", func() bool {
		h.feeds.mu.Lock()
		defer h.feeds.mu.Unlock()
		return len(h.feeds.m) == 0
	})
	_, rt := join()
	rec, err := tr.Begin(progress.Anyone, k.key, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(progress.NewBody(io.NopCloser(bytes.NewReader(make([]byte, 10))), rec), make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	rt.until(t, "with 4 bytes", func(s progress.Snapshot) bool { return s.Received == 4 })
	tr.End(rec, progress.Event{Status: 201, Received: 4})
	select {
	case <-rt.ends:
	case <-time.After(10 * time.Second):
		t.Fatal("no end")
	}
}
