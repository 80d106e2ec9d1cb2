package test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// An upload whose client stops sending mid-body ends stalled, and that end
// reaches the metrics once, as every other end does: finished with outcome
// stalled, and its bytes in received_bytes_total, once the request is over.
func TestStalledUploadIsCounted(t *testing.T) {
	e := newEnv(t, "idle_timeout 300ms")
	before := e.scrape()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.proxy, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const sent = 64 << 10
	fmt.Fprintf(conn, "POST /fso?path=/stalled.bin&informProgress=true HTTP/1.1\r\nHost: 127.0.0.1\r\nx-user-api-key: %s\r\nContent-Length: %d\r\n\r\n", apiKey, 1<<20)
	conn.Write(pattern(sent))
	e.waitStatus("/stalled.bin", func(p progressReply) bool { return p.Uploaded == sent })
	p := e.waitStatus("/stalled.bin", func(p progressReply) bool { return p.Status != "uploading" })
	if p.Status != "failed" || !strings.HasPrefix(p.Error, "no data from the client for 300ms") {
		t.Fatalf("stalled upload: %+v", p)
	}
	// The client gives up; the request ends.
	conn.Close()

	stalled := `caddy_upload_progress_uploads_finished_total{outcome="stalled",protocol="shard",zone="default"}`
	received := `caddy_upload_progress_received_bytes_total{protocol="shard",zone="default"}`
	deadline := time.Now().Add(15 * time.Second)
	for {
		after := e.scrape()
		if grew(before, after, stalled) == 1 && grew(before, after, received) == sent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("15 s after the stalled upload's request ended: %s grew by %v (want 1), %s by %v (want %d); finished series:\n%s",
				stalled, grew(before, after, stalled), received, grew(before, after, received), sent, finishedSeries(after))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Counted once, under no other outcome.
	after := e.scrape()
	if d := grew(before, after, `caddy_upload_progress_upload_size_bytes_count{protocol="shard",zone="default"}`); d != 1 {
		t.Fatalf("upload_size_bytes counted %v uploads, want 1; finished series:\n%s", d, finishedSeries(after))
	}
}

// finishedSeries lists the uploads_finished_total lines of a scrape.
func finishedSeries(text string) string {
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "caddy_upload_progress_uploads_finished_total{") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// The keys gauge is what the zone holds: a record per upload, a key per
// watched key with no record, and a watched key goes when its last
// watcher does.
func TestKeysGaugeReflectsRecords(t *testing.T) {
	e := newEnv(t, "")
	keys := `caddy_upload_progress_keys{zone="default"}`
	if v := metricValue(e.scrape(), keys); v != 0 {
		t.Fatalf("%s = %v in a new zone, want 0", keys, v)
	}
	data := pattern(1000)
	for _, path := range []string{"/k1.bin", "/k2.bin"} {
		if res := e.upload(path, bytes.NewReader(data), 1000, "", nil); res.code != http.StatusCreated {
			t.Fatalf("upload %s: %d %s %v", path, res.code, res.body, res.err)
		}
	}
	if v := metricValue(e.scrape(), keys); v != 2 {
		t.Fatalf("%s = %v after two uploads, want 2", keys, v)
	}
	// Another credential's upload to the same path is another record.
	other := http.Header{"X-User-Api-Key": {"other-key"}}
	if res := e.upload("/k1.bin", bytes.NewReader(data), 1000, "overwrite=true", other); res.code != http.StatusCreated {
		t.Fatalf("upload by another owner: %d %s %v", res.code, res.body, res.err)
	}
	if v := metricValue(e.scrape(), keys); v != 3 {
		t.Fatalf("%s = %v after another owner's upload to the same path, want 3", keys, v)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := e.watch(ctx, "/ws/progress", "/waited-for.bin", "")
	if err != nil {
		t.Fatal(err)
	}
	if p := w.next(t); p.Status != "not_exist" {
		t.Fatalf("watcher's first message %+v", p)
	}
	if v := metricValue(e.scrape(), keys); v != 4 {
		t.Fatalf("%s = %v with a watcher waiting for a fourth key, want 4", keys, v)
	}
	w.c.Close(websocket.StatusNormalClosure, "")
	e.waitMetric(keys, 3)
}

// Refused REST status requests are counted by their code.
func TestStatusRequestsCountedByCode(t *testing.T) {
	e := newEnv(t, "")
	before := e.scrape()
	for _, c := range []struct {
		method, query string
		key           string
		code          int
	}{
		{http.MethodGet, "path=/x.bin", "", http.StatusUnauthorized},
		{http.MethodGet, "", apiKey, http.StatusBadRequest},
		{http.MethodGet, "path=/x.bin&updatingRate=0", apiKey, http.StatusBadRequest},
		{http.MethodPost, "path=/x.bin", apiKey, http.StatusMethodNotAllowed},
		{http.MethodGet, "path=/x.bin", apiKey, http.StatusOK},
	} {
		req, _ := http.NewRequest(c.method, e.proxy+"/progress?"+c.query, nil)
		if c.key != "" {
			req.Header.Set("x-user-api-key", c.key)
		}
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.code {
			t.Fatalf("%s /progress?%s: %d, want %d", c.method, c.query, resp.StatusCode, c.code)
		}
	}
	after := e.scrape()
	for code, want := range map[string]float64{"200": 1, "400": 2, "401": 1, "405": 1} {
		series := fmt.Sprintf(`caddy_upload_progress_status_requests_total{code=%q,protocol="shard",transport="rest",zone="default"}`, code)
		if d := grew(before, after, series); d != want {
			t.Errorf("%s grew by %v, want %v", series, d, want)
		}
	}
}

// An upload that reaches its handler after a reload retired the handler's
// zone passes untracked, counted as tracker_closed, and reaches the
// origin. Here it waits in forward_auth, before upload_progress, while
// the reload renames the zone.
func TestUploadAfterItsZoneClosedPassesUntracked(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	var once bool
	auth := startFaultyOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Header.Get("X-Forwarded-Uri"), "/fso?path=%2Fheld-in-auth") {
			arrived <- struct{}{}
			select {
			case <-release:
			case <-time.After(30 * time.Second):
			}
		}
		w.WriteHeader(http.StatusOK)
	})
	t.Cleanup(func() {
		if !once {
			close(release)
		}
	})
	e := newEnvWith(t, "zone retiring", "forward_auth "+auth+" {\n\t\turi /auth\n\t}", false)
	before := e.scrape()
	data := pattern(50 << 10)
	done := e.asyncUpload("/held-in-auth.bin", bytes.NewReader(data), int64(len(data)), "", nil)
	select {
	case <-arrived:
	case <-time.After(15 * time.Second):
		t.Fatal("the upload never reached forward_auth")
	}
	e.load("zone successor", e.originURL)
	once = true
	close(release)

	res := <-done
	if res.err != nil || res.code != http.StatusCreated {
		t.Fatalf("upload across the zone's retirement: %d %s %v", res.code, res.body, res.err)
	}
	if e.storedSHA256("/held-in-auth.bin") != sha256Hex(data) {
		t.Fatal("origin stored different bytes")
	}
	closed := `caddy_upload_progress_uploads_untracked_total{protocol="shard",reason="tracker_closed",zone="retiring"}`
	if d := grew(before, e.scrape(), closed); d != 1 {
		t.Fatalf("%s grew by %v, want 1", closed, d)
	}
	if p := e.status("/held-in-auth.bin"); p.Status != "not_exist" {
		t.Fatalf("the new zone shows %+v, want not_exist (the upload was not tracked)", p)
	}
}
