package test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// A throttled 64 MiB upload watched by REST pollers and WebSocket watchers
// at once: progress only grows, reaches the size, ends completed, and the
// origin stores a byte-identical file.
func TestLargeUploadWatchedByPollersAndWatchers(t *testing.T) {
	e := newEnv(t, "")
	const size = 64 << 20
	data := pattern(size)
	path := "/files/large.bin"

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Watchers connect before the upload: they see not_exist, then stream it.
	var watchers []*watcher
	for _, ws := range []struct{ path, query string }{
		{"/ws/progress", ""},
		{"/progress/ws", ""},
		{"/ws/progress", "updatingRate=8&unitOfMeasurement=MB"},
	} {
		w, err := e.watch(ctx, ws.path, path, ws.query)
		if err != nil {
			t.Fatal(err)
		}
		if first := w.next(t); first.Status != "not_exist" {
			t.Fatalf("first message before the upload = %+v, want not_exist", first)
		}
		watchers = append(watchers, w)
	}

	done := e.asyncUpload(path, &pacedReader{r: bytes.NewReader(data), chunk: 256 << 10, pause: 2 * time.Millisecond}, size, "", nil)

	var polls sync.WaitGroup
	pollErrs := make(chan error, 3)
	for range 3 {
		polls.Add(1)
		go func() {
			defer polls.Done()
			last := int64(-1)
			sawUploading := false
			for {
				code, p, body := e.progress(path, apiKey)
				if code != 200 {
					pollErrs <- fmt.Errorf("poll: %d %s", code, body)
					return
				}
				if p.Uploaded < last {
					pollErrs <- fmt.Errorf("uploaded went back from %d to %d", last, p.Uploaded)
					return
				}
				last = p.Uploaded
				switch p.Status {
				case "uploading":
					sawUploading = true
					if p.TotalSize != size {
						pollErrs <- fmt.Errorf("total_size = %d while uploading, want %d", p.TotalSize, size)
						return
					}
				case "completed":
					if !sawUploading {
						pollErrs <- fmt.Errorf("poller never saw the upload in progress")
					}
					if p.Uploaded != size || p.TotalSize != size {
						pollErrs <- fmt.Errorf("completed with %d/%d, want %d", p.Uploaded, p.TotalSize, size)
					}
					return
				case "not_exist":
				default:
					pollErrs <- fmt.Errorf("unexpected status %+v", p)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}

	res := <-done
	if res.err != nil || res.code != http.StatusCreated {
		t.Fatalf("upload: %d %s %v", res.code, res.body, res.err)
	}
	polls.Wait()
	close(pollErrs)
	for err := range pollErrs {
		t.Error(err)
	}
	if got, want := e.storedSHA256(path), sha256Hex(data); got != want {
		t.Fatalf("origin stored sha256 %s, sent %s", got, want)
	}

	for i, w := range watchers {
		msgs := w.all(t)
		if w.close.Code != websocket.StatusNormalClosure {
			t.Errorf("watcher %d closed with %v (%v), want a normal closure", i, w.close, w.err)
		}
		if len(msgs) < 3 {
			t.Fatalf("watcher %d got %d messages: %+v", i, len(msgs), msgs)
		}
		last := msgs[len(msgs)-1]
		if last.Status != "completed" || last.Uploaded != size || last.TotalSize != size {
			t.Errorf("watcher %d last message %+v, want completed %d/%d", i, last, size, size)
		}
		prev := int64(0)
		step := int64(1 << 20)
		if i == 2 {
			step = 8 << 20
		}
		for j, m := range msgs[:len(msgs)-1] {
			if m.Uploaded < prev {
				t.Fatalf("watcher %d: uploaded went back at message %d: %+v", i, j, msgs)
			}
			if m.Status == "uploading" && j > 0 && m.Uploaded-prev < step {
				t.Fatalf("watcher %d: update after %d bytes, asked for every %d", i, m.Uploaded-prev, step)
			}
			prev = m.Uploaded
		}
		if max := size/step + 3; int64(len(msgs)) > max {
			t.Errorf("watcher %d got %d messages, more than %d for a step of %d", i, len(msgs), max, step)
		}
	}
}

// An upload without Content-Length reports total_size -1 while it runs.
func TestChunkedUploadReportsUnknownTotal(t *testing.T) {
	e := newEnv(t, "")
	pr, pw := io.Pipe()
	done := e.asyncUpload("/chunked.bin", pr, -1, "", nil)
	first := pattern(300 << 10)
	if _, err := pw.Write(first); err != nil {
		t.Fatal(err)
	}
	p := e.waitStatus("/chunked.bin", func(p progressReply) bool { return p.Uploaded >= int64(len(first)) })
	if p.Status != "uploading" || p.TotalSize != -1 {
		t.Fatalf("while uploading chunked: %+v, want uploading with total_size -1", p)
	}
	pw.Write(first)
	pw.Close()
	if res := <-done; res.code != http.StatusCreated {
		t.Fatalf("upload: %d %s %v", res.code, res.body, res.err)
	}
	p = e.status("/chunked.bin")
	if p.Status != "completed" || p.Uploaded != int64(2*len(first)) {
		t.Fatalf("after chunked upload: %+v", p)
	}
}

// The origin's refusal is the upload's outcome: 409 without overwrite, and
// a re-upload with overwrite=true replaces the record.
func TestOriginConflictAndOverwrite(t *testing.T) {
	e := newEnv(t, "")
	data := pattern(100 << 10)
	if res := e.upload("/dup.bin", bytes.NewReader(data), int64(len(data)), "", nil); res.code != 201 {
		t.Fatalf("first upload: %d %s", res.code, res.body)
	}
	res := e.upload("/dup.bin", bytes.NewReader(data), int64(len(data)), "", nil)
	if res.code != http.StatusConflict {
		t.Fatalf("second upload without overwrite: %d %s, want 409", res.code, res.body)
	}
	p := e.status("/dup.bin")
	if p.Status != "failed" || p.Error != "origin responded 409 Conflict" {
		t.Fatalf("after 409: %+v", p)
	}
	other := pattern(50 << 10)
	if res := e.upload("/dup.bin", bytes.NewReader(other), int64(len(other)), "overwrite=true", nil); res.code != 201 {
		t.Fatalf("overwrite: %d %s", res.code, res.body)
	}
	p = e.status("/dup.bin")
	if p.Status != "completed" || p.Uploaded != int64(len(other)) || p.TotalSize != int64(len(other)) || p.Error != "" {
		t.Fatalf("after overwrite: %+v", p)
	}
	if e.storedSHA256("/dup.bin") != sha256Hex(other) {
		t.Fatal("origin did not store the overwritten file")
	}
}

func TestOriginServerError(t *testing.T) {
	e := newEnv(t, "")
	data := pattern(10 << 10)
	res := e.upload("/boom.bin", bytes.NewReader(data), int64(len(data)), "", http.Header{"X-Origin-Fail": {"500"}})
	if res.code != 500 {
		t.Fatalf("upload: %d %s, want the origin's 500", res.code, res.body)
	}
	p := e.status("/boom.bin")
	if p.Status != "failed" || p.Error != "origin responded 500 Internal Server Error" || p.Uploaded != int64(len(data)) {
		t.Fatalf("after origin 500: %+v", p)
	}
}

func TestOriginDown(t *testing.T) {
	e := newEnv(t, "")
	e.load("", "127.0.0.1:"+freePort(t)) // nothing listens there
	data := pattern(10 << 10)
	res := e.upload("/down.bin", bytes.NewReader(data), int64(len(data)), "", nil)
	if res.code != http.StatusBadGateway {
		t.Fatalf("upload to a dead origin: %d %s %v, want 502", res.code, res.body, res.err)
	}
	p := e.status("/down.bin")
	if p.Status != "failed" || p.Error != "origin unreachable (502 Bad Gateway)" {
		t.Fatalf("after dead origin: %+v", p)
	}
}

// A client that goes away mid-body fails the upload with the count it
// reached, and the origin keeps nothing.
func TestClientAbortMidBody(t *testing.T) {
	e := newEnv(t, "")
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.proxy, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	const sent = 200 << 10
	fmt.Fprintf(conn, "POST /fso?path=/abort.bin&informProgress=true HTTP/1.1\r\nHost: 127.0.0.1\r\nx-user-api-key: %s\r\nContent-Length: %d\r\n\r\n", apiKey, 1<<20)
	conn.Write(pattern(sent))
	e.waitStatus("/abort.bin", func(p progressReply) bool { return p.Uploaded == sent })
	conn.Close()
	p := e.waitStatus("/abort.bin", func(p progressReply) bool { return p.Status != "uploading" })
	want := fmt.Sprintf("client disconnected after %d bytes", sent)
	if p.Status != "failed" || p.Error != want || p.TotalSize != 1<<20 {
		t.Fatalf("after client abort: %+v, want failed %q", p, want)
	}
	e.expectNoStoredFile("/abort.bin")
}

// Status requests: credentials, validation, and owners' records kept apart.
func TestStatusRequestErrorsAndOwnership(t *testing.T) {
	e := newEnv(t, "")
	data := pattern(10 << 10)
	if res := e.upload("/mine.bin", bytes.NewReader(data), int64(len(data)), "", nil); res.code != 201 {
		t.Fatalf("upload: %d %s", res.code, res.body)
	}
	cases := []struct {
		name, query, key string
		code             int
		err              string
	}{
		{"no key", "path=/mine.bin", "", 401, "missing x-user-api-key header"},
		{"no path", "", apiKey, 400, "missing query parameter: path"},
		{"relative path", "path=mine.bin", apiKey, 400, "path must start with /"},
		{"bad rate", "path=/mine.bin&updatingRate=-1", apiKey, 400, "updatingRate must be a whole number from 1 to 1048576"},
		{"bad unit", "path=/mine.bin&unitOfMeasurement=KB", apiKey, 400, "unitOfMeasurement must be MB or GB"},
		{"nul in path", "path=/a%00b", apiKey, 400, "path contains a control character"},
		{"invalid UTF-8", "path=/a%FFb", apiKey, 400, "path is not valid UTF-8"},
		{"key over 4096 bytes", "path=/" + strings.Repeat("k", 5000), apiKey, 400, "path is longer than 4096 bytes"},
		{"repeated path", "path=/a&path=/b", apiKey, 400, "query parameter path is given more than once"},
		{"zero rate", "path=/mine.bin&updatingRate=0", apiKey, 400, "updatingRate must be a whole number from 1 to 1048576"},
		{"huge rate", "path=/mine.bin&updatingRate=99999999999999999999", apiKey, 400, "updatingRate must be a whole number from 1 to 1048576"},
	}
	for _, c := range cases {
		req, _ := http.NewRequest("GET", e.proxy+"/progress?"+c.query, nil)
		if c.key != "" {
			req.Header.Set("x-user-api-key", c.key)
		}
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := fmt.Sprintf(`{"error":%q}`, c.err)
		if resp.StatusCode != c.code || strings.TrimSpace(string(body)) != want || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %s (%s), want %d %s", c.name, resp.StatusCode, body, resp.Header.Get("Content-Type"), c.code, want)
		}
	}
	// A traversal is just a key nobody uploaded; a thousand unknown
	// parameters are ignored; a 1 MiB query is refused by the HTTP server
	// before it reaches the handler.
	many := "path=/../../etc/passwd"
	for i := range 1000 {
		many += fmt.Sprintf("&p%d=%d", i, i)
	}
	if code, p, body := e.progress("/../../etc/passwd", apiKey); code != 200 || p.Status != "not_exist" {
		t.Errorf("traversal key: %d %s", code, body)
	}
	for q, want := range map[string]int{many: 200, "path=/" + strings.Repeat("k", 1<<20): http.StatusRequestHeaderFieldsTooLarge} {
		req, _ := http.NewRequest("GET", e.proxy+"/progress?"+q, nil)
		req.Header.Set("x-user-api-key", apiKey)
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%d-byte query: %d %.200s, want %d", len(q), resp.StatusCode, body, want)
		}
	}

	// Another credential sees exactly what a never-used path shows.
	_, other, otherBody := e.progress("/mine.bin", "other-key")
	_, never, neverBody := e.progress("/never.bin", apiKey)
	if other.Status != "not_exist" || otherBody != neverBody {
		t.Fatalf("another owner sees %s, a never-used path shows %s (%+v)", otherBody, neverBody, never)
	}
	if want := `{"total_size":0,"uploaded":0,"status":"not_exist","error":""}` + "\n"; neverBody != want {
		t.Fatalf("not_exist reply = %q, want %q", neverBody, want)
	}
	if p := e.status("/mine.bin"); p.Status != "completed" || p.Uploaded != int64(len(data)) {
		t.Fatalf("owner sees %+v", p)
	}
}

// A seed-style client closes on not_exist and reconnects; it must still
// get the upload once it starts.
func TestReconnectingWatcherLikeTheSeedClients(t *testing.T) {
	e := newEnv(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := e.watch(ctx, "/progress/ws", "/late.bin", "")
	if err != nil {
		t.Fatal(err)
	}
	if p := w.next(t); p.Status != "not_exist" {
		t.Fatalf("first message %+v", p)
	}
	w.c.Close(websocket.StatusNormalClosure, "")

	pr, pw := io.Pipe()
	done := e.asyncUpload("/late.bin", pr, 3<<20, "", nil)
	pw.Write(pattern(1 << 20))
	// The client reconnects once the upload has started, as the seed
	// clients do when they learn of it.
	e.waitStatus("/late.bin", func(p progressReply) bool { return p.Uploaded == 1<<20 })
	w, err = e.watch(ctx, "/progress/ws", "/late.bin", "")
	if err != nil {
		t.Fatal(err)
	}
	if p := w.next(t); p.Status != "uploading" || p.TotalSize != 3<<20 {
		t.Fatalf("after reconnecting: %+v", p)
	}
	pw.Write(pattern(2 << 20))
	pw.Close()
	if res := <-done; res.code != 201 {
		t.Fatalf("upload: %d %s", res.code, res.body)
	}
	msgs := w.all(t)
	if last := msgs[len(msgs)-1]; last.Status != "completed" || last.Uploaded != 3<<20 {
		t.Fatalf("last message %+v", last)
	}
}
