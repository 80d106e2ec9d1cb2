package caddymodule

import (
	"net/http"
	"strconv"

	protocolapi "github.com/caddy-upload-progress/caddy-upload-progress/protocol"
)

// heldWriter holds an answer back, up to maxCapture bytes, so that a
// protocol can lay its live view over it before it goes to the client (a
// session's status answer). An answer that grows past the bound is let go
// as it came: what was held is written, then the rest as it arrives.
//
// It does not unwrap to the client's writer: a Flush through
// http.ResponseController would otherwise send the status before the body
// is rewritten. Flush is a no-op while the answer is held.
type heldWriter struct {
	w      http.ResponseWriter
	header http.Header
	status int
	body   []byte
	// passed is set once the answer has been let go.
	passed bool
	// onStatus is told the final status once it is written.
	onStatus func(int)
}

func newHeldWriter(w http.ResponseWriter, onStatus func(int)) *heldWriter {
	return &heldWriter{w: w, header: w.Header(), onStatus: onStatus}
}

func (h *heldWriter) Header() http.Header { return h.header }

func (h *heldWriter) WriteHeader(code int) {
	if h.passed {
		h.w.WriteHeader(code)
		return
	}
	if code < 200 {
		// Informational answers (100, 103) go through; they are no answer.
		h.w.WriteHeader(code)
		return
	}
	if h.status == 0 {
		h.status = code
		h.onStatus(code)
	}
}

func (h *heldWriter) Write(b []byte) (int, error) {
	if h.status == 0 {
		h.WriteHeader(http.StatusOK)
	}
	if h.passed {
		return h.w.Write(b)
	}
	if len(h.body)+len(b) <= maxCapture {
		h.body = append(h.body, b...)
		return len(b), nil
	}
	// Too long to hold: let it go.
	h.pass(nil)
	return h.w.Write(b)
}

// Flush is a no-op while the answer is held.
func (h *heldWriter) Flush() {
	if h.passed {
		http.NewResponseController(h.w).Flush()
	}
}

// pass writes the status and what was held, or replace in its place, and
// lets the rest of the answer through.
func (h *heldWriter) pass(replace []byte) {
	if h.passed {
		return
	}
	h.passed = true
	if h.status == 0 {
		return
	}
	body := h.body
	if replace != nil {
		body = replace
		h.header.Set("Content-Length", strconv.Itoa(len(body)))
		h.header.Del("Content-Encoding")
		h.header.Del("ETag")
	}
	h.w.WriteHeader(h.status)
	if len(body) > 0 {
		// A client that went away is no error of ours.
		_, _ = h.w.Write(body)
	}
}

// held reports whether the whole answer is held, body included.
func (h *heldWriter) held() bool { return !h.passed && h.status != 0 }

// release ends a held answer: what Answer made of it, or the answer as it came.
func (h *heldWriter) release(a *protocolapi.Answered) {
	var replace []byte
	if h.held() {
		replace = a.Replace
	}
	h.pass(replace)
}
