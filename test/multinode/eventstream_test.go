package multinode

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// sseEvent is one event of an event stream (heartbeat comments are not
// passed on).
type sseEvent struct {
	event string
	data  string
}

// json decodes the event's data.
func (ev sseEvent) json() map[string]any {
	var v map[string]any
	_ = json.Unmarshal([]byte(ev.data), &v)
	return v
}

// sseStream is an EventSource's view of a stream on a node: its events as
// they come, read in the background until the stream ends.
type sseStream struct {
	url    string
	events chan sseEvent
	err    error // why the stream ended, once events is closed
}

// openSSE opens an event stream at path on n as an EventSource does
// (Accept: text/event-stream, hdr added), failing the test unless it is
// one. It is closed, and its reader ended, when the test ends.
func openSSE(t *testing.T, n *caddyNode, path string, hdr http.Header) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.url+path, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("event stream %s%s: %v", n.url, path, err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("event stream %s%s: %d %s %s", n.url, path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	s := &sseStream{url: n.url + path, events: make(chan sseEvent, 1<<10)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.read(resp.Body)
	}()
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
		<-done
	})
	return s
}

// read parses events until the stream ends.
func (s *sseStream) read(body io.Reader) {
	defer close(s.events)
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var ev sseEvent
	var data []string
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if ev.event != "" || data != nil {
				ev.data = strings.Join(data, "\n")
				s.events <- ev
			}
			ev, data = sseEvent{}, nil
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			ev.event = value
		case "data":
			data = append(data, value)
		}
	}
	s.err = sc.Err()
	if s.err == nil {
		s.err = io.EOF
	}
}

// next returns the next event, failing the test if none comes within
// bounds or the stream ends.
func (s *sseStream) next(t *testing.T) sseEvent {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatalf("event stream %s ended: %v", s.url, s.err)
		}
		return ev
	case <-timer.C:
		t.Fatalf("event stream %s: no event within %v", s.url, within)
	}
	return sseEvent{}
}

// ended checks that the server ends the stream after what was read,
// within bounds.
func (s *sseStream) ended(t *testing.T) {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	select {
	case ev, ok := <-s.events:
		if ok {
			t.Fatalf("event stream %s: after the end, %+v", s.url, ev)
		}
		if s.err != io.EOF {
			t.Fatalf("event stream %s ended with %v, want its end", s.url, s.err)
		}
	case <-timer.C:
		t.Fatalf("event stream %s: not ended within %v", s.url, within)
	}
}
