package caddymodule

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/ssetest"
	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
	"github.com/caddy-upload-progress/caddy-upload-progress/protocols/shard"
)

// serveHandler serves h over HTTP on a loopback port, as Caddy hands it
// requests (a replacer in their context); next answers what h passes on.
func serveHandler(t *testing.T, h *Handler, next caddyhttp.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caddyhttp.NewTestReplacer(r)
		if err := h.ServeHTTP(w, r, next); err != nil {
			t.Errorf("ServeHTTP: %v", err)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// sseReader reads a stream's events, one at a time.
type sseReader struct {
	br *bufio.Reader
}

// next returns the next event or comment; io.EOF at the stream's end.
func (s *sseReader) next() (ssetest.Event, error) { return ssetest.ReadEvent(s.br) }

// openEvents opens an event stream at target; header adds request headers.
func openEvents(t *testing.T, ctx context.Context, base, target string, header ...string) (*http.Response, *sseReader) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res, &sseReader{br: bufio.NewReader(res.Body)}
}

// getToken asks the shard status endpoint for a watch token of key.
func getToken(t *testing.T, base, key string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/progress?watch_token=1&path="+url.QueryEscape(key), nil)
	req.Header.Set(shard.APIKeyHeader, testAPIKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var v struct {
		shard.Status
		WatchToken string `json:"watch_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&v); err != nil || res.StatusCode != 200 || v.WatchToken == "" {
		t.Fatalf("asking for a watch token: %d %+v %v", res.StatusCode, v, err)
	}
	return v.WatchToken
}

// TestEventStreamFollowsAnUpload: a page holding only a watch token
// follows an upload as events: the headers, a retry advice, the current
// state at once, each MiB with an id one more than the last, the final
// state as progress and again as end, then the end of the stream.
func TestEventStreamFollowsAnUpload(t *testing.T) {
	// Heartbeats every few milliseconds go between the events, whole.
	h := &Handler{Zone: uniqueZone(t), UpdateInterval: -1, PingInterval: caddy.Duration(time.Millisecond)}
	provisionForTest(t, h)
	pr, pw := io.Pipe()
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
		return nil
	})
	srv := serveHandler(t, h, next)
	token := getToken(t, srv.URL, "/e.bin")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	res, events := openEvents(t, ctx, srv.URL, "/ws/progress?path=/e.bin&watch_token="+token)
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	for name, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"} {
		if got := res.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	first, err := events.next()
	if err != nil {
		t.Fatal(err)
	}
	if first.Retry != "2000" || first.ID != "1" || first.Event != "progress" || first.Data != `{"total_size":0,"uploaded":0,"status":"not_exist","error":""}` {
		t.Fatalf("first event %+v", first)
	}

	const mib = 1 << 20
	up := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/fso?informProgress=true&path=/e.bin", pr)
		req.ContentLength = 3 * mib
		req.Header.Set(shard.APIKeyHeader, testAPIKey)
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
		}
		up <- err
	}()
	t.Cleanup(func() { pw.CloseWithError(io.ErrUnexpectedEOF) })
	chunk := make([]byte, mib)
	id := 1
	var last ssetest.Event
	var uploaded int64
	// next reads events (skipping heartbeats) until one shows more than
	// was seen, or the end.
	nextEvent := func(what string) {
		t.Helper()
		for {
			ev, err := events.next()
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if ev.Comment != "" {
				continue
			}
			id++
			if ev.ID != strconv.Itoa(id) {
				t.Fatalf("event id %q, want %d", ev.ID, id)
			}
			var st shard.Status
			if err := json.Unmarshal([]byte(ev.Data), &st); err != nil {
				t.Fatalf("event data %q: %v", ev.Data, err)
			}
			last = ev
			if st.Uploaded > uploaded || ev.Event == "end" {
				uploaded = st.Uploaded
				return
			}
		}
	}
	// Each MiB brings an update: one MiB is the watcher's step, and the
	// last update showed at most the MiB before.
	for sent := 1; sent <= 2; sent++ {
		if _, err := pw.Write(chunk); err != nil {
			t.Fatal(err)
		}
		nextEvent("after " + strconv.Itoa(sent) + " MiB")
		if !strings.Contains(last.Data, `"status":"uploading"`) || last.Event != "progress" {
			t.Fatalf("after %d MiB: %+v, want uploading", sent, last)
		}
	}
	if _, err := pw.Write(chunk); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-up; err != nil {
		t.Fatal(err)
	}
	// The final state, as progress if not yet seen, then as end.
	for last.Event != "end" {
		ev, err := events.next()
		if err != nil {
			t.Fatalf("waiting for the end event: %v", err)
		}
		if ev.Comment != "" {
			continue
		}
		if ev.Event == "end" && ev.Data != last.Data {
			t.Errorf("end event data %q, want the final state %q", ev.Data, last.Data)
		}
		last = ev
	}
	if want := `{"total_size":3145728,"uploaded":3145728,"status":"completed","error":""}`; last.Data != want {
		t.Errorf("end data %q, want %q", last.Data, want)
	}
	if ev, err := events.next(); err != io.EOF {
		t.Errorf("after the end event: %+v, %v; want the end of the stream", ev, err)
	}
	if v := counterValue(t, statusRequests, map[string]string{"zone": h.Zone, "transport": transportSSE, "code": "200"}); v != 1 {
		t.Errorf("status_requests_total{transport=sse,code=200} = %v, want 1", v)
	}

	// A reconnecting EventSource gets the current state at once, its
	// ids going on from the last it saw.
	_, again := openEvents(t, ctx, srv.URL, "/ws/progress?path=/e.bin&watch_token="+token, "Last-Event-ID", "41")
	ev, err := again.next()
	if err != nil || ev.ID != "42" || ev.Event != "progress" || ev.Data != last.Data {
		t.Errorf("after reconnecting: %+v %v", ev, err)
	}
	if ev, err := again.next(); err != nil || ev.ID != "43" || ev.Event != "end" {
		t.Errorf("after reconnecting: %+v %v, want the end event", ev, err)
	}
}

// TestEventStreamHeartbeat: while nothing happens, comments keep the
// stream open.
func TestEventStreamHeartbeat(t *testing.T) {
	h := &Handler{Zone: uniqueZone(t), PingInterval: caddy.Duration(10 * time.Millisecond)}
	provisionForTest(t, h)
	srv := serveHandler(t, h, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil }))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, events := openEvents(t, ctx, srv.URL, "/ws/progress?path=/idle.bin", shard.APIKeyHeader, testAPIKey)
	if ev, err := events.next(); err != nil || ev.Event != "progress" {
		t.Fatalf("first event %+v %v", ev, err)
	}
	for range 2 {
		if ev, err := events.next(); err != nil || ev.Comment != "ping" || ev.Event != "" {
			t.Fatalf("while idle: %+v %v, want a ping comment", ev, err)
		}
	}
}

// TestEventStreamRefusals: a watcher the endpoint cannot take is refused
// before any stream, in the protocol's shape, and counted as sse.
func TestEventStreamRefusals(t *testing.T) {
	h := &Handler{Zone: uniqueZone(t)}
	provisionForTest(t, h)
	srv := serveHandler(t, h, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil }))
	expired := signWatchToken(h.zone.signingKey(), "shard", h.tracker().Owner(testAPIKey), "/r.bin", time.Now().Add(-time.Second))
	other := signWatchToken(h.zone.signingKey(), "shard", h.tracker().Owner(testAPIKey), "/other.bin", time.Now().Add(time.Minute))
	good := signWatchToken(h.zone.signingKey(), "shard", h.tracker().Owner(testAPIKey), "/r.bin", time.Now().Add(time.Minute))
	for _, tc := range []struct {
		name, target, apiKey string
		code                 int
		body                 string
	}{
		{"no credential", "/ws/progress?path=/r.bin", "", 401, `{"error":"missing x-user-api-key header"}`},
		{"expired token", "/ws/progress?path=/r.bin&watch_token=" + expired, "", 401, `{"error":"watch_token has expired; ask for a new one"}`},
		{"another key's token", "/ws/progress?path=/r.bin&watch_token=" + other, "", 401, `{"error":"watch_token is not valid for this upload"}`},
		{"forged token", "/ws/progress?path=/r.bin&watch_token=" + flip(t, good, 60), "", 401, `{"error":"watch_token is not valid for this upload"}`},
		{"the API key as token", "/ws/progress?path=/r.bin&watch_token=" + testAPIKey, "", 401, `{"error":"watch_token is malformed"}`},
		{"two tokens", "/ws/progress?path=/r.bin&watch_token=" + good + "&watch_token=" + good, "", 400, `{"error":"query parameter watch_token is given more than once"}`},
		{"bad query", "/ws/progress?path=r.bin", testAPIKey, 400, `{"error":"path must start with /"}`},
	} {
		before := counterValue(t, statusRequests, map[string]string{"zone": h.Zone, "transport": transportSSE, "code": strconv.Itoa(tc.code)})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var hdr []string
		if tc.apiKey != "" {
			hdr = []string{shard.APIKeyHeader, tc.apiKey}
		}
		res, _ := openEvents(t, ctx, srv.URL, tc.target, hdr...)
		body, _ := io.ReadAll(res.Body)
		cancel()
		if res.StatusCode != tc.code || strings.TrimSpace(string(body)) != tc.body || res.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %s %q, want %d %s", tc.name, res.StatusCode, res.Header.Get("Content-Type"), body, tc.code, tc.body)
		}
		if v := counterValue(t, statusRequests, map[string]string{"zone": h.Zone, "transport": transportSSE, "code": strconv.Itoa(tc.code)}); v != before+1 {
			t.Errorf("%s: status_requests_total{transport=sse,code=%d} = %v, want %v", tc.name, tc.code, v, before+1)
		}
	}

	// The same tokens at the REST endpoint: the good one answers.
	for _, tc := range []struct {
		token string
		code  int
	}{{good, 200}, {expired, 401}, {other, 401}} {
		res, err := http.Get(srv.URL + "/progress?path=/r.bin&watch_token=" + tc.token)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.code {
			t.Errorf("REST with a token: %d, want %d", res.StatusCode, tc.code)
		}
	}
}

// TestEventStreamWriteTimeout: a watcher whose connection takes no bytes
// within watcher_timeout is dropped, counted as write_timeout.
func TestEventStreamWriteTimeout(t *testing.T) {
	h := &Handler{Zone: uniqueZone(t), WatcherTimeout: caddy.Duration(50 * time.Millisecond)}
	expectWriteTimeoutDrop(t, h, &stuckWriter{header: http.Header{}}, "/ws/progress?path=/stuck.bin")
}

// TestEventStreamHeartbeatWriteTimeout: a watcher whose connection took
// its first event, then takes no heartbeat within watcher_timeout, is
// dropped, counted as write_timeout.
func TestEventStreamHeartbeatWriteTimeout(t *testing.T) {
	h := &Handler{Zone: uniqueZone(t), PingInterval: caddy.Duration(10 * time.Millisecond), WatcherTimeout: caddy.Duration(50 * time.Millisecond)}
	w := &stuckWriter{header: http.Header{}, takeFlushes: 1}
	expectWriteTimeoutDrop(t, h, w, "/ws/progress?path=/stuck-later.bin")
	if got := w.taken.String(); !strings.Contains(got, "event: progress\n") || strings.Contains(got, ": ping") {
		t.Errorf("taken before the stall: %q, want the first event only", got)
	}
}

// expectWriteTimeoutDrop serves an event stream at target on w and
// checks that the watcher is dropped, counted as write_timeout, and
// leaves no watcher behind.
func expectWriteTimeoutDrop(t *testing.T, h *Handler, w *stuckWriter, target string) {
	t.Helper()
	provisionForTest(t, h)
	dropped := map[string]string{"zone": h.Zone, "reason": "write_timeout"}
	before := counterValue(t, watchersDropped, dropped)
	r := newRequest(http.MethodGet, target, nil, testAPIKey)
	r.Header.Set("Accept", "text/event-stream")
	done := make(chan error, 1)
	go func() { done <- h.ServeHTTP(w, r, nil) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stuck watcher was not dropped")
	}
	if v := counterValue(t, watchersDropped, dropped); v != before+1 {
		t.Errorf("watchers_dropped_total{reason=write_timeout} = %v, want %v", v, before+1)
	}
	if s := h.tracker().Stats(); s.Watchers != 0 {
		t.Errorf("%d watchers left", s.Watchers)
	}
}

// stuckWriter is a connection that takes no bytes: a write waits for
// its deadline.
// (after takeFlushes flushes of what it took).
type stuckWriter struct {
	header      http.Header
	deadline    time.Time
	takeFlushes int
	taken       bytes.Buffer
}

func (s *stuckWriter) Header() http.Header { return s.header }
func (s *stuckWriter) WriteHeader(int)     {}
func (s *stuckWriter) Write(b []byte) (int, error) {
	if s.takeFlushes > 0 {
		return s.taken.Write(b)
	}
	if s.deadline.IsZero() {
		return 0, progress.ErrClosed
	}
	time.Sleep(time.Until(s.deadline))
	return 0, errDeadline{}
}
func (s *stuckWriter) SetWriteDeadline(t time.Time) error { s.deadline = t; return nil }
func (s *stuckWriter) Flush() {
	if s.takeFlushes > 0 {
		s.takeFlushes--
	}
}

// errDeadline is the error of a write past its deadline.
type errDeadline struct{}

func (errDeadline) Error() string   { return "i/o timeout" }
func (errDeadline) Timeout() bool   { return true }
func (errDeadline) Temporary() bool { return true }

// TestEventStreamsEndWhenTheProcessExits: Caddy waits for every request
// before it closes the trackers, so the streams end on their own once
// the process exits, and only then.
func TestEventStreamsEndWhenTheProcessExits(t *testing.T) {
	var exiting atomic.Bool
	sr := &streamRegistry{exiting: exiting.Load, every: time.Millisecond}
	ctx, end := context.WithCancelCause(context.Background())
	defer end(nil)
	remove := sr.add(end)
	other, endOther := context.WithCancelCause(context.Background())
	sr.add(endOther)()
	select {
	case <-ctx.Done():
		t.Fatal("a stream ended while the process runs on")
	case <-time.After(20 * time.Millisecond):
	}
	exiting.Store(true)
	select {
	case <-ctx.Done():
		if context.Cause(ctx) != errServerExiting {
			t.Errorf("ended with %v", context.Cause(ctx))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end when the process exits")
	}
	if other.Err() != nil {
		t.Error("a stream that was removed was ended")
	}
	remove()
	waitFor(t, "the exit watcher to end", func() bool {
		sr.mu.Lock()
		defer sr.mu.Unlock()
		return !sr.watching
	})
}
