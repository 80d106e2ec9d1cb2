package sandbox

import (
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/protocoltest"
)

// ascii is n bytes of a part.
func ascii(n int) string { return strings.Repeat("p", n) }

// partOf is the path of part n of u1.
func partOf(n string) string { return up + "/parts/" + n }

// created makes the session u1 for alice through the proxy.
func (p *proxy) created() {
	p.T.Helper()
	p.Send("POST", create, createBody, answered(http.StatusCreated, object("created", 0, 1)), alice...)
}

func TestExchangeCreate(t *testing.T) {
	p := newProxy(t, `{"name":"sandbox"}`)
	p.created()
	// The session is the answer's upload_id: its status answer is
	// overlaid, and it can be watched at its own URL.
	p.want(object("created", 0, 1), overlaid(object("created", 0, 1), "created", "", 0, "[]"), alice...)
	w := p.watch(ws, alice...)
	if got, want := w.Next(), overlaid(object("created", 0, 1), "created", "", 0, "[]"); got != want {
		t.Errorf("the watcher's first message\n got  %s\n want %s", got, want)
	}
}

func TestExchangeCreateNotCreated(t *testing.T) {
	p := newProxy(t, `{"name":"sandbox"}`)
	// Refused, or created with no session object to follow.
	p.Send("POST", create, createBody, answered(http.StatusConflict, errorBody("conflict", "target exists")), alice...)
	p.Send("POST", create, createBody, answered(http.StatusOK, object("created", 0, 1)), alice...)
	p.Send("POST", create, createBody, answered(http.StatusCreated, `<html>created</html>`), alice...)
	p.Send("POST", create, createBody, answered(http.StatusCreated, `{"upload_id":""}`), alice...)
	// Without a token, the proxy has nobody to bind it to.
	p.Send("POST", create, createBody, answered(http.StatusCreated, object("created", 0, 1)))
	if code, got := p.refused(ws, alice...); code != http.StatusNotFound {
		t.Errorf("a watcher of a session never created: %d %s, want 404", code, got)
	}
	// Its status answers pass as the origin sent them.
	p.Send("GET", up, "", answered(http.StatusOK, object("created", 0, 1)), alice...)
}

func TestExchangePartsLive(t *testing.T) {
	p := newProxy(t, `{"name":"sandbox"}`)
	p.created()

	// Part 1 streams where the origin still says created: uploading.
	release := p.Streaming("PUT", partOf("1"), ascii(10), 4, answered(http.StatusOK, object("uploading", 10, 2)), alice...)
	p.want(object("created", 0, 1), overlaid(object("created", 0, 1), "uploading", lastByteTime, 4, `[{"part_number":1,"received":4,"size":10}]`), alice...)
	release()
	// Accepted: counted as received, no longer in flight.
	p.want(object("uploading", 10, 2), overlaid(object("uploading", 10, 2), "uploading", lastByteTime, 10, "[]"), alice...)

	// Two parts at once.
	release3 := p.Streaming("PUT", partOf("3"), ascii(10), 7, answered(http.StatusOK, object("uploading", 20, 2)), alice...)
	release2 := p.Streaming("PUT", partOf("2"), ascii(10), 2, answered(http.StatusOK, object("uploading", 30, 4)), alice...)
	p.want(object("uploading", 10, 2), overlaid(object("uploading", 10, 2), "uploading", lastByteTime, 19,
		`[{"part_number":2,"received":2,"size":10},{"part_number":3,"received":7,"size":10}]`), alice...)
	release3()
	release2()
	p.Send("PUT", partOf("4"), ascii(10), answered(http.StatusOK, object("staged", 40, 0)), alice...)
	p.want(object("staged", 40, 0), overlaid(object("staged", 40, 0), "staged", lastByteTime, 40, "[]"), alice...)
}

func TestExchangePartWithoutLength(t *testing.T) {
	p := newProxy(t, `{"name":"sandbox"}`)
	p.created()
	r := protocoltest.Request("PUT", partOf("1"), ascii(10), alice...)
	r.ContentLength = -1 // sent chunked
	release := p.StreamingRequest(r, 3, answered(http.StatusOK, object("uploading", 10, 2)))
	p.want(object("created", 0, 1), overlaid(object("created", 0, 1), "uploading", lastByteTime, 3, `[{"part_number":1,"received":3,"size":-1}]`), alice...)
	release()
	p.want(object("uploading", 10, 2), overlaid(object("uploading", 10, 2), "uploading", lastByteTime, 10, "[]"), alice...)
}

func TestExchangePartRefused(t *testing.T) {
	p := newProxy(t, `{"name":"sandbox"}`)
	p.created()
	w := p.watch(ws, alice...)
	w.Next()

	// Over max_part_bytes: the origin refuses it once it has seen enough.
	release := p.Streaming("PUT", partOf("1"), ascii(10), 6, answered(http.StatusRequestEntityTooLarge, errorBody("payload_too_large", "part exceeds max_part_bytes")), alice...)
	p.want(object("created", 0, 1), overlaid(object("created", 0, 1), "uploading", lastByteTime, 6, `[{"part_number":1,"received":6,"size":10}]`), alice...)
	w.until("uploading")
	release()
	// Its bytes stop counting: the session is where the origin left it,
	// and goes on.
	p.want(object("created", 0, 1), overlaid(object("created", 0, 1), "created", lastByteTime, 0, "[]"), alice...)
	p.sameView("the watcher", w.until("created"), overlaid(object("created", 0, 1), "created", lastByteTime, 0, "[]"))

	// Sent again, in smaller parts the origin accepts.
	p.Send("PUT", partOf("1"), ascii(10), answered(http.StatusOK, object("uploading", 10, 2)), alice...)
	p.want(object("uploading", 10, 2), overlaid(object("uploading", 10, 2), "uploading", lastByteTime, 10, "[]"), alice...)

	// Refused for any other reason, or not answered: the same.
	p.Send("PUT", partOf("2"), ascii(10), answered(http.StatusConflict, errorBody("conflict", "part 2 is being written")), alice...)
	p.Send("PUT", partOf("2"), ascii(10), answered(http.StatusInternalServerError, ""), alice...)
	p.want(object("uploading", 10, 2), overlaid(object("uploading", 10, 2), "uploading", lastByteTime, 10, "[]"), alice...)
}

func TestExchangePartSentTwice(t *testing.T) {
	p := newProxy(t, `{"name":"sandbox"}`)
	p.created()
	p.Send("PUT", partOf("1"), ascii(10), answered(http.StatusOK, object("uploading", 10, 2)), alice...)

	// Sent again after it was accepted: it counts once, as the larger of
	// what was accepted and what the new stream brought.
	release := p.Streaming("PUT", partOf("1"), ascii(10), 4, answered(http.StatusOK, object("uploading", 10, 2)), alice...)
	p.want(object("uploading", 10, 2), overlaid(object("uploading", 10, 2), "uploading", lastByteTime, 10, `[{"part_number":1,"received":4,"size":10}]`), alice...)
	release()
	p.want(object("uploading", 10, 2), overlaid(object("uploading", 10, 2), "uploading", lastByteTime, 10, "[]"), alice...)

	// Sent twice at once (a client that gave up on the first): the newest
	// stream is the part's.
	first := p.Streaming("PUT", partOf("2"), ascii(10), 3, answered(http.StatusOK, object("uploading", 20, 3)), alice...)
	second := p.Streaming("PUT", partOf("2"), ascii(10), 6, answered(http.StatusOK, object("uploading", 20, 3)), alice...)
	p.want(object("uploading", 10, 2), overlaid(object("uploading", 10, 2), "uploading", lastByteTime, 16, `[{"part_number":2,"received":6,"size":10}]`), alice...)
	second()
	// Accepted whole: the older stream, still going, adds nothing to it.
	p.want(object("uploading", 20, 3), overlaid(object("uploading", 20, 3), "uploading", lastByteTime, 20, `[{"part_number":2,"received":3,"size":10}]`), alice...)
	first()
	p.want(object("uploading", 20, 3), overlaid(object("uploading", 20, 3), "uploading", lastByteTime, 20, "[]"), alice...)
}

func TestExchangeStatusPassesUntouched(t *testing.T) {
	p := newProxy(t, `{"name":"sandbox"}`)
	pretty := "{\n  \"upload_id\": \"u2\",\n  \"status\": \"created\"\n}\n"
	// A session the proxy does not track (created before it started).
	p.Send("GET", "/v1/sandboxes/sb/uploads/u2", "", answered(http.StatusOK, pretty, "ETag", `"v7"`), alice...)

	p.created()
	for _, a := range []answer{
		answered(http.StatusNotFound, errorBody("not_found", "upload session not found")),
		answered(http.StatusInternalServerError, errorBody("internal", "try again")),
		answered(http.StatusServiceUnavailable, "", "Retry-After", "5"),
		// An error that carries the session object is still an error.
		answered(http.StatusGone, object("expired", 0, 1)),
		answered(http.StatusNotModified, "", "ETag", `"v1"`),
		// No session object: nothing to lay over.
		answered(http.StatusOK, `<html>maintenance</html>`, "Content-Type", "text/html"),
		answered(http.StatusOK, `{"upload_id":"u1","status":`),
		answered(http.StatusOK, `{"status":"created"}`),
		// Longer than the proxy keeps an object (16 KiB), shorter than it
		// holds an answer (64 KiB): held, and let go as it came.
		answered(http.StatusOK, `{"upload_id":"u1","status":"created","pad":"`+strings.Repeat("x", 20<<10)+`"}`),
		// Longer than it holds an answer: passed as it comes.
		answered(http.StatusOK, `{"upload_id":"u1","status":"created","pad":"`+strings.Repeat("x", 70<<10)+`"}`),
	} {
		p.Send("GET", up, "", a, alice...)
	}

	// Another token's request reaches the origin as it is: the origin
	// decides.
	p.Send("GET", up, "", answered(http.StatusNotFound, errorBody("not_found", "upload session not found")), bob...)
	p.Send("GET", up, "", answered(http.StatusOK, object("created", 0, 1)), bob...)
	p.Send("GET", up, "", answered(http.StatusUnauthorized, errorBody("unauthorized", "missing bearer token")))
	// Not the status route.
	p.Send("HEAD", up, "", answered(http.StatusOK, "", "Content-Length", "300"), alice...)
	p.Send("GET", create, "", answered(http.StatusOK, `[`+object("created", 0, 1)+`]`), alice...)

	// Alice's own still gets the overlay.
	p.want(object("created", 0, 1), overlaid(object("created", 0, 1), "created", "", 0, "[]"), alice...)
}

// TestExchangeOnlyStatusOverlaid: the answers to create, part, complete
// and delete carry the session object too, but pass byte for byte (send
// checks it).
func TestExchangeOnlyStatusOverlaid(t *testing.T) {
	p := newProxy(t, `{"name":"sandbox"}`)
	p.Send("POST", create, createBody, answered(http.StatusCreated, object("created", 0, 1), "ETag", `"v1"`, "Location", up), alice...)
	release := p.Streaming("PUT", partOf("2"), ascii(10), 5, answered(http.StatusOK, object("uploading", 10, 1), "ETag", `"v2"`), alice...)
	// While part 2 streams, part 1's answer is the origin's.
	p.Send("PUT", partOf("1"), ascii(10), answered(http.StatusOK, object("uploading", 10, 2), "ETag", `"v3"`), alice...)
	p.Send("POST", up+"/complete", "", answered(http.StatusConflict, errorBody("incomplete", "part 2 missing")), alice...)
	release()
	p.Send("PUT", partOf("3"), ascii(10), answered(http.StatusOK, object("uploading", 30, 4)), alice...)
	p.Send("PUT", partOf("4"), ascii(10), answered(http.StatusOK, object("staged", 40, 0)), alice...)
	p.Send("POST", up+"/complete", "", answered(http.StatusAccepted, object("completing", 40, 0), "ETag", `"v4"`), alice...)
	p.Send("DELETE", up, "", answered(http.StatusOK, object("aborted", 40, 0)), alice...)
}

func TestExchangeOverlayHeaders(t *testing.T) {
	p := newProxy(t, `{"name":"sandbox"}`)
	p.created()
	w := p.Serve(protocoltest.Request("GET", up, "", alice...), &protocoltest.Origin{A: answered(http.StatusOK, object("created", 0, 1),
		"ETag", `"v1"`, "Cache-Control", "no-store", "X-Request-Id", "r1")})
	// The body is the proxy's: its length follows it, and the origin's
	// ETag no longer names it. The rest is the origin's.
	want := overlaid(object("created", 0, 1), "created", "", 0, "[]")
	if w.Code != http.StatusOK || w.Body.String() != want {
		t.Errorf("GET: %d %s, want 200 %s", w.Code, w.Body, want)
	}
	h := w.Header()
	if h.Get("Content-Length") != itoa(len(want)) || h.Get("ETag") != "" || h.Get("Content-Type") != "application/json" ||
		h.Get("Cache-Control") != "no-store" || h.Get("X-Request-Id") != "r1" {
		t.Errorf("GET: headers %v", h)
	}
}

func TestExchangeAbort(t *testing.T) {
	p := newProxy(t, `{"name":"sandbox"}`)
	p.created()
	p.Send("PUT", partOf("1"), ascii(10), answered(http.StatusOK, object("uploading", 10, 2)), alice...)
	w := p.watch(ws, alice...)
	w.Next()

	// Refused, or another token's: the session goes on.
	p.Send("DELETE", up, "", answered(http.StatusConflict, errorBody("conflict", "completing")), alice...)
	p.Send("DELETE", up, "", answered(http.StatusNoContent, ""), bob...)
	p.want(object("uploading", 10, 2), overlaid(object("uploading", 10, 2), "uploading", lastByteTime, 10, "[]"), alice...)

	p.Send("DELETE", up, "", answered(http.StatusNoContent, ""), alice...)
	p.sameView("the watcher", w.until("aborted"), overlaid(object("uploading", 10, 2), "aborted", lastByteTime, 10, "[]"))
	if code, reason := w.Closed(); code != websocket.StatusNormalClosure || reason != "aborted" {
		t.Errorf("the watcher was closed %d %q, want 1000 aborted", code, reason)
	}
	// The origin forgot it: its 404 passes. An origin slow to forget it
	// still shows it aborted.
	p.Send("GET", up, "", answered(http.StatusNotFound, errorBody("not_found", "upload session not found")), alice...)
	p.want(object("uploading", 10, 2), overlaid(object("uploading", 10, 2), "aborted", lastByteTime, 10, "[]"), alice...)
	// A watcher that comes now is told how it ended.
	late := p.watch(ws, alice...)
	p.sameView("a late watcher", late.Next(), overlaid(object("uploading", 10, 2), "aborted", lastByteTime, 10, "[]"))
	if code, reason := late.Closed(); code != websocket.StatusNormalClosure || reason != "aborted" {
		t.Errorf("the late watcher was closed %d %q, want 1000 aborted", code, reason)
	}
}

func TestExchangeAbortAnswered200(t *testing.T) {
	p := newProxy(t, `{"name":"sandbox"}`)
	p.created()
	w := p.watch(ws, alice...)
	w.Next()
	p.Send("DELETE", up, "", answered(http.StatusOK, object("aborted", 0, 1)), alice...)
	if got, want := w.until("aborted"), overlaid(object("aborted", 0, 1), "aborted", "", 0, "[]"); got != want {
		t.Errorf("the watcher got\n %s\nwant\n %s", got, want)
	}
	if code, reason := w.Closed(); code != websocket.StatusNormalClosure || reason != "aborted" {
		t.Errorf("the watcher was closed %d %q, want 1000 aborted", code, reason)
	}
}

func TestExchangeComplete(t *testing.T) {
	p := newProxy(t, `{"name":"sandbox"}`)
	p.created()
	for i, next := range []int{2, 3, 4, 0} {
		p.Send("PUT", partOf(itoa(i+1)), ascii(10), answered(http.StatusOK, object("uploading", int64(10*(i+1)), next)), alice...)
	}
	w := p.watch(ws, alice...)
	w.Next()

	// The origin puts the parts together in its own time.
	p.Send("POST", up+"/complete", "", answered(http.StatusAccepted, object("completing", 40, 0)), alice...)
	p.sameView("the watcher", w.until("completing"), overlaid(object("completing", 40, 0), "completing", lastByteTime, 40, "[]"))
	p.want(object("completing", 40, 0), overlaid(object("completing", 40, 0), "completing", lastByteTime, 40, "[]"), alice...)

	// A client's GET learns it is done.
	done := strings.Replace(object("completed", 40, 0), `,"next_part":0}`, `,"next_part":0,"whole_checksum_sha256":"9f86d0"}`, 1)
	p.want(done, overlaid(done, "completed", lastByteTime, 40, "[]"), alice...)
	p.sameView("the watcher", w.until("completed"), overlaid(done, "completed", lastByteTime, 40, "[]"))
	if code, reason := w.Closed(); code != websocket.StatusNormalClosure || reason != "completed" {
		t.Errorf("the watcher was closed %d %q, want 1000 completed", code, reason)
	}
}

func TestExchangeCompleteAtOnce(t *testing.T) {
	p := newProxy(t, `{"name":"sandbox"}`)
	p.created()
	p.Send("PUT", partOf("1"), ascii(40), answered(http.StatusOK, object("staged", 40, 0)), alice...)
	w := p.watch(ws, alice...)
	w.Next()
	p.Send("POST", up+"/complete", "", answered(http.StatusOK, object("completed", 40, 0)), alice...)
	p.sameView("the watcher", w.until("completed"), overlaid(object("completed", 40, 0), "completed", lastByteTime, 40, "[]"))
	if code, reason := w.Closed(); code != websocket.StatusNormalClosure || reason != "completed" {
		t.Errorf("the watcher was closed %d %q, want 1000 completed", code, reason)
	}
}

func TestExchangeExpired(t *testing.T) {
	p := newProxy(t, `{"name":"sandbox"}`)
	// The origin's expires_at has passed: the proxy reports it expired.
	gone := strings.Replace(object("created", 0, 1), "2099-03-02T10:00:00Z", "2026-03-02T10:00:00Z", 1)
	p.Send("POST", create, createBody, answered(http.StatusCreated, gone), alice...)
	w := p.watch(ws, alice...)
	if got, want := w.until("expired"), overlaid(gone, "expired", "", 0, "[]"); got != want {
		t.Errorf("the watcher got\n %s\nwant\n %s", got, want)
	}
	if code, reason := w.Closed(); code != websocket.StatusNormalClosure || reason != "expired" {
		t.Errorf("the watcher was closed %d %q, want 1000 expired", code, reason)
	}
}

func TestWatchRefusals(t *testing.T) {
	p := newProxy(t, `{"name":"sandbox"}`)
	p.created()
	notFound := `{"error":{"code":"not_found","message":"upload session not found"}}`
	for _, tc := range []struct {
		name, path string
		header     []string
		code       int
		body       string
	}{
		{"unknown session", "/v1/sandboxes/sb/uploads/u9/ws", alice, http.StatusNotFound, notFound},
		{"another sandbox", "/v1/sandboxes/sb2/uploads/u1/ws", alice, http.StatusNotFound, notFound},
		{"another token", ws, bob, http.StatusNotFound, notFound},
		{"no token", ws, nil, http.StatusUnauthorized, `{"error":{"code":"unauthorized","message":"missing Authorization bearer token"}}`},
	} {
		if code, body := p.refused(tc.path, tc.header...); code != tc.code || body != tc.body {
			t.Errorf("%s: refused %d %s, want %d %s", tc.name, code, body, tc.code, tc.body)
		}
	}
	// Not a WebSocket handshake, or not a GET.
	w := p.Serve(protocoltest.Request("GET", ws, "", alice...), nil)
	if w.Code != http.StatusUpgradeRequired || !strings.Contains(w.Body.String(), `"code":"upgrade_required"`) {
		t.Errorf("a plain GET of the WebSocket: %d %s, want 426 upgrade_required", w.Code, w.Body)
	}
	w = p.Serve(protocoltest.Request("POST", ws, "", alice...), nil)
	if w.Code != http.StatusMethodNotAllowed || !strings.Contains(w.Body.String(), `"code":"method_not_allowed"`) {
		t.Errorf("a POST to the WebSocket: %d %s, want 405 method_not_allowed", w.Code, w.Body)
	}
}
