package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/ssetest"
)

// A pCloud upload watched by a page that holds only a watch token: the
// token comes with uploadprogress (asked with auth and watch_token=1);
// with it alone, uploadprogress/ws streams events from the bytes so far
// to the end event, and uploadprogress answers. A forged token is refused
// as pCloud refuses a login: HTTP 200 with result 2000, before any stream
// or upgrade (an EventSource takes no JSON for a stream, and fails).
func TestWatchTokenPcloud(t *testing.T) {
	e := newEnv(t, "")
	e.load("protocol pcloud", pcloudOrigin(t))
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", "big.bin")
	fw.Write(pattern(3 << 20))
	mw.Close()
	all := body.Bytes()

	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.CloseWithError(io.ErrUnexpectedEOF) })
	req, _ := http.NewRequest("POST", e.proxy+"/uploadfile?progresshash=tok-1&auth=tok", pr)
	req.ContentLength = int64(len(all))
	req.Header.Set("Content-Type", mw.FormDataContentType())
	done := make(chan error, 1)
	go func() {
		resp, err := e.client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		done <- err
	}()
	const first = 1 << 20
	if _, err := pw.Write(all[:first]); err != nil {
		t.Fatal(err)
	}
	// Polled until the proxy shows the bytes sent (not found before the
	// request arrives).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		p, _ := e.pcloudProgress("progresshash=tok-1&auth=tok")
		if p.Result == 0 && p.Uploaded == first {
			break
		}
		if p.Finished || p.Uploaded > first || time.Now().After(deadline) {
			t.Fatalf("while uploading: %+v", p)
		}
	}
	token, reply := watchTokenOf(t, e.client, e.proxy+"/uploadprogress?progresshash=tok-1&auth=tok&watch_token=1", nil)
	if string(reply["uploaded"]) != fmt.Sprint(first) {
		t.Fatalf("uploadprogress with the token: %v", reply)
	}
	s := ssetest.Open(t, e.client, e.proxy+"/uploadprogress/ws?progresshash=tok-1&watch_token="+token, nil)
	var p pcloudReply
	if ev := s.Next(t); json.Unmarshal([]byte(ev.Data), &p) != nil || p.Uploaded != first || p.Finished {
		t.Fatalf("first event %+v", ev)
	}
	if code, body := getWith(t, e.client, e.proxy+"/uploadprogress?progresshash=tok-1&watch_token="+token, nil); code != 200 ||
		json.Unmarshal([]byte(body), &p) != nil || p.Uploaded != first {
		t.Errorf("uploadprogress with the token: %d %s", code, body)
	}
	want := `{"result":2000,"error":"watch_token is not valid for this upload"}`
	if code, body := ssetest.Refused(t, e.client, e.proxy+"/uploadprogress/ws?progresshash=tok-1&watch_token="+forged(token), nil); code != 200 || body != want {
		t.Errorf("forged token, event stream: %d %s, want 200 %s", code, body, want)
	}
	if code, body := wsRefused(t, e, "/uploadprogress/ws?progresshash=tok-1&watch_token="+forged(token), nil); code != 200 || body != want {
		t.Errorf("forged token, WebSocket: %d %s, want 200 %s", code, body, want)
	}

	if _, err := pw.Write(all[first:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	end := s.Until(t, "end", func(ev ssetest.Event) bool { return ev.Event == "end" })
	if json.Unmarshal([]byte(end.Data), &p) != nil || !p.Finished || p.Uploaded != int64(len(all)) || len(p.Files) != 1 {
		t.Errorf("end event %s", end.Data)
	}
	s.Ended(t)
}

// tus is ownerless: its event stream needs no token, and a status request
// asking for one gets none.
func TestEventStreamTus(t *testing.T) {
	_, e, c := startTusdBehindCaddy(t, "protocol tus")
	const size = 4 << 20
	src := pattern(size)
	up := c.create(map[string]string{"Upload-Length": fmt.Sprint(size)})
	if code, body := getWith(t, e.client, e.proxy+"/tus/progress?watch_token=1&upload="+url.QueryEscape(up), nil); code != 200 || bytes.Contains([]byte(body), []byte("watch_token")) {
		t.Errorf("asking an ownerless protocol for a token: %d %s", code, body)
	}
	s := ssetest.Open(t, e.client, e.proxy+"/tus/progress/ws?upload="+url.QueryEscape(up), nil)
	var r tusReply
	if ev := s.Next(t); json.Unmarshal([]byte(ev.Data), &r) != nil || r.Status != "created" {
		t.Fatalf("first event %+v", ev)
	}
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.CloseWithError(io.ErrUnexpectedEOF) })
	done := make(chan error, 1)
	go func() {
		code, off, err := c.patch(context.Background(), up, 0, pr, size, nil)
		if err == nil && (code != 204 || off != size) {
			err = fmt.Errorf("PATCH answered %d, offset %d", code, off)
		}
		done <- err
	}()
	if _, err := pw.Write(src[:size/2]); err != nil {
		t.Fatal(err)
	}
	s.Until(t, "halfway", func(ev ssetest.Event) bool {
		return json.Unmarshal([]byte(ev.Data), &r) == nil && r.Status == "uploading" && r.Received >= size/2
	})
	if _, err := pw.Write(src[size/2:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	end := s.Until(t, "end", func(ev ssetest.Event) bool { return ev.Event == "end" })
	if json.Unmarshal([]byte(end.Data), &r) != nil || r.Status != "completed" || r.Offset != size {
		t.Errorf("end event %s", end.Data)
	}
	s.Ended(t)
}

// nginx's API has no watch endpoint of its own; one configured
// (websocket_path) serves event streams too, without a token (the
// protocol is ownerless).
func TestEventStreamNginx(t *testing.T) {
	e := newEnv(t, "protocol nginx {\n\t\twebsocket_path /progress/ws\n\t}")
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.CloseWithError(io.ErrUnexpectedEOF) })
	done := e.asyncUpload("/nginx-sse.bin", pr, 2<<20, "", http.Header{"X-Progress-Id": {"sse1"}})
	s := ssetest.Open(t, e.client, e.proxy+"/progress/ws?X-Progress-ID=sse1", nil)
	if ev := s.Next(t); ev.Event != "progress" {
		t.Fatalf("first event %+v", ev)
	}
	if _, err := pw.Write(pattern(1 << 20)); err != nil {
		t.Fatal(err)
	}
	s.Until(t, "halfway", func(ev ssetest.Event) bool {
		return ev.Data == `{"state":"uploading","received":1048576,"size":2097152}`
	})
	if _, err := pw.Write(pattern(1 << 20)); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if r := <-done; r.err != nil {
		t.Fatal(r.err)
	}
	if end := s.Until(t, "end", func(ev ssetest.Event) bool { return ev.Event == "end" }); end.Data != `{"state":"done"}` {
		t.Errorf("end event %s", end.Data)
	}
	s.Ended(t)
}
