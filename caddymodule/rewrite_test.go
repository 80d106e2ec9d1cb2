package caddymodule

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	protocolapi "github.com/caddy-upload-progress/caddy-upload-progress/protocol"
)

// clientEnd is the client's end of an answer: what reached it, in order
// (a status, writes by their length, flushes), the headers as they were
// when the status went, and the body.
type clientEnd struct {
	header http.Header
	sent   http.Header
	events []string
	body   bytes.Buffer
}

func newClientEnd() *clientEnd { return &clientEnd{header: http.Header{}} }

func (c *clientEnd) Header() http.Header { return c.header }

func (c *clientEnd) WriteHeader(code int) {
	c.events = append(c.events, fmt.Sprintf("status %d", code))
	if code >= 200 {
		c.sent = c.header.Clone()
	}
}

func (c *clientEnd) Write(b []byte) (int, error) {
	c.events = append(c.events, fmt.Sprintf("write %d", len(b)))
	return c.body.Write(b)
}

func (c *clientEnd) Flush() { c.events = append(c.events, "flush") }

func (c *clientEnd) saw() string { return strings.Join(c.events, ", ") }

// heldFor returns a heldWriter in front of c and the statuses it reported.
func heldFor(c *clientEnd) (*heldWriter, *[]int) {
	var statuses []int
	return newHeldWriter(c, func(code int) { statuses = append(statuses, code) }), &statuses
}

// originWrites writes an answer as reverse_proxy does: headers, status, the
// body in chunks, flushing through a ResponseController.
func originWrites(t *testing.T, w http.ResponseWriter, status int, chunks ...string) {
	t.Helper()
	w.WriteHeader(status)
	for _, c := range chunks {
		if _, err := w.Write([]byte(c)); err != nil {
			t.Fatal(err)
		}
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Fatalf("Flush: %v", err)
		}
	}
}

func TestHeldWriterReplacesAShortAnswer(t *testing.T) {
	c := newClientEnd()
	h, statuses := heldFor(c)
	h.Header().Set("Content-Type", "application/json")
	h.Header().Set("Content-Length", "19")
	h.Header().Set("Content-Encoding", "identity")
	h.Header().Set("ETag", `"v1"`)
	h.Header().Set("Cache-Control", "no-store")
	originWrites(t, h, http.StatusOK, `{"status":`, `"created"}`)

	// Held whole: nothing has reached the client, flushes included.
	if len(c.events) != 0 {
		t.Fatalf("the client saw %s while the answer was held", c.saw())
	}
	if !h.held() || string(h.body) != `{"status":"created"}` || h.status != http.StatusOK {
		t.Fatalf("held %v: %d %q", h.held(), h.status, h.body)
	}
	if fmt.Sprint(*statuses) != "[200]" {
		t.Errorf("statuses reported %v, want [200]", *statuses)
	}

	replace := `{"status":"uploading","received_bytes":5}`
	h.release(&protocolapi.Answered{Replace: []byte(replace)})
	if got, want := c.saw(), fmt.Sprintf("status 200, write %d", len(replace)); got != want {
		t.Errorf("the client saw %s, want %s", got, want)
	}
	if c.body.String() != replace {
		t.Errorf("the client got %s, want %s", c.body.String(), replace)
	}
	// The body is the proxy's: its length follows it; the origin's
	// encoding and entity tag no longer describe it.
	if c.sent.Get("Content-Length") != fmt.Sprint(len(replace)) || c.sent.Get("Content-Encoding") != "" || c.sent.Get("ETag") != "" ||
		c.sent.Get("Content-Type") != "application/json" || c.sent.Get("Cache-Control") != "no-store" {
		t.Errorf("the client got headers %v", c.sent)
	}

	// Let go: flushes pass.
	http.NewResponseController(h).Flush()
	if !strings.HasSuffix(c.saw(), ", flush") {
		t.Errorf("a flush after the answer was let go did not pass: %s", c.saw())
	}
}

func TestHeldWriterReleasedAsItCame(t *testing.T) {
	c := newClientEnd()
	h, _ := heldFor(c)
	h.Header().Set("Content-Length", "30")
	h.Header().Set("ETag", `"v1"`)
	originWrites(t, h, http.StatusNotFound, `{"error":`, `{"code":"not_found"}}`)
	// Nothing to replace it with (an error, or no object).
	h.release(&protocolapi.Answered{})
	if got := c.saw(); got != "status 404, write 30" {
		t.Errorf("the client saw %s", got)
	}
	if c.body.String() != `{"error":{"code":"not_found"}}` || c.sent.Get("Content-Length") != "30" || c.sent.Get("ETag") != `"v1"` {
		t.Errorf("the client got %s with %v, want the origin's answer as it came", c.body.String(), c.sent)
	}
}

func TestHeldWriterLetsALongAnswerGo(t *testing.T) {
	c := newClientEnd()
	h, statuses := heldFor(c)
	h.Header().Set("Content-Length", "100000")
	h.Header().Set("ETag", `"big"`)
	chunks := []string{strings.Repeat("a", 40<<10), strings.Repeat("b", 24<<10), "c", strings.Repeat("d", 100000-(64<<10)-1)}
	h.WriteHeader(http.StatusOK)
	for _, ch := range chunks[:2] {
		h.Write([]byte(ch))
	}
	// 64 KiB: held still.
	if len(c.events) != 0 || !h.held() {
		t.Fatalf("the client saw %s of an answer of 64 KiB so far", c.saw())
	}
	// One byte more: what was held goes, then the rest as it comes.
	h.Write([]byte(chunks[2]))
	h.Flush()
	h.Write([]byte(chunks[3]))
	if h.held() {
		t.Error("an answer past 64 KiB is still held")
	}
	h.release(&protocolapi.Answered{Replace: []byte(`{"too":"late"}`)})
	want := fmt.Sprintf("status 200, write %d, write 1, flush, write %d", 64<<10, len(chunks[3]))
	if got := c.saw(); got != want {
		t.Errorf("the client saw %s\n want %s", got, want)
	}
	if c.body.String() != strings.Join(chunks, "") {
		t.Errorf("the client got %d bytes, not the origin's %d in order", c.body.Len(), len(strings.Join(chunks, "")))
	}
	if c.sent.Get("Content-Length") != "100000" || c.sent.Get("ETag") != `"big"` {
		t.Errorf("the client got headers %v, want the origin's", c.sent)
	}
	if fmt.Sprint(*statuses) != "[200]" {
		t.Errorf("statuses reported %v, want [200]", *statuses)
	}
}

func TestHeldWriterInformational(t *testing.T) {
	c := newClientEnd()
	h, statuses := heldFor(c)
	h.Header().Set("Link", "</style.css>; rel=preload")
	h.WriteHeader(http.StatusEarlyHints)
	h.WriteHeader(http.StatusContinue)
	// They are no answer: they go at once, and the answer is held.
	if got := c.saw(); got != "status 103, status 100" {
		t.Errorf("the client saw %s, want the 103 and the 100 at once", got)
	}
	originWrites(t, h, http.StatusOK, `{}`)
	if got := c.saw(); got != "status 103, status 100" || !h.held() {
		t.Errorf("the client saw %s; the answer after the 1xx is not held", got)
	}
	h.release(&protocolapi.Answered{Replace: []byte(`{"x":1}`)})
	if got := c.saw(); got != "status 103, status 100, status 200, write 7" || c.body.String() != `{"x":1}` {
		t.Errorf("the client saw %s and got %s", got, c.body.String())
	}
	if fmt.Sprint(*statuses) != "[200]" {
		t.Errorf("statuses reported %v, want only the final [200]", *statuses)
	}
}

func TestHeldWriterEdges(t *testing.T) {
	// A body without a status is a 200.
	c := newClientEnd()
	h, _ := heldFor(c)
	h.Write([]byte("{}"))
	if !h.held() || h.status != http.StatusOK {
		t.Errorf("a write without a status: held %v, status %d", h.held(), h.status)
	}
	// A second status is ignored, as net/http ignores it.
	h.WriteHeader(http.StatusTeapot)
	h.release(&protocolapi.Answered{})
	if got := c.saw(); got != "status 200, write 2" {
		t.Errorf("the client saw %s", got)
	}

	// No answer at all (the origin unreachable): nothing to let go, and
	// Caddy answers the error.
	c = newClientEnd()
	h, statuses := heldFor(c)
	if h.held() {
		t.Error("an answer that has not started is held")
	}
	h.release(&protocolapi.Answered{Replace: []byte("x")})
	if len(c.events) != 0 || len(*statuses) != 0 {
		t.Errorf("the client saw %s for no answer", c.saw())
	}

	// An empty held answer goes without a write.
	c = newClientEnd()
	h, _ = heldFor(c)
	h.WriteHeader(http.StatusNotModified)
	h.release(&protocolapi.Answered{})
	if got := c.saw(); got != "status 304" {
		t.Errorf("the client saw %s", got)
	}
}
