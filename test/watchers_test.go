package test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/testkit"
)

// waitMetric polls Caddy's /metrics until series reaches want, failing
// the test after 15 s. It is for server-side events a client cannot see,
// such as a watcher being dropped while its client is not reading.
func (e *env) waitMetric(series string, want float64) {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := metricValue(e.scrape(), series)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s is %v after 15 s, want %v", series, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A watcher that stops reading stops answering pings: it is dropped after
// watcher_timeout with 1008, which it finds after the messages it had not
// read, and counted. A watcher that reads is unaffected, and so is the
// upload both watch.
func TestUnresponsiveWatcherIsDroppedWith1008(t *testing.T) {
	e := newEnv(t, "ping_interval 100ms\nwatcher_timeout 300ms")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	before := e.scrape()
	pr, pw := io.Pipe()
	done := e.asyncUpload("/watched.bin", pr, 1<<20, "", nil)
	pw.Write(pattern(1 << 10))
	e.waitStatus("/watched.bin", func(p progressReply) bool { return p.Uploaded == 1<<10 })

	reader, err := e.watch(ctx, "/ws/progress", "/watched.bin", "")
	if err != nil {
		t.Fatal(err)
	}
	defer reader.c.CloseNow()
	if p := reader.next(t); p.Status != "uploading" {
		t.Fatalf("reading watcher's first message %+v", p)
	}
	idle, _, err := websocket.Dial(ctx, testkit.WebSocketURL(e.proxy)+"/ws/progress?path=/watched.bin",
		&websocket.DialOptions{HTTPHeader: http.Header{"X-User-Api-Key": {apiKey}}})
	if err != nil {
		t.Fatal(err)
	}
	defer idle.CloseNow()

	// Counters live as long as the process; gauges are the zone's.
	dropped := `caddy_upload_progress_watchers_dropped_total{protocol="shard",reason="no_pong",zone="default"}`
	e.waitMetric(dropped, metricValue(before, dropped)+1)
	e.waitMetric(`caddy_upload_progress_watchers{zone="default"}`, 1)

	// The idle watcher's unread messages, then the close.
	var msgs int
	for {
		_, _, err := idle.Read(ctx)
		if err != nil {
			if got := websocket.CloseStatus(err); got != websocket.StatusPolicyViolation {
				t.Fatalf("idle watcher ended with %v (status %v), want 1008", err, got)
			}
			var ce websocket.CloseError
			errors.As(err, &ce)
			if !strings.Contains(ce.Reason, "no pong within 300ms") {
				t.Fatalf("close reason %q", ce.Reason)
			}
			break
		}
		msgs++
	}
	if msgs != 1 {
		t.Fatalf("idle watcher had %d unread messages, want the first state only", msgs)
	}

	// The upload and the reading watcher go on.
	pw.Write(pattern(1 << 20)[1<<10:])
	pw.Close()
	if r := <-done; r.err != nil || r.code != http.StatusCreated {
		t.Fatalf("upload: %d %v", r.code, r.err)
	}
	got := reader.all(t)
	if len(got) == 0 || got[len(got)-1].Status != "completed" || reader.close.Code != websocket.StatusNormalClosure {
		t.Fatalf("reading watcher got %+v, closed with %v (%v)", got, reader.close, reader.err)
	}
}

// A watcher has nothing to send: a data message closes it with 1008, and
// a frame over the read limit cannot make the server buffer it.
func TestWatcherThatSendsDataIsClosed(t *testing.T) {
	e := newEnv(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, size := range []int{5, 1 << 20} {
		w, err := e.watch(ctx, "/ws/progress", "/quiet.bin", "")
		if err != nil {
			t.Fatal(err)
		}
		if p := w.next(t); p.Status != "not_exist" {
			t.Fatalf("first message %+v", p)
		}
		// The write may fail once the server has closed the connection.
		w.c.Write(ctx, websocket.MessageText, make([]byte, size))
		w.all(t)
		if w.close.Code != websocket.StatusPolicyViolation && w.close.Code != websocket.StatusMessageTooBig {
			t.Fatalf("%d-byte message: closed with %v (%v), want 1008 or 1009", size, w.close, w.err)
		}
	}
}
