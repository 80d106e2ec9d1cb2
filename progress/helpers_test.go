package progress

import (
	"bytes"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

// zeroReader is an endless source of zero bytes.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// newTestTracker returns a MemoryTracker that is closed when the test ends.
func newTestTracker(t testing.TB, opts Options) *MemoryTracker {
	t.Helper()
	tr := NewMemoryTracker(opts)
	t.Cleanup(tr.Close)
	return tr
}

// waitDeadline is how long the bounded polling helpers wait for a condition.
const waitDeadline = 10 * time.Second

// waitUntil polls cond until it holds, failing the test after waitDeadline.
// It is only used for conditions that have no channel to wait on: a watcher
// having registered its wish, a goroutine being parked, a record expiring.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitDeadline, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitWatched waits until some watcher of rec has asked to be woken once
// rec has received want bytes, that is, until a Next call is about to block.
func waitWatched(t testing.TB, rec *Record, want int64) {
	t.Helper()
	waitUntil(t, "a watcher to wait for the byte threshold", func() bool {
		return rec.wakeAt.Load() == want
	})
}

// waitParkedInNext waits until at least n goroutines are parked in the select
// of a memorySubscription's Next.
func waitParkedInNext(t testing.TB, n int) {
	t.Helper()
	buf := make([]byte, 1<<20)
	waitUntil(t, "watchers to park in Next", func() bool {
		for {
			m := runtime.Stack(buf, true)
			if m < len(buf) {
				buf = buf[:m]
				break
			}
			buf = make([]byte, 2*len(buf))
		}
		parked := 0
		for _, g := range bytes.Split(buf, []byte("\n\n")) {
			header, _, _ := strings.Cut(string(g), "\n")
			if strings.Contains(header, "[select") && bytes.Contains(g, []byte("(*memorySubscription).Next")) {
				parked++
			}
		}
		buf = buf[:cap(buf)]
		return parked >= n
	})
}

// pipeUpload drives bytes through a Body from another goroutine, the way a
// transport reads a request body, so that a test decides exactly how many
// bytes have arrived.
type pipeUpload struct {
	pw   *io.PipeWriter
	read chan int   // the count of every Read, after the Body has counted it
	done chan error // the reader's final error
}

func startPipeUpload(t testing.TB, rec *Record) *pipeUpload {
	t.Helper()
	pr, pw := io.Pipe()
	u := &pipeUpload{pw: pw, read: make(chan int), done: make(chan error, 1)}
	body := NewBody(pr, rec)
	go func() {
		buf := make([]byte, 8<<10)
		for {
			n, err := body.Read(buf)
			if n > 0 {
				u.read <- n
			}
			if err != nil {
				u.done <- err
				return
			}
		}
	}()
	t.Cleanup(func() {
		pw.Close()
		for {
			select {
			case <-u.read:
			case <-u.done:
				return
			}
		}
	})
	return u
}

// send writes n bytes and returns once the Body has counted all of them.
func (u *pipeUpload) send(t testing.TB, n int) {
	t.Helper()
	werr := make(chan error, 1)
	go func() {
		_, err := u.pw.Write(make([]byte, n))
		werr <- err
	}()
	timeout := time.NewTimer(waitDeadline)
	defer timeout.Stop()
	for got := 0; got < n; {
		select {
		case k := <-u.read:
			got += k
		case err := <-u.done:
			t.Fatalf("body reader ended early: %v", err)
		case <-timeout.C:
			t.Fatalf("timed out sending %d bytes", n)
		}
	}
	if err := <-werr; err != nil {
		t.Fatalf("pipe write: %v", err)
	}
}
