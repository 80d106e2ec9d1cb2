package test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/ssetest"
)

// A page's EventSource at the WebSocket path (Accept: text/event-stream)
// over HTTP/3 follows an upload that streams over HTTP/3: an event for
// each step the body takes, then the end, completed.
func TestEventStreamOverHTTP3(t *testing.T) {
	e := newEnvWith(t, "protocol shard", "", true)
	c := http3Client(t)

	s := ssetest.Open(t, c, e.proxy+"/ws/progress?path=/h3-sse.bin", http.Header{"X-User-Api-Key": {apiKey}})
	if s.Resp.ProtoMajor != 3 {
		t.Fatalf("event stream over %s, want HTTP/3", s.Resp.Proto)
	}
	next := func() (string, progressReply) {
		t.Helper()
		ev := s.Next(t)
		var p progressReply
		if err := json.Unmarshal([]byte(ev.Data), &p); err != nil {
			t.Fatalf("event %s data %q: %v", ev.Event, ev.Data, err)
		}
		return ev.Event, p
	}
	if name, p := next(); name != "progress" || p.Status != "not_exist" {
		t.Fatalf("first event %s %+v, want progress not_exist", name, p)
	}

	// Shard's watchers get an update each time a MiB more has arrived
	// (updatingRate=1 MB): a chunk of a MiB, let go on each event, always
	// brings the next.
	const chunk, chunks = 1 << 20, 4
	data := pattern(chunk * chunks)
	up := startGatedUpload(t, c, e.proxy, "/h3-sse.bin", data, chunk)
	sent, last := int64(chunk), int64(0)
	for sent < int64(len(data)) {
		name, p := next()
		if name != "progress" || p.Status != "uploading" || p.Uploaded <= last || p.Uploaded > sent || p.TotalSize != int64(len(data)) {
			t.Fatalf("event %s %+v after %d bytes sent (the last event had %d), want uploading with more", name, p, sent, last)
		}
		last = p.Uploaded
		up.next()
		sent += chunk
	}
	if res := up.finish(t); res.err != nil || res.resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload over HTTP/3: %v %v %s", res.err, res.resp, res.body)
	}
	for {
		name, p := next()
		if name == "end" {
			if p.Status != "completed" || p.Uploaded != int64(len(data)) {
				t.Fatalf("end event %+v, want completed with %d bytes", p, len(data))
			}
			break
		}
		if name != "progress" || p.Uploaded < last {
			t.Fatalf("event %s %+v after the last chunk", name, p)
		}
		last = p.Uploaded
	}
	if e.storedSHA256("/h3-sse.bin") != sha256Hex(data) {
		t.Fatal("the origin stored different bytes")
	}
}
