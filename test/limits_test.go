package test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/testkit"
)

// At the watcher limit a watcher is refused with 503 in the protocol's
// shape, counted in the metrics, and the upload it wanted is unaffected.
func TestWatcherLimitRefusesWith503(t *testing.T) {
	e := newEnv(t, "max_watchers_per_key 2")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before := e.scrape()
	for range 2 {
		w, err := e.watch(ctx, "/ws/progress", "/limited.bin", "")
		if err != nil {
			t.Fatal(err)
		}
		defer w.c.CloseNow()
		w.next(t)
	}
	_, resp, err := websocket.Dial(ctx, testkit.WebSocketURL(e.proxy)+"/ws/progress?path=/limited.bin",
		&websocket.DialOptions{HTTPHeader: http.Header{"X-User-Api-Key": {apiKey}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third watcher: %v %v, want 503", resp, err)
	}
	b, _ := io.ReadAll(resp.Body)
	if got := strings.TrimSpace(string(b)); got != `{"error":"too many watchers, try again later"}` {
		t.Fatalf("refusal body %s", got)
	}
	series := `caddy_upload_progress_watchers_refused_total{protocol="shard",reason="limit",zone="default"}`
	if d := metricValue(e.scrape(), series) - metricValue(before, series); d != 1 {
		t.Fatalf("%s grew by %v, want 1", series, d)
	}
	// Another key is not limited by this one's watchers.
	w, err := e.watch(ctx, "/ws/progress", "/other.bin", "")
	if err != nil {
		t.Fatalf("watcher of another key: %v", err)
	}
	w.c.CloseNow()
}

// A client that stops sending mid-body is reported failed after the idle
// timeout, without waiting for it to give up.
func TestStalledClientIsReportedFailed(t *testing.T) {
	e := newEnv(t, "idle_timeout 300ms")
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.proxy, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /fso?path=/stalled.bin&informProgress=true HTTP/1.1\r\nHost: 127.0.0.1\r\nx-user-api-key: %s\r\nContent-Length: %d\r\n\r\n", apiKey, 1<<20)
	conn.Write(pattern(64 << 10))
	e.waitStatus("/stalled.bin", func(p progressReply) bool { return p.Uploaded == 64<<10 })
	started := time.Now()
	p := e.waitStatus("/stalled.bin", func(p progressReply) bool { return p.Status != "uploading" })
	if p.Status != "failed" || !strings.HasPrefix(p.Error, "no data from the client for 300ms after 65536 bytes") {
		t.Fatalf("stalled upload: %+v", p)
	}
	if took := time.Since(started); took > 5*time.Second {
		t.Fatalf("reported after %v", took)
	}
}

// Finished uploads keep their file details within max_file_details: past
// it an upload is still reported in full but for the names of its files,
// and the metrics say how much is held and how many were dropped.
func TestFileDetailsPastTheirBoundAreDropped(t *testing.T) {
	e := newEnv(t, "")
	e.load("protocol pcloud\nzone file-details\nmax_file_details 2KiB", pcloudOrigin(t))
	before := e.scrape()
	name := strings.Repeat("n", 600) + ".bin"
	for _, hash := range []string{"d-1", "d-2"} {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		fw, _ := mw.CreateFormFile("file", name)
		fw.Write(pattern(1000))
		mw.Close()
		req, _ := http.NewRequest("POST", e.proxy+"/uploadfile?progresshash="+hash+"&auth=tok", &body)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("upload %s: %s", hash, resp.Status)
		}
	}

	kept, raw := e.pcloudProgress("progresshash=d-1&auth=tok")
	if !kept.Finished || len(kept.Files) != 1 || !strings.Contains(string(kept.Files[0]), name) {
		t.Fatalf("first upload, within the bound: %s; want its file with its name", raw)
	}
	dropped, raw := e.pcloudProgress("progresshash=d-2&auth=tok")
	if !dropped.Finished || dropped.Uploaded != kept.Uploaded || dropped.Total != kept.Total || len(dropped.Files) != 0 {
		t.Fatalf("second upload, past the bound: %s; want it finished with its bytes, without files", raw)
	}

	after := e.scrape()
	series := `caddy_upload_progress_file_details_dropped_total{zone="file-details"}`
	if d := metricValue(after, series) - metricValue(before, series); d != 1 {
		t.Fatalf("%s grew by %v, want 1", series, d)
	}
	held := `caddy_upload_progress_file_details_bytes{zone="file-details"}`
	if v := metricValue(after, held); v < float64(len(name)) || v > 2048 {
		t.Fatalf("%s = %v, want the first upload's details, within 2 KiB", held, v)
	}
}
