package main

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/testkit"
)

// tusStatus is the demo's reply at /tus/progress.
type tusStatus struct {
	Upload   string            `json:"upload"`
	Length   int64             `json:"length"`
	Offset   int64             `json:"offset"`
	Received int64             `json:"received"`
	Status   string            `json:"status"`
	Metadata map[string]string `json:"metadata"`
	Error    string            `json:"error"`
}

// tus sends a tus 1.0 request and fails the test unless its status is
// want; it returns the answer, its body read.
func (c *client) tus(method, target string, header map[string]string, body []byte, want int) *http.Response {
	c.t.Helper()
	h := map[string]string{"Tus-Resumable": "1.0.0"}
	if body != nil {
		h["Content-Type"] = "application/offset+octet-stream"
	}
	maps.Copy(h, header)
	resp, _ := c.send(method, target, h, body, want)
	return resp
}

// tusStatus asks the demo about an upload, by its URL, as a page would.
func (c *client) tusStatus(site, uploadURL string, want int) (tusStatus, []byte) {
	c.t.Helper()
	var st tusStatus
	raw := c.decode(http.MethodGet, site+"/tus/progress?upload="+url.QueryEscape(uploadURL), nil, nil, want, &st)
	return st, raw
}

// A tus upload through the demo, as tus clients send it: a creation, a
// PATCH, a HEAD to resume, the last PATCH. The status follows it to
// completed, the WebSocket ends with it, and the origin (tusd's handler)
// holds the bytes.
func demoTus(t *testing.T, d *runningDemo) {
	c := newClient(t)
	data := testkit.RandomBytes(1<<20+9, 7)
	size := int64(len(data))
	resp := c.tus(http.MethodPost, d.site+"/files/", map[string]string{
		"Upload-Length": strconv.FormatInt(size, 10), "Upload-Metadata": "filename Z28uYmlu"}, nil, http.StatusCreated)
	up := resp.Header.Get("Location")
	if !strings.HasPrefix(up, d.site+"/files/") {
		t.Fatalf("creation answered Location %q, want an upload URL under %s/files/", up, d.site)
	}
	path := strings.TrimPrefix(up, d.site)
	st, raw := c.tusStatus(d.site, up, http.StatusOK)
	if want := (tusStatus{path, size, 0, 0, "created", map[string]string{"filename": "go.bin"}, ""}); !sameTus(st, want) {
		t.Fatalf("after creation: %s, want %+v", raw, want)
	}

	half := size / 2
	c.tus(http.MethodPatch, up, map[string]string{"Upload-Offset": "0"}, data[:half], http.StatusNoContent)
	st, raw = c.tusStatus(d.site, path, http.StatusOK) // the path names it too
	if st.Status != "paused" || st.Offset != half || st.Received != half {
		t.Fatalf("after the first PATCH: %s, want paused at %d", raw, half)
	}
	resp = c.tus(http.MethodHead, up, nil, nil, http.StatusOK)
	if got := resp.Header.Get("Upload-Offset"); got != strconv.FormatInt(half, 10) {
		t.Fatalf("HEAD answered Upload-Offset %q, want %d", got, half)
	}
	c.tus(http.MethodPatch, up, map[string]string{"Upload-Offset": strconv.FormatInt(half, 10)}, data[half:], http.StatusNoContent)

	st, raw = c.tusStatus(d.site, up, http.StatusOK)
	if want := (tusStatus{path, size, size, size, "completed", map[string]string{"filename": "go.bin"}, ""}); !sameTus(st, want) {
		t.Fatalf("after the last PATCH: %s, want %+v", raw, want)
	}
	// The WebSocket: the final state, then a normal close.
	c.expectFinalOverWebSocket(d.site, "/tus/progress/ws?upload="+url.QueryEscape(up), nil, raw)
	if got := c.do(http.MethodGet, up, nil, nil, http.StatusOK); !bytes.Equal(got, data) {
		t.Error("the origin's upload differs from the source")
	}

	// An upload nobody created is not_exist, with 404.
	st, raw = c.tusStatus(d.site, "/files/nobody", http.StatusNotFound)
	if st.Status != "not_exist" || st.Upload != "/files/nobody" {
		t.Errorf("an unknown upload: %s", raw)
	}
}

// sameTus compares two tus replies.
func sameTus(a, b tusStatus) bool {
	ma, _ := json.Marshal(a)
	mb, _ := json.Marshal(b)
	return bytes.Equal(ma, mb)
}
