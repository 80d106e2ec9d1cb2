package test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The paced upload of watchPacedUpload: 1 MiB chunks, each a step of a
// watcher's default updatingRate, so that a stream without pacing would
// send a message per chunk.
const (
	pacedChunks = 32
	pacedChunk  = 1 << 20
	pacedPause  = 40 * time.Millisecond
)

// watchPacedUpload connects n watchers to path, each of which gets
// not_exist, then uploads pacedChunks chunks of pacedChunk bytes to it,
// pacedPause apart. It returns every message each watcher got, after
// checking that each followed the upload to its end, and how long the
// upload took from its first byte sent to the client's answer.
func (e *env) watchPacedUpload(t *testing.T, path string, n int) ([][]progressReply, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ws := make([]*watcher, n)
	for i := range ws {
		w, err := e.watch(ctx, "/ws/progress", path, "")
		if err != nil {
			t.Fatal(err)
		}
		defer w.c.CloseNow()
		if p := w.next(t); p.Status != "not_exist" {
			t.Fatalf("watcher %d before the upload: %+v, want not_exist", i, p)
		}
		ws[i] = w
	}

	const size = pacedChunks * pacedChunk
	chunk := pattern(pacedChunk)
	pr, pw := io.Pipe()
	stop := make(chan struct{})
	wrote := make(chan struct{})
	start := time.Now()
	done := e.asyncUpload(path, pr, size, "", nil)
	go func() {
		defer close(wrote)
		defer pw.Close()
		for i := range pacedChunks {
			if i > 0 {
				select {
				case <-time.After(pacedPause):
				case <-stop:
					return
				}
			}
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
	}()
	res := <-done
	took := time.Since(start)
	close(stop)
	pr.CloseWithError(errors.New("upload over"))
	<-wrote
	if res.err != nil || res.code != http.StatusCreated {
		t.Fatalf("paced upload: %d %s %v", res.code, res.body, res.err)
	}

	// Each watcher ends with the final state. Between them they saw the
	// upload in progress; one of several sharing a low rate for the key
	// may be paced past the upload's end on a loaded machine.
	got := make([][]progressReply, n)
	uploading := 0
	for i, w := range ws {
		msgs := w.all(t)
		if w.close.Code != websocket.StatusNormalClosure {
			t.Fatalf("watcher %d closed with %v (%v)", i, w.close, w.err)
		}
		if last := msgs[len(msgs)-1]; last.Status != "completed" || last.Uploaded != size {
			t.Fatalf("watcher %d last message %+v, want completed %d", i, last, size)
		}
		for _, m := range msgs {
			if m.Status == "uploading" {
				uploading++
			}
		}
		got[i] = msgs
	}
	if uploading == 0 {
		t.Fatalf("no watcher saw the upload in progress: %+v", got)
	}
	return got, took
}

// update_interval bounds what a watcher of a fast upload gets: one update
// per interval at most, however small its step, besides the state at
// connection and the final one.
func TestUpdateIntervalBoundsMessages(t *testing.T) {
	e := newEnv(t, "update_interval 200ms")
	got, took := e.watchPacedUpload(t, "/paced.bin", 1)
	const interval = 200 * time.Millisecond
	if limit := int(took/interval) + 3; len(got[0]) > limit {
		t.Fatalf("a watcher got %d messages during a %v upload of %d steps, want at most %d with update_interval %v: %+v",
			len(got[0]), took, pacedChunks, limit, interval, got[0])
	}
}

// key_updates_per_second bounds what all the watchers of one key get
// between them: with four watchers and 4 a second, each is paced to one
// update a second, though update_interval alone would allow ten.
func TestKeyUpdatesPerSecondBoundsMessages(t *testing.T) {
	e := newEnv(t, "update_interval 100ms\nkey_updates_per_second 4")
	e.checkKeyRate(t, "/shared.bin", 4, 4)
}

// checkKeyRate has watchers watch a paced upload and checks that they got
// at most rate messages a second between them.
func (e *env) checkKeyRate(t *testing.T, path string, rate, watchers int) {
	t.Helper()
	got, took := e.watchPacedUpload(t, path, watchers)
	total := 0
	for _, msgs := range got {
		total += len(msgs)
	}
	// Per watcher: the state at connection, the start (paced to the
	// interval of the one watcher there was when it began waiting), one
	// update per tick of its share of the rate, and the final state.
	if limit := int(took.Seconds()*float64(rate)) + 4*watchers; total > limit {
		t.Fatalf("%d watchers got %d messages in all during a %v upload, want at most %d (%d a second for the key)",
			watchers, total, took, limit, rate)
	}
}
