package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// sseRetry is the reconnection delay, in milliseconds, that an event
// stream advises its EventSource.
const sseRetry = 2000

// acceptsEventStream reports whether a request at a watch endpoint asks
// for Server-Sent Events rather than a WebSocket.
func acceptsEventStream(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for t := range strings.SplitSeq(v, ",") {
			mediaType, _, _ := strings.Cut(t, ";")
			if strings.EqualFold(strings.TrimSpace(mediaType), "text/event-stream") {
				return true
			}
		}
	}
	return false
}

// serveEvents streams an upload's progress as Server-Sent Events: the
// same messages at the same pace as the WebSocket (follow), each an
// `event: progress` with an id one more than the last, the final state
// then again as `event: end`, and comment heartbeats every
// ping_interval.
//
// Over HTTP/1.1 the stream is detached from its request once its header
// is out (detachEventStream), as a WebSocket watcher is: it goes on on its
// connection, and the request, the server's goroutine and its buffers are
// freed. Over HTTP/2 and HTTP/3 a stream is one of its connection's, so it
// stays a response, written and flushed through http.ResponseController.
//
// A config reload does not end it: the zone's tracker goes on, and so do
// a detached stream and the old server's requests. The client going away
// ends it, as do the tracker closing and the process exiting: the stream
// then ends with a comment and no end event, so that the EventSource
// reconnects, after retry, to the server that takes over.
func (h *Handler) serveEvents(w http.ResponseWriter, r *http.Request, p *protocol) error {
	if r.Method != http.MethodGet {
		return h.refuseMethod(w, r, p, transportSSE, http.MethodGet)
	}
	wt, err := h.openWatch(w, r, p, transportSSE, nil)
	if wt == nil {
		return err
	}

	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no")
	if origin := r.Header.Get("Origin"); origin != "" && originAllowed(r, h.OriginPatterns) {
		// An EventSource of another origin reads the stream only if
		// CORS allows it; origin_patterns does, as for the WebSocket.
		hdr.Set("Access-Control-Allow-Origin", origin)
		hdr.Add("Vary", "Origin")
	}
	w.WriteHeader(http.StatusOK)
	statusRequests.WithLabelValues(h.Zone, p.name, transportSSE, "200").Inc()

	s := &eventStream{h: h, p: p, w: w, rc: http.NewResponseController(w), timeout: h.watcherTimeout, id: lastEventID(r)}
	switch conn, err := detachEventStream(w, r, s.rc); {
	case err != nil:
		wt.sub.Close()
		return nil // the connection broke as it was taken
	case conn != nil:
		first := h.firstState(wt)
		base := detachWatch(wt, r)
		s.w, s.rc, s.conn = nil, nil, conn
		if p.refresher == nil {
			h.feedStream(wt, s, first)
			return nil
		}
		ctx, drop := context.WithCancelCause(base)
		s.drop = drop
		go s.readClient()
		go h.streamDetached(ctx, wt, first, s)
		return nil
	}
	defer wt.sub.Close()

	// The request's context ends when the client goes away (or its
	// connection is closed); a reload does not cancel it. The handler's
	// pinger writes the heartbeats: the stream has no goroutine but the
	// request's.
	ctx, drop := context.WithCancelCause(r.Context())
	defer liveStreams.add(drop)()
	s.drop = drop
	h.pinger.addStream(s)
	// The response writer is not to be used once the handler returns.
	defer func() {
		h.pinger.removeStream(s)
		s.close(false)
		drop(nil)
	}()

	err = h.follow(ctx, wt, h.firstState(wt), s)
	if errors.Is(context.Cause(ctx), errServerExiting) {
		s.end(watchEnd{kind: endClosed})
		return nil
	}
	h.streamEnded(p, err, context.Cause(ctx))
	return nil
}

// streamDetached follows a detached stream's upload from its first event
// to its end, and closes its connection; ctx ends when the client goes
// away.
func (h *Handler) streamDetached(ctx context.Context, wt *watch, first progress.Snapshot, s *eventStream) {
	defer wt.sub.Close()
	h.pinger.addStream(s)
	err := h.follow(ctx, wt, first, s)
	h.pinger.removeStream(s)
	s.close(ctx.Err() == nil)
	s.drop(nil)
	h.streamEnded(wt.p, err, context.Cause(ctx))
}

// streamEnded counts a stream that ended for a write that took longer
// than watcher_timeout (the loop's error, or a heartbeat's, among errs).
func (h *Handler) streamEnded(p *protocol, errs ...error) {
	for _, err := range errs {
		if errors.Is(err, errWriteTimeout) {
			watchersDropped.WithLabelValues(h.Zone, p.name, errWriteTimeout.Error()).Inc()
			h.logger.Debug("event stream watcher dropped", zap.String("protocol", p.name), zap.String("reason", errWriteTimeout.Error()))
			return
		}
	}
}

// feedStream has the key's feed follow a detached stream's upload
// (feed.go); the stream has no goroutine of its own but its reader.
func (h *Handler) feedStream(wt *watch, s *eventStream, first progress.Snapshot) {
	w := newFedWatcher(wt.sub, streamFeed{s}, wt.sr.q.Step)
	s.drop = func(err error) { w.leave(err) }
	h.pinger.addStream(s)
	go s.readClient()
	h.startFed(w, refreshKey{wt.sr.owner, wt.sr.q.Key}, first)
}

// streamFeed is a fed watch over a detached event stream.
type streamFeed struct{ *eventStream }

// over implements fedTransport: the stream's connection closes, after the
// response's last chunk once its end was written.
func (s streamFeed) over(err error) {
	s.h.pinger.removeStream(s.eventStream)
	s.close(err == nil)
	s.h.streamEnded(s.p, err)
}

// lastEventID is the id of the last event a reconnecting EventSource
// got, so that the ids of the new stream go on growing from it; 0 if
// none (or not one of ours).
func lastEventID(r *http.Request) uint64 {
	id, err := strconv.ParseUint(r.Header.Get("Last-Event-ID"), 10, 64)
	if err != nil || id > 1<<53 {
		return 0
	}
	return id
}

// eventStream is a watch as Server-Sent Events. The watch's loop writes
// its events, the handler's pinger its heartbeats, one at a time.
type eventStream struct {
	h       *Handler
	p       *protocol
	timeout time.Duration
	drop    context.CancelCauseFunc
	// The stream goes out through its response (w, rc) or, once
	// detached, on its connection (conn), as chunks.
	w    http.ResponseWriter
	rc   *http.ResponseController
	conn net.Conn
	// lastBeat is the pinger's; id and retrySet the loop's.
	lastBeat time.Time
	id       uint64
	retrySet bool

	// mu serialises the writes; err is the first that failed.
	mu  sync.Mutex
	err error
}

// errStreamEnded is the error of a write to a stream whose request
// returned.
var errStreamEnded = errors.New("event stream ended")

// send implements watchSink: one progress event.
func (s *eventStream) send(_ context.Context, snap progress.Snapshot) error {
	data, err := s.h.frames.eventData(s.p, snap)
	if err != nil {
		return err
	}
	return s.event("progress", data)
}

// end implements watchSink. The final state is repeated as an end event
// (an EventSource drops an event without data); the origin's refusal of
// the session's credential is a refused event with the protocol's error
// reply; a server shutting down ends the stream with a comment only, so
// that the EventSource reconnects.
func (s *eventStream) end(e watchEnd) {
	switch e.kind {
	case endFinal:
		data, err := s.h.frames.eventData(s.p, e.snap)
		if err == nil && s.event("progress", data) == nil {
			_ = s.event("end", data)
		}
	case endRefused:
		_, body := s.p.Fail(&progress.Failure{Kind: progress.BadCredential, Message: e.reason})
		if b, err := json.Marshal(body); err == nil {
			_ = s.event("refused", eventData(b))
		}
	case endClosed:
		_ = s.write([]byte(": server shutting down\n\n"))
	}
}

// heartbeat writes a comment, which keeps the stream open through
// proxies and finds watchers that are gone; one that cannot be written
// within watcher_timeout ends the watch. The pinger calls it holding s.mu.
func (s *eventStream) heartbeat() {
	err := s.writeLocked(pingComment)
	s.mu.Unlock()
	if err != nil {
		s.drop(err)
	}
}

var pingComment = []byte(": ping\n\n")

// close waits for a heartbeat under way, and stops any other. A detached
// stream's connection is closed, after the response's last chunk when
// complete.
func (s *eventStream) close(complete bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		if complete && s.err == nil {
			s.conn.SetWriteDeadline(time.Now().Add(s.timeout))
			s.conn.Write(lastChunk)
		}
		s.conn.Close()
	}
	s.err = errStreamEnded
}

// event writes one event: its id, name and data, the `data:` lines of a
// message and the empty line that ends the event (eventData).
func (s *eventStream) event(name string, data []byte) error {
	b := make([]byte, 0, 64)
	if !s.retrySet {
		s.retrySet = true
		b = append(b, "retry: "+strconv.Itoa(sseRetry)+"\n"...)
	}
	s.id++
	b = append(b, "id: "...)
	b = strconv.AppendUint(b, s.id, 10)
	b = append(b, "\nevent: "+name+"\n"...)
	return s.write(b, data)
}

// eventData is the JSON message data as an event's `data:` lines and the
// empty line that ends the event. JSON has no line breaks but inside
// strings, where they are escaped; an origin's own object may have some
// between members.
func eventData(data []byte) []byte {
	b := make([]byte, 0, len(data)+8)
	for line := range strings.SplitSeq(string(data), "\n") {
		b = append(b, "data: "...)
		b = append(b, strings.TrimSuffix(line, "\r")...)
		b = append(b, '\n')
	}
	return append(b, '\n')
}

// write writes and flushes parts (writeLocked).
func (s *eventStream) write(parts ...[]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writeLocked(parts...)
}

// writeLocked writes and flushes parts, giving up after watcher_timeout
// so that a watcher that does not read cannot hold anything: the
// connection's write deadline ends the write, and the stream.
func (s *eventStream) writeLocked(parts ...[]byte) error {
	if s.err != nil {
		return s.err
	}
	start := time.Now()
	var err error
	if s.conn != nil {
		err = s.writeChunk(start.Add(s.timeout), parts)
	} else {
		err = s.writeResponse(start.Add(s.timeout), parts)
	}
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) >= s.timeout {
			err = errWriteTimeout
		}
		s.err = err
		return err
	}
	return nil
}

// writeResponse writes parts to the response and flushes them.
func (s *eventStream) writeResponse(deadline time.Time, parts [][]byte) error {
	// Where the connection has no deadlines, the write is not bounded.
	_ = s.rc.SetWriteDeadline(deadline)
	var err error
	for _, b := range parts {
		if _, err = s.w.Write(b); err != nil {
			break
		}
	}
	if err == nil {
		err = s.rc.Flush()
	}
	if err == nil {
		_ = s.rc.SetWriteDeadline(time.Time{})
	}
	return err
}

// errServerExiting ends the event streams of a process that exits.
var errServerExiting = errors.New("server exiting")

// liveStreams are the event streams being served. When the process
// exits, Caddy waits for every request to end before it cleans up the
// modules, which closes the trackers and so ends the streams: the streams
// must end first, or the exit would wait for them (a WebSocket, hijacked,
// is not waited for). A reload is no exit: its streams go on.
var liveStreams = &streamRegistry{exiting: caddy.Exiting, every: 250 * time.Millisecond}

// streamRegistry ends its streams once exiting says the process exits,
// looking every so often while it has any.
type streamRegistry struct {
	exiting func() bool
	every   time.Duration

	mu       sync.Mutex
	ends     map[*context.CancelCauseFunc]struct{}
	watching bool
}

// add registers a stream's end, and returns what unregisters it.
func (sr *streamRegistry) add(end context.CancelCauseFunc) (remove func()) {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	if sr.ends == nil {
		sr.ends = map[*context.CancelCauseFunc]struct{}{}
	}
	k := &end
	sr.ends[k] = struct{}{}
	if !sr.watching {
		sr.watching = true
		go sr.watchExit()
	}
	return func() {
		sr.mu.Lock()
		delete(sr.ends, k)
		sr.mu.Unlock()
	}
}

// watchExit ends every stream once the process exits; it returns when
// there is none left.
func (sr *streamRegistry) watchExit() {
	t := time.NewTicker(sr.every)
	defer t.Stop()
	for range t.C {
		sr.mu.Lock()
		if len(sr.ends) == 0 {
			sr.watching = false
			sr.mu.Unlock()
			return
		}
		if sr.exiting() {
			for end := range sr.ends {
				(*end)(errServerExiting)
			}
		}
		sr.mu.Unlock()
	}
}
