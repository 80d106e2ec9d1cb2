package progress

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// Watchers are bounded per key and in all; at a limit Subscribe refuses
// and nothing else changes.
func TestWatcherLimits(t *testing.T) {
	tr := newTestTracker(t, Options{MaxWatchers: 5, MaxWatchersPerKey: 3})
	var subs []Subscription
	for range 3 {
		s, err := tr.Subscribe(Anyone, "/a")
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	if _, err := tr.Subscribe(Anyone, "/a"); !errors.Is(err, ErrTooManyWatchers) {
		t.Fatalf("4th watcher of one key: %v, want ErrTooManyWatchers", err)
	}
	for range 2 {
		s, err := tr.Subscribe(Anyone, "/b")
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	if _, err := tr.Subscribe(Anyone, "/c"); !errors.Is(err, ErrTooManyWatchers) {
		t.Fatalf("6th watcher in all: %v, want ErrTooManyWatchers", err)
	}
	if got := tr.Stats().Watchers; got != 5 {
		t.Fatalf("Stats().Watchers = %d after refusals, want 5", got)
	}
	subs[0].Close()
	if s, err := tr.Subscribe(Anyone, "/c"); err != nil {
		t.Fatalf("after one watcher left: %v", err)
	} else {
		s.Close()
	}
	// Uploads are never refused for watchers' sake.
	if _, err := tr.Begin(Anyone, "/a", 10); err != nil {
		t.Fatalf("Begin at the watcher limit: %v", err)
	}
	for _, s := range subs[1:] {
		s.Close()
	}
}

// An upload whose client sends nothing for the idle timeout while its body
// is incomplete is failed, and its watchers are told.
func TestStalledUploadIsReaped(t *testing.T) {
	tr := newTestTracker(t, Options{IdleTimeout: 200 * time.Millisecond})
	rec, err := tr.Begin(Anyone, "/stuck", 1000)
	if err != nil {
		t.Fatal(err)
	}
	u := startPipeUpload(t, rec)
	u.send(t, 100)
	sub, err := tr.Subscribe(Anyone, "/stuck")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	snap, err := sub.Next(ctx, sub.Current(), 1<<20)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	if snap.State != Failed || !strings.HasPrefix(snap.Error, "no data from the client for 200ms after 100 bytes") {
		t.Fatalf("stalled upload: %+v", snap)
	}
	// The record ends, then the tracker counts it out.
	waitUntil(t, "InFlight to drop to 0", func() bool { return tr.Stats().InFlight == 0 })
}

// An upload whose body is complete is not reaped while its origin thinks.
func TestCompleteBodyIsNotReaped(t *testing.T) {
	tr := newTestTracker(t, Options{IdleTimeout: 100 * time.Millisecond})
	rec, err := tr.Begin(Anyone, "/thinking", 100)
	if err != nil {
		t.Fatal(err)
	}
	u := startPipeUpload(t, rec)
	u.send(t, 100)
	u.pw.Close()
	waitUntil(t, "the body to be read to its end", rec.bodyDone.Load)
	// Several janitor rounds past the idle timeout.
	deadline := time.Now().Add(600 * time.Millisecond)
	for time.Now().Before(deadline) {
		if s := tr.Lookup(Anyone, "/thinking"); s.State != Uploading {
			t.Fatalf("a complete body waiting for its origin was reaped: %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
