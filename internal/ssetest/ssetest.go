// Package ssetest reads event streams (Server-Sent Events) as an
// EventSource does, for the end-to-end tests of one proxy (test/) and of
// several (test/multinode).
package ssetest

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

// Event is one event of an event stream, or one comment.
type Event struct {
	ID, Event, Data, Comment, Retry string
}

// JSON decodes the event's data, nil unless it is a JSON object.
func (ev Event) JSON() map[string]any {
	var v map[string]any
	_ = json.Unmarshal([]byte(ev.Data), &v)
	return v
}

// Stream is an EventSource's view of a stream: its events as they come,
// read in the background until the stream ends.
type Stream struct {
	URL    string
	Resp   *http.Response
	Events chan Event
	Err    error // why the stream ended, once Events is closed
	// Within bounds the wait for each event and for the stream's end
	// (30 s unless set before the first wait); Until waits twice as long
	// for the event it looks for.
	Within time.Duration
}

// Open opens an event stream as an EventSource does (Accept:
// text/event-stream, hdr added), failing the test unless it is one. It is
// closed, and its reader ended, when the test ends.
func Open(t testing.TB, client *http.Client, url string, hdr http.Header) *Stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	resp := Request(t, ctx, client, url, hdr)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("event stream %s: %d %s %s", url, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	s := &Stream{URL: url, Resp: resp, Events: make(chan Event, 1<<12), Within: 30 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.read(bufio.NewReader(resp.Body))
	}()
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
		<-done
	})
	return s
}

// Request sends an EventSource's request.
func Request(t testing.TB, ctx context.Context, client *http.Client, url string, hdr http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("event stream %s: %v", url, err)
	}
	return resp
}

// Refused opens an event stream that must be refused, and returns the
// refusal's status and body.
func Refused(t testing.TB, client *http.Client, url string, hdr http.Header) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp := Request(t, ctx, client, url, hdr)
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") == "text/event-stream" {
		t.Fatalf("event stream %s: a stream, want a refusal", url)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// read parses events until the stream ends.
func (s *Stream) read(br *bufio.Reader) {
	defer close(s.Events)
	for {
		ev, err := ReadEvent(br)
		if err != nil {
			s.Err = err
			return
		}
		s.Events <- ev
	}
}

// ReadEvent reads the next event or comment of a stream from br, as far as
// the empty line that ends it; io.EOF at the stream's end.
func ReadEvent(br *bufio.Reader) (Event, error) {
	var ev Event
	var data []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			ev.Data = strings.Join(data, "\n")
			return ev, nil
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "":
			ev.Comment = value
		case "id":
			ev.ID = value
		case "event":
			ev.Event = value
		case "data":
			data = append(data, value)
		case "retry":
			ev.Retry = value
		}
	}
}

// Next returns the next event (heartbeats skipped), failing the test if
// none comes within s.Within or the stream ends.
func (s *Stream) Next(t testing.TB) Event {
	t.Helper()
	timer := time.NewTimer(s.Within)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-s.Events:
			if !ok {
				t.Fatalf("event stream %s ended: %v", s.URL, s.Err)
			}
			if ev.Comment == "" {
				return ev
			}
		case <-timer.C:
			t.Fatalf("event stream %s: no event within %v", s.URL, s.Within)
		}
	}
}

// Until returns the first event ok accepts, failing the test if the
// stream ends first, or after twice s.Within.
func (s *Stream) Until(t testing.TB, what string, ok func(Event) bool) Event {
	t.Helper()
	deadline := time.Now().Add(2 * s.Within)
	for {
		ev := s.Next(t)
		if ok(ev) {
			return ev
		}
		if time.Now().After(deadline) {
			t.Fatalf("event stream %s: no event %s within %v; last %+v", s.URL, what, 2*s.Within, ev)
		}
	}
}

// Ended checks that the server ends the stream after what was read,
// within s.Within, with nothing but heartbeats in between.
func (s *Stream) Ended(t testing.TB) {
	t.Helper()
	timer := time.NewTimer(s.Within)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-s.Events:
			if !ok {
				if s.Err != io.EOF {
					t.Errorf("event stream %s ended with %v, want its end", s.URL, s.Err)
				}
				return
			}
			if ev.Comment == "" {
				t.Fatalf("event stream %s: after the end, %+v", s.URL, ev)
			}
		case <-timer.C:
			t.Fatalf("event stream %s: not ended within %v", s.URL, s.Within)
		}
	}
}
