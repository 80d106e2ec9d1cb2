package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/testkit"
)

// sandboxStatus is what the tests read of a sandbox session object, as the
// demo's proxy overlays it. PartsInFlight stays raw so that a missing
// member tells from an empty list.
type sandboxStatus struct {
	UploadID      string          `json:"upload_id"`
	ContentLength int64           `json:"content_length"`
	AcceptedBytes int64           `json:"accepted_bytes"`
	PartCount     int             `json:"part_count"`
	NextPart      int             `json:"next_part"`
	Status        string          `json:"status"`
	Checksum      string          `json:"whole_checksum_sha256"`
	ReceivedBytes *int64          `json:"received_bytes"`
	PartsInFlight json.RawMessage `json:"parts_in_flight"`
}

// received is received_bytes, -1 when the object has none (not overlaid).
func (s sandboxStatus) received() int64 {
	if s.ReceivedBytes == nil {
		return -1
	}
	return *s.ReceivedBytes
}

// inFlight is parts_in_flight, compacted: "" when the object has none.
func (s sandboxStatus) inFlight() string {
	var b bytes.Buffer
	if json.Compact(&b, s.PartsInFlight) != nil {
		return ""
	}
	return b.String()
}

// sandboxStatus asks the demo how a session stands, at its status route,
// with header; it returns the object and its bytes.
func (c *client) sandboxStatus(url string, header map[string]string, want int) (sandboxStatus, []byte) {
	c.t.Helper()
	var st sandboxStatus
	raw := c.decode(http.MethodGet, url, header, nil, want, &st)
	return st, raw
}

// A sandbox upload session through the demo, as a client sends it: a
// creation, part 1 held halfway (the overlaid status shows its bytes in
// received_bytes and parts_in_flight), the other parts, an asynchronous
// completion. A watcher sees the session end completed without any request
// passing: the proxy asks the origin itself, at the address --origin gave.
// Another token sees nothing.
func demoSandbox(t *testing.T, d *runningDemo) {
	c := newClient(t)
	auth := map[string]string{"Authorization": "Bearer demo-go"}
	const part = 1 << 20
	data := testkit.RandomBytes(2*part+5, 7) // parts of 1 MiB, 1 MiB, 5 bytes
	size := int64(len(data))

	create := fmt.Sprintf(`{"target_path":"/go/sandbox.bin","content_length":%d,"part_size":%d,"kind":"file","conflict":"replace"}`, size, part)
	resp, b := c.send(http.MethodPost, d.site+"/v1/sandboxes/sb_go/uploads",
		map[string]string{"Authorization": auth["Authorization"], "Content-Type": "application/json"}, []byte(create), http.StatusCreated)
	var created sandboxStatus
	if err := json.Unmarshal(b, &created); err != nil || created.UploadID == "" || created.PartCount != 3 {
		t.Fatalf("creation answered %s (%v)", b, err)
	}
	if created.ReceivedBytes != nil || created.PartsInFlight != nil {
		t.Errorf("the creation's answer was overlaid, want it as the origin sent it: %s", b)
	}
	path := "/v1/sandboxes/sb_go/uploads/" + created.UploadID
	if loc := resp.Header.Get("Location"); loc != path {
		t.Fatalf("creation answered Location %q, want %q", loc, path)
	}
	status := d.site + path

	st, raw := c.sandboxStatus(status, auth, http.StatusOK)
	if st.Status != "created" || st.received() != 0 || st.AcceptedBytes != 0 || st.inFlight() != "[]" {
		t.Fatalf("after the creation: %s, want created with received_bytes 0 and parts_in_flight []", raw)
	}

	// Part 1, held halfway: the origin has accepted nothing yet, the
	// proxy has seen half a part go by.
	pr, pw := io.Pipe()
	defer pw.CloseWithError(io.ErrClosedPipe) // a failed test lets the PUT go
	put := make(chan error, 1)
	go func() {
		req, err := http.NewRequest(http.MethodPut, status+"/parts/1", pr)
		if err != nil {
			put <- err
			return
		}
		req.ContentLength = part
		req.Header.Set("Authorization", auth["Authorization"])
		resp, err := c.c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("PUT part 1: %s", resp.Status)
			}
		}
		put <- err
	}()
	if _, err := pw.Write(data[:part/2]); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for st.received() != part/2 && time.Now().Before(deadline) {
		st, raw = c.sandboxStatus(status, auth, http.StatusOK)
	}
	if want := fmt.Sprintf(`[{"part_number":1,"received":%d,"size":%d}]`, part/2, part); st.Status != "uploading" ||
		st.received() != part/2 || st.AcceptedBytes != 0 || st.inFlight() != want {
		t.Fatalf("part 1 halfway: %s, want uploading, received_bytes %d, accepted_bytes 0, parts_in_flight %s", raw, part/2, want)
	}
	if _, err := pw.Write(data[part/2 : part]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-put; err != nil {
		t.Fatal(err)
	}
	st, raw = c.sandboxStatus(status, auth, http.StatusOK)
	if st.Status != "uploading" || st.received() != part || st.AcceptedBytes != part || st.NextPart != 2 || st.inFlight() != "[]" {
		t.Fatalf("after part 1: %s, want uploading with part 1 accepted and received", raw)
	}

	c.do(http.MethodPut, status+"/parts/2", auth, data[part:2*part], http.StatusOK)
	c.do(http.MethodPut, status+"/parts/3", auth, data[2*part:], http.StatusOK)
	st, raw = c.sandboxStatus(status, auth, http.StatusOK)
	if st.Status != "staged" || st.received() != size || st.AcceptedBytes != size || st.NextPart != 0 || st.inFlight() != "[]" {
		t.Fatalf("after every part: %s, want staged with all %d bytes", raw, size)
	}

	// A watcher, then the completion: 202 completing, and the origin
	// completes on its own; only the proxy's own status request can tell
	// the watcher so.
	seen := watchSandbox(t, d.site, path, http.Header{"Authorization": {auth["Authorization"]}}, func() {
		c.do(http.MethodPost, status+"/complete", auth, nil, http.StatusAccepted)
	})
	var statuses []string
	for _, m := range seen {
		if len(statuses) == 0 || statuses[len(statuses)-1] != m.Status {
			statuses = append(statuses, m.Status)
		}
	}
	last := seen[len(seen)-1]
	if !slices.Equal(statuses, []string{"staged", "completing", "completed"}) || last.received() != size ||
		last.Checksum != testkit.SHA256(data) || last.inFlight() != "[]" {
		t.Fatalf("the watcher saw the statuses %v, last %+v; want staged, completing, completed with the upload's sha256 and %d bytes", statuses, last, size)
	}
	st, raw = c.sandboxStatus(status, auth, http.StatusOK)
	if st.Status != "completed" || st.received() != size || st.AcceptedBytes != size || st.Checksum != testkit.SHA256(data) {
		t.Errorf("after the completion: %s", raw)
	}
	if got := c.do(http.MethodGet, d.site+"/fso?path=/go/sandbox.bin", map[string]string{"x-user-api-key": "demo"}, nil, http.StatusOK); !bytes.Equal(got, data) {
		t.Error("the origin's file differs from the upload")
	}

	// Another token: the origin's own 404, and no watcher.
	other := map[string]string{"Authorization": "Bearer someone-else"}
	if b := c.do(http.MethodGet, status, other, nil, http.StatusNotFound); bytes.Contains(b, []byte("received_bytes")) {
		t.Errorf("another token's status: %s", b)
	}
	refused, b := dialRefused(t, d.site, path, http.Header{"Authorization": {other["Authorization"]}})
	if refused != http.StatusNotFound || !bytes.Contains(b, []byte(`"code":"not_found"`)) {
		t.Errorf("another token's watcher: %d %s, want 404 not_found", refused, b)
	}
}

// watchSandbox opens the WebSocket of the session at path, runs then once
// the first message came, and returns every message until the normal close
// that must follow a terminal status, within 30 s.
func watchSandbox(t *testing.T, site, path string, header http.Header, then func()) []sandboxStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(site, "http")+path+"/ws", &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	var seen []sandboxStatus
	for range 100 {
		_, msg, err := ws.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusNormalClosure || len(seen) == 0 {
				t.Fatalf("the watcher ended with %v after %d messages (a watched session's origin is asked at the demo's --origin address)", err, len(seen))
			}
			return seen
		}
		var st sandboxStatus
		if err := json.Unmarshal(msg, &st); err != nil {
			t.Fatalf("message %s: %v", msg, err)
		}
		seen = append(seen, st)
		if len(seen) == 1 {
			then()
		}
	}
	t.Fatalf("no close after %d messages", len(seen))
	return nil
}

// dialRefused opens the WebSocket of the session at path, which must be
// refused before the upgrade; it returns the refusal's status and body.
func dialRefused(t *testing.T, site, path string, header http.Header) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(site, "http")+path+"/ws", &websocket.DialOptions{HTTPHeader: header})
	if err == nil {
		ws.CloseNow()
		t.Fatal("the watcher was accepted")
	}
	if resp == nil {
		t.Fatalf("no answer: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
