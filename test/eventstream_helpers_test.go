package test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// sseEvent is one event of an event stream, or one comment.
type sseEvent struct {
	id, event, data, comment, retry string
}

// sseStream is an EventSource's view of a stream: its events as they
// come, read in the background until the stream ends.
type sseStream struct {
	resp   *http.Response
	events chan sseEvent
	err    error // why the stream ended, once events is closed
}

// openSSE opens an event stream as an EventSource does (Accept:
// text/event-stream, hdr added), failing the test unless it is one. It is
// closed, and its reader ended, when the test ends.
func openSSE(t testing.TB, client *http.Client, url string, hdr http.Header) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	resp := sseRequest(t, ctx, client, url, hdr)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("event stream %s: %d %s %s", url, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	s := &sseStream{resp: resp, events: make(chan sseEvent, 1<<12)}
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

// sseRequest sends an EventSource's request.
func sseRequest(t testing.TB, ctx context.Context, client *http.Client, url string, hdr http.Header) *http.Response {
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

// sseRefused opens an event stream that must be refused, and returns the
// refusal's status and body.
func sseRefused(t testing.TB, client *http.Client, url string, hdr http.Header) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp := sseRequest(t, ctx, client, url, hdr)
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") == "text/event-stream" {
		t.Fatalf("event stream %s: a stream, want a refusal", url)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// read parses events until the stream ends.
func (s *sseStream) read(br *bufio.Reader) {
	defer close(s.events)
	var ev sseEvent
	var data []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			s.err = err
			return
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			ev.data = strings.Join(data, "\n")
			s.events <- ev
			ev, data = sseEvent{}, nil
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "":
			ev.comment = value
		case "id":
			ev.id = value
		case "event":
			ev.event = value
		case "data":
			data = append(data, value)
		case "retry":
			ev.retry = value
		}
	}
}

// next returns the next event (heartbeats skipped), failing the test if
// none comes within 30 s or the stream ends.
func (s *sseStream) next(t testing.TB) sseEvent {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatalf("the event stream ended: %v", s.err)
			}
			if ev.comment == "" {
				return ev
			}
		case <-timeout:
			t.Fatal("no event within 30 s")
		}
	}
}

// until returns the first event ok accepts, failing the test if the
// stream ends first, or after 60 s.
func (s *sseStream) until(t testing.TB, what string, ok func(sseEvent) bool) sseEvent {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ev := s.next(t)
		if ok(ev) {
			return ev
		}
		if time.Now().After(deadline) {
			t.Fatalf("no event %s within 60 s; last %+v", what, ev)
		}
	}
}

// ended checks that the server ends the stream after what was read,
// within 30 s, with nothing but heartbeats in between.
func (s *sseStream) ended(t testing.TB) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				if s.err != io.EOF {
					t.Errorf("the event stream ended with %v, want its end", s.err)
				}
				return
			}
			if ev.comment == "" {
				t.Fatalf("after the end event: %+v", ev)
			}
		case <-timeout:
			t.Fatal("the server did not end the stream within 30 s")
		}
	}
}

// watchTokenOf asks a status endpoint (url, with watch_token=1) for a
// watch token with the credential in hdr, failing the test unless the
// reply is 200 and has one; it returns the token and the reply.
func watchTokenOf(t testing.TB, client *http.Client, url string, hdr http.Header) (string, map[string]json.RawMessage) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var reply map[string]json.RawMessage
	var token string
	if json.Unmarshal(b, &reply) != nil || resp.StatusCode != 200 || json.Unmarshal(reply["watch_token"], &token) != nil || token == "" {
		t.Fatalf("asking %s for a watch token: %d %s", url, resp.StatusCode, b)
	}
	return token, reply
}

// getWith is a GET of url with hdr: the status and the body.
func getWith(t testing.TB, client *http.Client, url string, hdr http.Header) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// forged is a watch token with one character changed: the same length
// and alphabet, signed by nobody.
func forged(token string) string {
	i := len(token) / 2
	c := byte('A')
	if token[i] == 'A' {
		c = 'B'
	}
	return token[:i] + string(c) + token[i+1:]
}

// wsRefused dials a WebSocket that must be refused before the upgrade,
// and returns the refusal's status and body.
func wsRefused(t testing.TB, e *env, pathAndQuery string, hdr http.Header) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, resp, err := e.dialWS(ctx, pathAndQuery, hdr)
	if conn != nil {
		conn.CloseNow()
		t.Fatalf("%s: the handshake succeeded", pathAndQuery)
	}
	if resp == nil {
		t.Fatalf("%s: %v", pathAndQuery, err)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// wsFirst dials a WebSocket and returns its first message.
func wsFirst(t testing.TB, e *env, pathAndQuery string, hdr http.Header) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, _, err := e.dialWS(ctx, pathAndQuery, hdr)
	if err != nil {
		t.Fatalf("watching %s: %v", pathAndQuery, err)
	}
	defer conn.CloseNow()
	_, b, err := conn.Read(ctx)
	if err != nil {
		t.Fatalf("watching %s: %v", pathAndQuery, err)
	}
	conn.Close(websocket.StatusNormalClosure, "")
	return string(b)
}
