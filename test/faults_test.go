package test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// A body over request_body's max_size fails the upload with the limit as
// its reason; the client gets 413.
func TestRequestBodyMaxSize(t *testing.T) {
	e := newEnvWith(t, "", "request_body {\n\t\tmax_size 100KB\n\t}", false)
	data := pattern(300 << 10)
	res := e.upload("/too-big.bin", bytes.NewReader(data), -1, "", nil)
	if res.err == nil && res.code != http.StatusRequestEntityTooLarge {
		t.Fatalf("upload over max_size: %d %s, want 413", res.code, res.body)
	}
	p := e.waitStatus("/too-big.bin", func(p progressReply) bool { return p.Status != "uploading" })
	if p.Status != "failed" || p.Error != "request body exceeded the 100000 byte limit" {
		t.Fatalf("after max_size: %+v", p)
	}
}

// Expect: 100-continue uploads go through whole and complete.
func TestExpectContinue(t *testing.T) {
	e := newEnv(t, "")
	e.client.Transport = &http.Transport{ExpectContinueTimeout: 5 * time.Second}
	data := pattern(2 << 20)
	res := e.upload("/continue.bin", bytes.NewReader(data), int64(len(data)), "", http.Header{"Expect": {"100-continue"}})
	if res.code != http.StatusCreated {
		t.Fatalf("upload with Expect: 100-continue: %d %s %v", res.code, res.body, res.err)
	}
	if p := e.status("/continue.bin"); p.Status != "completed" || p.Uploaded != int64(len(data)) {
		t.Fatalf("after the upload: %+v", p)
	}
	if e.storedSHA256("/continue.bin") != sha256Hex(data) {
		t.Fatal("origin stored different bytes")
	}
}

// An origin that refuses early, without reading the body, fails the
// upload with its status, whatever the client then sees.
func TestOriginEarly413(t *testing.T) {
	e := newEnv(t, "")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		http.Error(w, `{"error":"too large"}`, http.StatusRequestEntityTooLarge)
	})}
	go srv.Serve(l)
	defer srv.Close()
	e.load("", l.Addr().String())
	data := pattern(8 << 20)
	res := e.upload("/early.bin", bytes.NewReader(data), int64(len(data)), "", nil)
	if res.err == nil && res.code != http.StatusRequestEntityTooLarge {
		t.Fatalf("client got %d %s, want the origin's 413 or a reset", res.code, res.body)
	}
	p := e.waitStatus("/early.bin", func(p progressReply) bool { return p.Status != "uploading" })
	if p.Status != "failed" || p.Error != "origin responded 413 Request Entity Too Large" {
		t.Fatalf("after an early 413: %+v", p)
	}
}

// Over HTTP/2 with TLS, progress is what has arrived, not the whole size
// from the start (the bug nginx's module had).
func TestHTTP2ProgressIsReal(t *testing.T) {
	e := newEnvWith(t, "", "tls internal", true)
	pr, pw := io.Pipe()
	const size = 4 << 20
	req, _ := http.NewRequest("POST", e.proxy+"/fso?path=/h2.bin&informProgress=true", pr)
	req.ContentLength = size
	req.Header.Set("x-user-api-key", apiKey)
	done := make(chan *http.Response, 1)
	go func() {
		resp, err := e.client.Do(req)
		if err != nil {
			t.Error(err)
		}
		done <- resp
	}()
	data := pattern(size)
	pw.Write(data[:1<<20])
	p := e.waitStatus("/h2.bin", func(p progressReply) bool { return p.Uploaded >= 1<<20 })
	if p.Status != "uploading" || p.Uploaded != 1<<20 || p.TotalSize != size {
		t.Fatalf("mid-upload over HTTP/2: %+v, want 1 MiB of 4 MiB", p)
	}
	pw.Write(data[1<<20:])
	pw.Close()
	resp := <-done
	if resp == nil {
		t.Fatal("no response")
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %s %d, want HTTP/2 201", resp.Proto, resp.StatusCode)
	}
	if p := e.status("/h2.bin"); p.Status != "completed" || p.Uploaded != size {
		t.Fatalf("after the upload: %+v", p)
	}
	if e.storedSHA256("/h2.bin") != sha256Hex(data) {
		t.Fatal("origin stored different bytes")
	}
}
