package caddymodule

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"time"
)

// An HTTP/1.1 event stream is detached from its request once its header
// is out: its connection is taken from the server (beneath Caddy's
// recorders, as a WebSocket's is), the request returns, and the stream
// goes on as chunks of the response the server began. The server's
// goroutine (with the handler chain's deep stack), its buffers and the
// request's state are then freed, and the stream holds what a WebSocket
// watcher holds: its connection, a reader goroutine that notices the
// client leaving, and the watch's loop (docs/performance.md, W10).

// lastChunk ends a chunked response.
var lastChunk = []byte("0\r\n\r\n")

// detachEventStream flushes the stream's header and, over HTTP/1.1,
// takes its connection from the server: the header is on the wire, and
// what follows is the response's chunked body. It returns no connection
// where the stream stays a response (HTTP/2, HTTP/3, HTTP/1.0, a writer
// that cannot be taken, or a response whose body the server would not
// chunk), and an error if the connection broke as it was taken.
func detachEventStream(w http.ResponseWriter, r *http.Request, rc *http.ResponseController) (net.Conn, error) {
	root := rootWriter(w)
	hj, ok := root.(http.Hijacker)
	if !ok || r.ProtoMajor != 1 || r.ProtoMinor < 1 {
		return nil, nil
	}
	if err := rc.Flush(); err != nil {
		return nil, nil
	}
	// The server chunks a body with no length of its own; a
	// Content-Encoding would be another writer's, encoding the body.
	for _, name := range []string{"Content-Length", "Transfer-Encoding", "Content-Encoding"} {
		if root.Header().Get(name) != "" {
			return nil, nil
		}
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil
	}
	if err := brw.Writer.Flush(); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// detachWatch readies a watch to outlive its request, and returns the
// context it starts from. The request's own context is not used: a config
// reload must not end a watcher whose upload goes on (the tracker closing
// does). Only a protocol that asks its origin about watched sessions
// keeps the request, whose credentials it forwards.
func detachWatch(wt *watch, r *http.Request) context.Context {
	if wt.p.refresher == nil {
		wt.r = nil
		return context.Background()
	}
	ctx := context.WithoutCancel(r.Context())
	wt.r = r.Clone(ctx)
	return ctx
}

// writeChunk writes parts as one chunk of the response, by deadline.
func (s *eventStream) writeChunk(deadline time.Time, parts [][]byte) error {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, 0, n+20)
	b = strconv.AppendUint(b, uint64(n), 16)
	b = append(b, "\r\n"...)
	for _, p := range parts {
		b = append(b, p...)
	}
	b = append(b, "\r\n"...)
	s.conn.SetWriteDeadline(deadline)
	_, err := s.conn.Write(b)
	return err
}

// readClient reads what the client of a detached stream sends, which is
// nothing, until its connection ends: then the watch ends.
func (s *eventStream) readClient() {
	buf := make([]byte, 64)
	for {
		if _, err := s.conn.Read(buf); err != nil {
			s.drop(errWatcherGone)
			return
		}
	}
}
