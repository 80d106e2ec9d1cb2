package test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// startFaultyOrigin serves handler on a loopback port until the test ends.
func startFaultyOrigin(t *testing.T, handler http.HandlerFunc) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// finalBound is how long after the event that ends an upload its record
// may take to show the end. The record ends with the event itself; the
// bound is generous so that a loaded machine (the race detector on two
// cores) cannot fail the test, while a record that never ends still does.
const finalBound = 15 * time.Second

// finalWithin waits for path's record to leave uploading, and fails the
// test unless it did within finalBound of since, the event that ends it.
func (e *env) finalWithin(path string, since time.Time) progressReply {
	e.t.Helper()
	for {
		p := e.status(path)
		if p.Status != "uploading" {
			return p
		}
		if took := time.Since(since); took > finalBound {
			e.t.Fatalf("%s still uploading %v after the event that ends it: %+v", path, took, p)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An origin that resets the connection in the middle of the body: the
// client gets 502 and the record fails at once, blaming the origin.
func TestOriginResetsMidBody(t *testing.T) {
	e := newEnv(t, "")
	const readBeforeReset = 256 << 10
	origin := startFaultyOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		io.CopyN(io.Discard, r.Body, readBeforeReset)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		conn.(*net.TCPConn).SetLinger(0) // close with RST
		conn.Close()
	})
	e.load("", origin)

	data := pattern(16 << 20)
	res := e.upload("/reset.bin", bytes.NewReader(data), int64(len(data)), "", nil)
	answered := time.Now()
	if res.err == nil && res.code != http.StatusBadGateway {
		t.Fatalf("client got %d %s, want 502 (or a reset of its own)", res.code, res.body)
	}
	p := e.finalWithin("/reset.bin", answered)
	if p.Status != "failed" || p.Error != "origin unreachable (502 Bad Gateway)" || p.Uploaded < readBeforeReset || p.Uploaded >= int64(len(data)) {
		t.Fatalf("after the origin reset: %+v", p)
	}
}

// An origin that takes the whole body and never answers: the record stays
// uploading while the client waits (the body is complete, the proxy waits
// too), and fails as soon as the client gives up.
func TestOriginStallsUntilTheClientGivesUp(t *testing.T) {
	// idle_timeout must not reap a complete body. It is long enough that a
	// client slowed by a loaded machine is not reaped mid-body either.
	e := newEnv(t, "idle_timeout 1s")
	release := make(chan struct{})
	defer close(release)
	origin := startFaultyOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		<-release
	})
	e.load("idle_timeout 1s", origin)

	data := pattern(1 << 20)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost,
		e.proxy+"/fso?path="+url.QueryEscape("/stall.bin")+"&informProgress=true", bytes.NewReader(data))
	req.Header.Set("x-user-api-key", apiKey)
	errc := make(chan error, 1)
	go func() {
		resp, err := e.client.Do(req)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("answered %d", resp.StatusCode)
		}
		errc <- err
	}()
	e.waitStatus("/stall.bin", func(p progressReply) bool { return p.Uploaded == int64(len(data)) })
	// Well past idle_timeout (the tracker looks every quarter of it), the
	// complete body still waits for its origin.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if p := e.status("/stall.bin"); p.Status != "uploading" {
			t.Fatalf("a complete body waiting for its origin was ended: %+v", p)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	gaveUp := time.Now()
	if err := <-errc; err == nil || ctx.Err() == nil {
		t.Fatalf("client: %v", err)
	}
	p := e.finalWithin("/stall.bin", gaveUp)
	want := fmt.Sprintf("client disconnected after %d bytes", len(data))
	if p.Status != "failed" || p.Error != want {
		t.Fatalf("after the client gave up: %+v, want failed %q", p, want)
	}
}

// An origin that stalls past the proxy's response_header_timeout: the
// client gets Caddy's 504 and the record fails with it at once.
func TestOriginStallsPastTheProxyTimeout(t *testing.T) {
	e := newEnv(t, "")
	release := make(chan struct{})
	defer close(release)
	origin := startFaultyOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		<-release
	})
	e.load("", origin+" {\n\t\ttransport http {\n\t\t\tresponse_header_timeout 300ms\n\t\t}\n\t}")

	data := pattern(1 << 20)
	res := e.upload("/slow-origin.bin", bytes.NewReader(data), int64(len(data)), "", nil)
	answered := time.Now()
	if res.err != nil || res.code != http.StatusGatewayTimeout {
		t.Fatalf("client got %d %s %v, want 504", res.code, res.body, res.err)
	}
	p := e.finalWithin("/slow-origin.bin", answered)
	if p.Status != "failed" || p.Error != "origin timed out (504 Gateway Timeout)" || p.Uploaded != int64(len(data)) {
		t.Fatalf("after the proxy timed out: %+v", p)
	}
}

// A client that goes away at any point of its body: the record fails
// at once with the exact count, and the origin keeps no partial
// file. Inside a chunk of a chunked body, Go's chunked reader returns only
// once it has filled the proxy's 32 KiB buffer or the chunk ends, so
// progress there moves in 32 KiB steps; the count at the end is exact.
func TestClientAbortsAtAnyPoint(t *testing.T) {
	e := newEnv(t, "")
	const size = 256 << 10
	for _, tc := range []struct {
		name    string
		chunked bool
		sent    int // body bytes the proxy gets before the client goes
		visible int // what progress shows before it goes
	}{
		{"before the first byte", false, 0, 0},
		{"after one byte", false, 1, 1},
		{"one byte short", false, size - 1, size - 1},
		{"chunked, before the first chunk", true, 0, 0},
		{"chunked, inside a chunk", true, 40000, 32 << 10},
		{"chunked, before the last chunk", true, size, size},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.forTest(t)
			path := fmt.Sprintf("/abort/%s.bin", url.PathEscape(tc.name))
			conn, err := net.Dial("tcp", e.proxy[len("http://"):])
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			framing := fmt.Sprintf("Content-Length: %d", size)
			if tc.chunked {
				framing = "Transfer-Encoding: chunked"
			}
			fmt.Fprintf(conn, "POST /fso?path=%s&informProgress=true HTTP/1.1\r\nHost: 127.0.0.1\r\nx-user-api-key: %s\r\n%s\r\n\r\n",
				url.QueryEscape(path), apiKey, framing)
			body := pattern(tc.sent)
			if tc.chunked {
				// One chunk announced for the whole body, cut where the
				// client goes; for "before the last chunk" the chunk is
				// whole and the terminating chunk never comes.
				announced := size
				if tc.sent == size {
					announced = tc.sent
				}
				if tc.sent > 0 {
					fmt.Fprintf(conn, "%x\r\n", announced)
				}
				conn.Write(body)
				if tc.sent == size {
					conn.Write([]byte("\r\n"))
				}
			} else {
				conn.Write(body)
			}
			e.waitStatus(path, func(p progressReply) bool { return p.Status == "uploading" && p.Uploaded == int64(tc.visible) })
			conn.Close()
			gone := time.Now()
			p := e.finalWithin(path, gone)
			want := fmt.Sprintf("client disconnected after %d bytes", tc.sent)
			if p.Status != "failed" || p.Error != want {
				t.Fatalf("%+v, want failed %q", p, want)
			}
			e.expectNoStoredFile(path)
		})
	}
}
