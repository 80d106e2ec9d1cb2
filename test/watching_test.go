package test

import (
	cryptotls "crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/quic-go/quic-go/http3"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/ssetest"
)

// sseSeries is an event-stream status_requests_total series of the
// default zone.
func sseSeries(protocol string, code int) string {
	return fmt.Sprintf(`caddy_upload_progress_status_requests_total{code="%d",protocol="%s",transport="sse",zone="default"}`, code, protocol)
}

// A page that holds only a watch token follows a storage-node upload: it
// gets the token from a status request with its API key, then watches by
// Server-Sent Events with the token alone, from the upload's first bytes
// through its end event; it may poll and open the WebSocket with the
// token too. A token that is forged, or for another upload, is refused
// with 401 before any stream or upgrade, as is no credential at all.
func TestWatchTokenShard(t *testing.T) {
	e := newEnv(t, "")
	key := http.Header{"X-User-Api-Key": {apiKey}}
	before := e.scrape()
	const size, first = 4 << 20, 1 << 20
	up := e.holdUpload("/watched.bin", size, first)

	token, reply := watchTokenOf(t, e.client, e.proxy+"/progress?path=/watched.bin&watch_token=1", key)
	if string(reply["uploaded"]) != strconv.Itoa(first) || string(reply["status"]) != `"uploading"` {
		t.Fatalf("the reply with the token: %v", reply)
	}
	s := ssetest.Open(t, e.client, e.proxy+"/ws/progress?path=/watched.bin&watch_token="+token, nil)
	for name, want := range map[string]string{"Cache-Control": "no-cache", "X-Accel-Buffering": "no"} {
		if got := s.Resp.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	mid := fmt.Sprintf(`{"total_size":%d,"uploaded":%d,"status":"uploading","error":""}`, size, first)
	if ev := s.Next(t); ev.Event != "progress" || ev.ID != "1" || ev.Retry == "" || ev.Data != mid {
		t.Fatalf("first event %+v, want progress 1 with %s", ev, mid)
	}

	// Polling and the WebSocket with the token alone.
	if code, body := getWith(t, e.client, e.proxy+"/progress?path=/watched.bin&watch_token="+token, nil); code != 200 || body != mid {
		t.Errorf("REST with the token: %d %s, want 200 %s", code, body, mid)
	}
	if msg := wsFirst(t, e, "/ws/progress?path=/watched.bin&watch_token="+token, nil); msg != mid {
		t.Errorf("WebSocket with the token: %s, want %s", msg, mid)
	}

	// Refused before any stream, upgrade or reply.
	other, _ := watchTokenOf(t, e.client, e.proxy+"/progress?path=/other.bin&watch_token=1", key)
	for _, c := range []struct{ name, query, body string }{
		{"forged token", "path=/watched.bin&watch_token=" + forged(token), `{"error":"watch_token is not valid for this upload"}`},
		{"another upload's token", "path=/watched.bin&watch_token=" + other, `{"error":"watch_token is not valid for this upload"}`},
		{"the API key in place of a token", "path=/watched.bin&watch_token=" + apiKey, `{"error":"watch_token is malformed"}`},
		{"no credential", "path=/watched.bin", `{"error":"missing x-user-api-key header"}`},
	} {
		if code, body := ssetest.Refused(t, e.client, e.proxy+"/ws/progress?"+c.query, nil); code != 401 || body != c.body {
			t.Errorf("%s, event stream: %d %s, want 401 %s", c.name, code, body, c.body)
		}
		if code, body := wsRefused(t, e, "/ws/progress?"+c.query, nil); code != 401 || body != c.body {
			t.Errorf("%s, WebSocket: %d %s, want 401 %s", c.name, code, body, c.body)
		}
		if code, body := getWith(t, e.client, e.proxy+"/progress?"+c.query, nil); code != 401 || body != c.body {
			t.Errorf("%s, REST: %d %s, want 401 %s", c.name, code, body, c.body)
		}
	}

	up.finish()
	final := fmt.Sprintf(`{"total_size":%d,"uploaded":%d,"status":"completed","error":""}`, size, size)
	last := s.Until(t, "end", func(ev ssetest.Event) bool {
		var r progressReply
		if err := json.Unmarshal([]byte(ev.Data), &r); err != nil || r.Uploaded < first {
			t.Fatalf("event %+v: %v", ev, err)
		}
		return ev.Event == "end"
	})
	if last.Data != final {
		t.Errorf("end event data %s, want %s", last.Data, final)
	}
	s.Ended(t)

	after := e.scrape()
	if d := grew(before, after, sseSeries("shard", 200)); d != 1 {
		t.Errorf("%s grew by %v, want 1", sseSeries("shard", 200), d)
	}
	if d := grew(before, after, sseSeries("shard", 401)); d != 4 {
		t.Errorf("%s grew by %v, want 4", sseSeries("shard", 401), d)
	}
}

// A watch token is good for watch_token_ttl: once it has passed, the
// token is refused (REST, event stream, WebSocket) with 401.
func TestWatchTokenExpires(t *testing.T) {
	e := newEnv(t, "watch_token_ttl 1s")
	key := http.Header{"X-User-Api-Key": {apiKey}}
	token, _ := watchTokenOf(t, e.client, e.proxy+"/progress?path=/soon.bin&watch_token=1", key)
	want := `{"error":"watch_token has expired; ask for a new one"}`
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		code, body := getWith(t, e.client, e.proxy+"/progress?path=/soon.bin&watch_token="+token, nil)
		if code == 401 && body == want {
			break
		}
		if code != 200 || time.Now().After(deadline) {
			t.Fatalf("REST with a token of 1s: %d %s, want 200 then 401 %s", code, body, want)
		}
	}
	if code, body := ssetest.Refused(t, e.client, e.proxy+"/ws/progress?path=/soon.bin&watch_token="+token, nil); code != 401 || body != want {
		t.Errorf("event stream with an expired token: %d %s", code, body)
	}
	if code, body := wsRefused(t, e, "/ws/progress?path=/soon.bin&watch_token="+token, nil); code != 401 || body != want {
		t.Errorf("WebSocket with an expired token: %d %s", code, body)
	}
}

// Server-Sent Events over HTTP/2 and HTTP/3 (TLS): the same stream,
// flushed event by event, where no WebSocket is served.
func TestEventStreamOverHTTP2AndHTTP3(t *testing.T) {
	e := newEnvWith(t, "", "", true)
	key := http.Header{"X-User-Api-Key": {apiKey}}
	const size, first = 2 << 20, 512 << 10
	up := e.holdUpload("/h2.bin", size, first)
	s := ssetest.Open(t, e.client, e.proxy+"/ws/progress?path=/h2.bin", key)
	if s.Resp.ProtoMajor != 2 {
		t.Fatalf("the stream came over %s, want HTTP/2", s.Resp.Proto)
	}
	if ev := s.Next(t); ev.Data != fmt.Sprintf(`{"total_size":%d,"uploaded":%d,"status":"uploading","error":""}`, size, first) {
		t.Fatalf("first event %+v", ev)
	}
	up.finish()
	if ev := s.Until(t, "end", func(ev ssetest.Event) bool { return ev.Event == "end" }); ev.Data != fmt.Sprintf(`{"total_size":%d,"uploaded":%d,"status":"completed","error":""}`, size, size) {
		t.Errorf("end event %+v", ev)
	}
	s.Ended(t)

	// And over HTTP/3.
	h3 := &http3.Transport{TLSClientConfig: &cryptotls.Config{InsecureSkipVerify: true}}
	defer h3.Close()
	up = e.holdUpload("/h3.bin", size, first)
	s = ssetest.Open(t, &http.Client{Transport: h3}, e.proxy+"/ws/progress?path=/h3.bin", key)
	if s.Resp.ProtoMajor != 3 {
		t.Fatalf("the stream came over %s, want HTTP/3", s.Resp.Proto)
	}
	if ev := s.Next(t); ev.Data != fmt.Sprintf(`{"total_size":%d,"uploaded":%d,"status":"uploading","error":""}`, size, first) {
		t.Fatalf("first event over HTTP/3 %+v", ev)
	}
	up.finish()
	if ev := s.Until(t, "end", func(ev ssetest.Event) bool { return ev.Event == "end" }); ev.Data != fmt.Sprintf(`{"total_size":%d,"uploaded":%d,"status":"completed","error":""}`, size, size) {
		t.Errorf("end event over HTTP/3 %+v", ev)
	}
	s.Ended(t)
}

// A config reload does not end an event stream whose upload goes on: it
// streams the upload to its end event; stopping Caddy ends a stream with
// a comment and no end event, so that an EventSource reconnects.
func TestEventStreamAcrossReloadAndStop(t *testing.T) {
	e := newEnv(t, "")
	key := http.Header{"X-User-Api-Key": {apiKey}}
	const size, first = 2 << 20, 1 << 20
	up := e.holdUpload("/reload-sse.bin", size, first)
	s := ssetest.Open(t, e.client, e.proxy+"/ws/progress?path=/reload-sse.bin", key)
	if ev := s.Next(t); ev.Data != fmt.Sprintf(`{"total_size":%d,"uploaded":%d,"status":"uploading","error":""}`, size, first) {
		t.Fatalf("first event %+v", ev)
	}
	e.load("retain 10m", e.originURL)
	up.finish()
	if ev := s.Until(t, "end", func(ev ssetest.Event) bool { return ev.Event == "end" }); ev.Data != fmt.Sprintf(`{"total_size":%d,"uploaded":%d,"status":"completed","error":""}`, size, size) {
		t.Errorf("end event after the reload %+v", ev)
	}
	s.Ended(t)

	idle := ssetest.Open(t, e.client, e.proxy+"/ws/progress?path=/never.bin", key)
	if ev := idle.Next(t); ev.Event != "progress" {
		t.Fatalf("first event %+v", ev)
	}
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	var last ssetest.Event
	for ev := range idle.Events {
		last = ev
		if ev.Event != "" {
			t.Errorf("after the stop: %+v, want no event", ev)
		}
	}
	if last.Comment != "server shutting down" || idle.Err != io.EOF {
		t.Errorf("the stream ended with %+v, %v; want the comment and its end", last, idle.Err)
	}
}
