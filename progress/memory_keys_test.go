package progress

import (
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// requestLine returns a megabyte-long string, as a request line with a
// long query can be, and a channel that is closed once it is freed.
func requestLine(t *testing.T) (string, <-chan struct{}) {
	t.Helper()
	line := strings.Repeat("0123456789", 100_000)
	freed := make(chan struct{})
	runtime.AddCleanup(unsafe.StringData(line), func(ch chan struct{}) { close(ch) }, freed)
	return line, freed
}

// expectFreed runs the garbage collector until freed is closed, and fails
// the test if it is not within a few seconds: something still holds it.
func expectFreed(t *testing.T, freed <-chan struct{}, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		runtime.GC()
		select {
		case <-freed:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("the request line is still held by %s", what)
}

func TestMemoryKeysDoNotHoldTheirRequest(t *testing.T) {
	tr := newTestTracker(t, Options{})

	line, freed := requestLine(t)
	rec, err := tr.Begin(Anyone, line[100:110], 10) // a key cut from the URL: "0123456789"
	if err != nil {
		t.Fatal(err)
	}
	tr.Finish(rec, Judge(Event{Status: 201, Received: 10}))
	line = ""
	expectFreed(t, freed, "a finished record")
	if s := tr.Lookup(Anyone, "0123456789"); !s.Found || s.State != Completed {
		t.Fatalf("the record is gone: %+v", s)
	}

	line, freed = requestLine(t)
	sub := mustSubscribe(t, tr, Anyone, line[201:211]) // a key no upload has: "1234567890"
	line = ""
	expectFreed(t, freed, "a watcher's key")
	if n := sub.Watchers(); n != 1 {
		t.Fatalf("the watcher is gone: %d watchers", n)
	}
}
