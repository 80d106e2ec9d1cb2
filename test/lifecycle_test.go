package test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/coder/websocket"
)

// A config reload in the middle of an upload keeps its record, its count
// and its watcher: the new config's endpoint serves the same upload.
func TestReloadMidUpload(t *testing.T) {
	e := newEnv(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const size = 4 << 20
	pr, pw := io.Pipe()
	done := e.asyncUpload("/reload.bin", pr, size, "", nil)
	pw.Write(pattern(1 << 20))
	e.waitStatus("/reload.bin", func(p progressReply) bool { return p.Uploaded == 1<<20 })
	w, err := e.watch(ctx, "/ws/progress", "/reload.bin", "")
	if err != nil {
		t.Fatal(err)
	}
	if p := w.next(t); p.Status != "uploading" {
		t.Fatalf("watcher before reload: %+v", p)
	}

	// The new config moves the status endpoint, so that answers from it
	// prove the new handler sees the old upload.
	reloaded := make(chan struct{})
	go func() {
		defer close(reloaded)
		e.load("protocol shard {\n\tstatus_path /progress-v2\n}\nretain 10m", e.originURL)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequest("GET", e.proxy+"/progress-v2?path=/reload.bin", nil)
		req.Header.Set("x-user-api-key", apiKey)
		resp, err := e.client.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				if want := `{"total_size":4194304,"uploaded":1048576,"status":"uploading","error":""}`; strings.TrimSpace(string(b)) != want {
					t.Fatalf("new config shows %s, want %s", b, want)
				}
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the reloaded config never answered on its status path")
		}
		time.Sleep(10 * time.Millisecond)
	}

	pw.Write(pattern(3 << 20))
	pw.Close()
	if res := <-done; res.code != 201 {
		t.Fatalf("upload across reload: %d %s %v", res.code, res.body, res.err)
	}
	<-reloaded
	msgs := w.all(t)
	if last := msgs[len(msgs)-1]; last.Status != "completed" || last.Uploaded != size {
		t.Fatalf("watcher's last message after reload: %+v", last)
	}
	if w.close.Code != websocket.StatusNormalClosure {
		t.Fatalf("watcher closed with %v", w.close)
	}
}

// Stopping Caddy tells watchers it is going away.
func TestShutdownClosesWatchersWithGoingAway(t *testing.T) {
	e := newEnv(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := e.watch(ctx, "/ws/progress", "/never-started.bin", "")
	if err != nil {
		t.Fatal(err)
	}
	if p := w.next(t); p.Status != "not_exist" {
		t.Fatalf("first message %+v", p)
	}
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	w.all(t)
	if w.close.Code != websocket.StatusGoingAway {
		t.Fatalf("watcher closed with %v (%v), want 1001 going away", w.close, w.err)
	}
}

// The key expression can come from a header instead of the query.
func TestKeyFromHeader(t *testing.T) {
	e := newEnv(t, "key {http.request.header.X-Upload-Key}")
	data := pattern(20 << 10)
	res := e.upload("/ignored-path.bin", bytes.NewReader(data), int64(len(data)), "", http.Header{"X-Upload-Key": {"/by-header"}})
	if res.code != 201 {
		t.Fatalf("upload: %d %s", res.code, res.body)
	}
	if p := e.status("/by-header"); p.Status != "completed" || p.Uploaded != int64(len(data)) {
		t.Fatalf("status by header key: %+v", p)
	}
	if p := e.status("/ignored-path.bin"); p.Status != "not_exist" {
		t.Fatalf("the query path should not be the key: %+v", p)
	}
}

// Configuration mistakes are refused when the config loads.
func TestConfigErrors(t *testing.T) {
	cases := map[string]string{
		"key {http.request.heder.X-Key}":                        "unrecognized placeholder",
		"protocol carrier-pigeon":                               `unknown protocol "carrier-pigeon"`,
		"key /fixed":                                            "has no placeholder",
		"protocol shard {\n\t\t\tstatus_path progress\n\t\t}":   "must start with /",
		"protocol shard nginx {\n\t\t\tkey {query.k}\n\t\t}":    "a protocol block configures one protocol",
		"protocol shard {\n\t\t\texists_probe HEAD /fso\n\t\t}": "must contain {key}",
		"exists_probe HEAD /fso?path={key}":                     "exists_probe is an option of protocol shard",
		"protocol pcloud pcloud":                                "protocol pcloud is listed twice",
		"bogus_option 1":                                        `unknown upload_progress option "bogus_option"`,
	}
	for block, want := range cases {
		cf := fmt.Sprintf("{\n\tadmin off\n\tpersist_config off\n}\nhttp://127.0.0.1:%s {\n\tbind 127.0.0.1\n\tupload_progress {\n\t\t%s\n\t}\n\treverse_proxy 127.0.0.1:1\n}\n", freePort(t), block)
		cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cf), nil)
		if err == nil {
			err = caddy.Load(cfg, true)
			caddy.Stop()
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one containing %q", block, err, want)
		}
	}
}

// With exists_probe, a file the origin has but the tracker never saw is
// reported completed, with the size the origin gives.
func TestExistsProbe(t *testing.T) {
	e := newEnv(t, "")
	e.load("protocol shard {\n\texists_probe HEAD http://"+e.originURL+"/fso?path={key}\n}", e.originURL)
	data := pattern(12345)
	req, _ := http.NewRequest("POST", "http://"+e.originURL+"/fso?path=/direct/file.bin", bytes.NewReader(data))
	req.Header.Set("x-user-api-key", apiKey)
	resp, err := e.client.Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("direct upload to origin: %v %v", resp, err)
	}
	resp.Body.Close()
	if p := e.status("/direct/file.bin"); p.Status != "completed" || p.Uploaded != 12345 || p.TotalSize != 12345 {
		t.Fatalf("probed existing file: %+v", p)
	}
	if p := e.status("/direct/missing.bin"); p.Status != "not_exist" {
		t.Fatalf("probed missing file: %+v", p)
	}
	// The probe carries the caller's credential: the origin refuses others.
	if _, p, _ := e.progress("/direct/file.bin", "wrong-key"); p.Status != "not_exist" {
		t.Fatalf("probe with a key the origin refuses: %+v", p)
	}
}

// Caddy's /metrics shows what happened to uploads and status requests.
func TestMetrics(t *testing.T) {
	e := newEnv(t, "")
	before := e.scrape()
	data := pattern(1000)
	e.upload("/m1.bin", bytes.NewReader(data), 1000, "", nil)
	e.upload("/m2.bin", bytes.NewReader(data), 1000, "", http.Header{"X-Origin-Fail": {"500"}})
	e.status("/m1.bin")
	// An upload without the credential passes untracked (the origin refuses it).
	req, _ := http.NewRequest("POST", e.proxy+"/fso?path=/m3.bin&informProgress=true", bytes.NewReader(data))
	if resp, err := e.client.Do(req); err == nil {
		resp.Body.Close()
	}
	after := e.scrape()

	checks := []struct {
		series string
		delta  float64
	}{
		{`caddy_upload_progress_uploads_started_total{protocol="shard",zone="default"}`, 2},
		{`caddy_upload_progress_uploads_finished_total{outcome="completed",protocol="shard",zone="default"}`, 1},
		{`caddy_upload_progress_uploads_finished_total{outcome="origin_error",protocol="shard",zone="default"}`, 1},
		{`caddy_upload_progress_uploads_untracked_total{protocol="shard",reason="no_credential",zone="default"}`, 1},
		{`caddy_upload_progress_received_bytes_total{protocol="shard",zone="default"}`, 2000},
		{`caddy_upload_progress_status_requests_total{code="200",protocol="shard",transport="rest",zone="default"}`, 1},
		{`caddy_upload_progress_upload_size_bytes_count{protocol="shard",zone="default"}`, 2},
		{`caddy_upload_progress_upload_duration_seconds_count{outcome="completed",protocol="shard",zone="default"}`, 1},
	}
	for _, c := range checks {
		if got := metricValue(after, c.series) - metricValue(before, c.series); got != c.delta {
			t.Errorf("%s grew by %v, want %v", c.series, got, c.delta)
		}
	}
	for _, gauge := range []string{
		`caddy_upload_progress_uploads_in_flight{zone="default"} 0`,
		`caddy_upload_progress_watchers{zone="default"} 0`,
	} {
		if !strings.Contains(after, gauge) {
			t.Errorf("metrics lack %q", gauge)
		}
	}
	if strings.Contains(after, "m1.bin") {
		t.Error("a key appears in the metrics")
	}
}

// metricValue finds one series' value in Prometheus text, 0 if absent.
func metricValue(text, series string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}
