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
)

// A reload's max_keys applies to the running zone: with one upload in
// flight and max_keys reloaded to 1, a second upload passes untracked,
// counted as tracker_full, and both reach the origin.
func TestReloadAppliesMaxKeys(t *testing.T) {
	e := newEnv(t, "")
	held := e.holdUpload("/first.bin", 64<<10, 1<<10)

	e.load("max_keys 1", e.originURL)
	before := e.scrape()
	data := pattern(20 << 10)
	if res := e.upload("/second.bin", bytes.NewReader(data), int64(len(data)), "", nil); res.code != http.StatusCreated {
		t.Fatalf("second upload: %d %s %v", res.code, res.body, res.err)
	}
	if p := e.status("/second.bin"); p.Status != "not_exist" {
		t.Fatalf("second upload past max_keys 1: %+v, want untracked (not_exist)", p)
	}
	full := `caddy_upload_progress_uploads_untracked_total{protocol="shard",reason="tracker_full",zone="default"}`
	if d := grew(before, e.scrape(), full); d != 1 {
		t.Fatalf("%s grew by %v, want 1", full, d)
	}
	if e.storedSHA256("/second.bin") != sha256Hex(data) {
		t.Fatal("the untracked upload did not reach the origin whole")
	}
	if res := held.finish(); res.code != http.StatusCreated {
		t.Fatalf("first upload: %d %s %v", res.code, res.body, res.err)
	}
	if p := e.status("/first.bin"); p.Status != "completed" {
		t.Fatalf("first upload after the reload: %+v", p)
	}
}

// A reload's retain applies to the running zone: an upload that finished
// under the default five minutes is forgotten once a reload shortens it.
func TestReloadAppliesRetain(t *testing.T) {
	e := newEnv(t, "")
	data := pattern(10 << 10)
	if res := e.upload("/kept.bin", bytes.NewReader(data), int64(len(data)), "", nil); res.code != http.StatusCreated {
		t.Fatalf("upload: %d %s %v", res.code, res.body, res.err)
	}
	if p := e.status("/kept.bin"); p.Status != "completed" {
		t.Fatalf("after the upload: %+v", p)
	}
	e.load("retain 200ms", e.originURL)
	e.waitStatus("/kept.bin", func(p progressReply) bool { return p.Status == "not_exist" })
}

// A reload's idle_timeout applies to the running zone: a client that
// stops sending is reported failed after the reloaded timeout, not the
// default ten minutes.
func TestReloadAppliesIdleTimeout(t *testing.T) {
	e := newEnv(t, "")
	e.load("idle_timeout 300ms", e.originURL)
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.proxy, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /fso?path=/idle.bin&informProgress=true HTTP/1.1\r\nHost: 127.0.0.1\r\nx-user-api-key: %s\r\nContent-Length: %d\r\n\r\n", apiKey, 1<<20)
	conn.Write(pattern(16 << 10))
	p := e.waitStatus("/idle.bin", func(p progressReply) bool { return p.Status != "uploading" && p.Status != "not_exist" })
	if p.Status != "failed" || !strings.HasPrefix(p.Error, "no data from the client for 300ms") {
		t.Fatalf("stalled upload after reloading idle_timeout: %+v", p)
	}
}

// A reload's watcher limits apply to the running zone: past
// max_watchers_per_key and max_watchers, watchers get 503.
func TestReloadAppliesWatcherLimits(t *testing.T) {
	e := newEnv(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e.load("max_watchers 2\nmax_watchers_per_key 1", e.originURL)
	before := e.scrape()
	hdr := http.Header{"X-User-Api-Key": {apiKey}}
	for _, c := range []struct {
		key  string
		want int
	}{
		{"/a.bin", http.StatusSwitchingProtocols},
		{"/a.bin", http.StatusServiceUnavailable}, // max_watchers_per_key 1
		{"/b.bin", http.StatusSwitchingProtocols},
		{"/c.bin", http.StatusServiceUnavailable}, // max_watchers 2
	} {
		conn, resp, err := e.dialWS(ctx, "/ws/progress?path="+c.key, hdr)
		if conn != nil {
			defer conn.CloseNow()
		}
		if resp == nil {
			t.Fatalf("watcher of %s: %v", c.key, err)
		}
		if resp.StatusCode != c.want {
			t.Fatalf("watcher of %s: %d (%v), want %d", c.key, resp.StatusCode, err, c.want)
		}
	}
	refused := `caddy_upload_progress_watchers_refused_total{protocol="shard",reason="limit",zone="default"}`
	if d := grew(before, e.scrape(), refused); d != 2 {
		t.Fatalf("%s grew by %v, want 2", refused, d)
	}
}

// A reload's update_interval and key_updates_per_second apply to the
// watchers that come after it: from a config that paces nothing, a reload
// to 100ms and 4 updates a second for the key bounds what four watchers
// of one upload get between them.
func TestReloadAppliesPacing(t *testing.T) {
	e := newEnv(t, "update_interval off\nkey_updates_per_second off")
	e.load("update_interval 100ms\nkey_updates_per_second 4", e.originURL)
	e.checkKeyRate(t, "/paced-after-reload.bin", 4, 4)
}

// Counters keep their values across a reload: each config has its own
// metrics registry, and the upload counters are the process's.
func TestCountersSurviveReload(t *testing.T) {
	e := newEnv(t, "")
	started := `caddy_upload_progress_uploads_started_total{protocol="shard",zone="default"}`
	before := metricValue(e.scrape(), started)
	data := pattern(1000)
	if res := e.upload("/c1.bin", bytes.NewReader(data), 1000, "", nil); res.code != http.StatusCreated {
		t.Fatalf("upload: %d %s %v", res.code, res.body, res.err)
	}
	if v := metricValue(e.scrape(), started); v != before+1 {
		t.Fatalf("%s = %v after an upload, want %v", started, v, before+1)
	}
	e.load("retain 6m", e.originURL)
	if v := metricValue(e.scrape(), started); v != before+1 {
		t.Fatalf("%s = %v after a reload, want it kept at %v", started, v, before+1)
	}
	if res := e.upload("/c2.bin", bytes.NewReader(data), 1000, "", nil); res.code != http.StatusCreated {
		t.Fatalf("upload: %d %s %v", res.code, res.body, res.err)
	}
	if v := metricValue(e.scrape(), started); v != before+2 {
		t.Fatalf("%s = %v after a second upload, want %v", started, v, before+2)
	}
}

// A reload that Caddy refuses changes nothing in the running zone: its
// retain and max_keys never apply, and the config before it goes on.
func TestRefusedReloadChangesNothing(t *testing.T) {
	e := newEnv(t, "")
	data := pattern(10 << 10)
	if res := e.upload("/done.bin", bytes.NewReader(data), int64(len(data)), "", nil); res.code != http.StatusCreated {
		t.Fatalf("upload: %d %s %v", res.code, res.body, res.err)
	}
	held := e.holdUpload("/held.bin", 64<<10, 1<<10)
	before := e.scrape()

	// Valid options but for two protocols answering one path, which
	// Caddy refuses at load time.
	err := e.tryLoad("retain 1ns\nmax_keys 1\nprotocol shard\nprotocol pcloud {\n\tstatus_path /progress\n}", e.originURL)
	if err == nil || !strings.Contains(err.Error(), "both answer /progress") {
		t.Fatalf("loading a config with a path clash: %v, want it refused", err)
	}

	if p := e.status("/done.bin"); p.Status != "completed" {
		t.Fatalf("a finished upload after the refused reload: %+v, want it kept (the running retain is 5m)", p)
	}
	if res := e.upload("/after.bin", bytes.NewReader(data), int64(len(data)), "", nil); res.code != http.StatusCreated {
		t.Fatalf("upload after the refused reload: %d %s %v", res.code, res.body, res.err)
	}
	if p := e.status("/after.bin"); p.Status != "completed" {
		t.Fatalf("an upload after the refused reload: %+v, want it tracked (the running max_keys is 100000)", p)
	}
	full := `caddy_upload_progress_uploads_untracked_total{protocol="shard",reason="tracker_full",zone="default"}`
	if d := grew(before, e.scrape(), full); d != 0 {
		t.Fatalf("%s grew by %v after the refused reload, want 0", full, d)
	}
	if res := held.finish(); res.code != http.StatusCreated {
		t.Fatalf("upload in flight across the refused reload: %d %s %v", res.code, res.body, res.err)
	}
}
