package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// A 64 MiB upload in one PATCH to tusd, held halfway: the status shows it
// uploading with what the proxy read, then completed with tusd's offset;
// tusd stores the source byte for byte and got only the client's requests.
func TestTusOnePatchSmoke(t *testing.T) {
	tusd, e, c := startTusdBehindCaddy(t, "protocol tus")

	const size = 64 << 20
	src := pattern(size)
	up := c.create(map[string]string{"Upload-Length": fmt.Sprint(size), "Upload-Metadata": "filename dmlkZW8ubXA0"})
	code, r, body := e.tusStatus(up)
	if code != 200 || r.Status != "created" || r.Length != size || r.Offset != 0 || r.Received != 0 || r.Metadata["filename"] != "video.mp4" {
		t.Fatalf("after creation: %d %s", code, body)
	}

	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		code, off, err := c.patch(context.Background(), up, 0, pr, size, nil)
		if err == nil && (code != 204 || off != size) {
			err = fmt.Errorf("PATCH answered %d, offset %d", code, off)
		}
		done <- err
	}()
	half := int64(size / 2)
	if _, err := pw.Write(src[:half]); err != nil {
		t.Fatal(err)
	}
	mid := e.waitTus(up, func(r tusReply) bool { return r.Received >= half })
	if mid.Status != "uploading" || mid.Offset != 0 || mid.Received > half {
		t.Fatalf("halfway: %+v", mid)
	}
	if _, err := io.Copy(pw, bytes.NewReader(src[half:])); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	code, r, body = e.tusStatus(up)
	if code != 200 || r.Status != "completed" || r.Offset != size || r.Received != size || r.Error != "" {
		t.Fatalf("after the PATCH: %d %s", code, body)
	}
	tusd.expectStored(t, up, src)
	tusd.expectOnly(t, c)
	if code, r, body := e.tusStatus("/files/unknown"); code != 404 || r.Status != "not_exist" || r.Upload != "/files/unknown" {
		t.Fatalf("unknown upload: %d %s", code, body)
	}
}

// A 64 MiB upload in 5 MiB PATCHes, watched over the WebSocket from its
// creation and polled over REST: between PATCHes it is paused at what tusd
// acknowledged, while one streams it is uploading (one PATCH is held
// mid-body so that both see it), and the watcher's messages go forward
// only, the offset by whole PATCHes, to completed and a normal close.
func TestTusPatchesWatched(t *testing.T) {
	tusd, e, c := startTusdBehindCaddy(t, "protocol tus")

	const (
		size  = 64 << 20
		chunk = 5 << 20
		held  = 2 // the PATCH held mid-body
	)
	src := pattern(size)
	up := c.create(map[string]string{"Upload-Length": fmt.Sprint(size)})
	w := e.watchTus(up)
	if r := w.next(t); r.Status != "created" || r.Length != size || r.Offset != 0 || r.Received != 0 {
		t.Fatalf("the watcher's first message: %+v", r)
	}

	for i, from := 0, int64(0); from < size; i, from = i+1, from+chunk {
		end := min(from+chunk, size)
		if i != held {
			c.patchAll(up, from, src[from:end], nil)
		} else {
			half := int(end-from) / 2
			h := e.holdPatch(c, up, from, src[from:end], half)
			want := from + int64(half)
			if code, r, body := e.tusStatus(up); code != 200 || r.Status != "uploading" || r.Offset != from || r.Received != want {
				t.Fatalf("PATCH %d held at %d: %d %s", i, want, code, body)
			}
			w.until(t, "of the held PATCH", func(r tusReply) bool { return r.Status == "uploading" && r.Received == want })
			if res := h.finish(); res.err != nil || res.code != http.StatusNoContent || res.offset != end {
				t.Fatalf("held PATCH %d answered %d, offset %d, %v", i, res.code, res.offset, res.err)
			}
		}
		if end == size {
			break
		}
		// Between two PATCHes, the upload waits where tusd stands.
		if code, r, body := e.tusStatus(up); code != 200 || r.Status != "paused" || r.Offset != end || r.Received != end || r.Error != "" {
			t.Fatalf("after PATCH %d: %d %s", i, code, body)
		}
	}

	if code, r, body := e.tusStatus(up); code != 200 || r.Status != "completed" || r.Length != size || r.Offset != size || r.Received != size || r.Error != "" {
		t.Fatalf("after the last PATCH: %d %s", code, body)
	}
	msgs, closed := w.all(t, 60*time.Second)
	if closed != websocket.StatusNormalClosure {
		t.Fatalf("watcher closed with %d, want 1000", closed)
	}
	checkPatchesWatched(t, msgs, size, chunk)
	tusd.expectStored(t, up, src)
	tusd.expectOnly(t, c)
}

// checkPatchesWatched checks a watcher's messages of an upload of size
// bytes sent in PATCHes of chunk bytes: created first, completed last,
// offset and received never going back, the offset a whole number of
// PATCHes, received within the PATCH streaming.
func checkPatchesWatched(t *testing.T, msgs []tusReply, size, chunk int64) {
	t.Helper()
	last := msgs[len(msgs)-1]
	if last.Status != "completed" || last.Offset != size || last.Received != size || last.Error != "" {
		t.Fatalf("the last message: %+v", last)
	}
	for i, r := range msgs {
		if r.Length != size || (r.Offset%chunk != 0 && r.Offset != size) {
			t.Fatalf("message %d: %+v; all: %+v", i, r, msgs)
		}
		switch r.Status {
		case "created":
			if i != 0 {
				t.Fatalf("message %d is created again: %+v", i, msgs)
			}
		case "uploading":
			if r.Received < r.Offset || r.Received > r.Offset+chunk {
				t.Fatalf("message %d uploads beyond the PATCH: %+v", i, r)
			}
		case "paused":
			if r.Received != r.Offset {
				t.Fatalf("message %d paused with more received than acknowledged: %+v", i, r)
			}
		case "completed":
			if i != len(msgs)-1 {
				t.Fatalf("message %d completed before the last: %+v", i, msgs)
			}
		default:
			t.Fatalf("message %d: status %q", i, r.Status)
		}
		if i > 0 && (r.Offset < msgs[i-1].Offset || r.Received < msgs[i-1].Received) {
			t.Fatalf("message %d goes back: %+v after %+v", i, r, msgs[i-1])
		}
	}
	t.Logf("%d watcher messages", len(msgs))
}

// A PATCH whose client drops mid-body leaves the upload paused at what
// tusd had acknowledged, with why; the client's HEAD tells where tusd
// stands, and a PATCH from there completes the upload.
func TestTusDropAndResume(t *testing.T) {
	tusd, e, c := startTusdBehindCaddy(t, "protocol tus")

	const size, sent = 16 << 20, 6<<20 + 12345
	src := pattern(size)
	up := c.create(map[string]string{"Upload-Length": fmt.Sprint(size)})
	h := e.holdPatch(c, up, 0, src, sent)
	if res := h.drop(); res.err == nil {
		t.Fatalf("the dropped PATCH was answered %d", res.code)
	}
	// Only once the proxy has seen the PATCH end may the HEAD go: tusd asks
	// a PATCH that holds the upload's lock to stop.
	r := e.waitTus(up, func(r tusReply) bool { return r.Status != "uploading" })
	if r.Status != "paused" || r.Offset != 0 || r.Received != 0 || r.Error == "" {
		t.Fatalf("after the drop: %+v", r)
	}
	// The client went away; tusd did not answer.
	if strings.Contains(r.Error, "tus server") {
		t.Fatalf("after the drop, the error blames tusd: %q", r.Error)
	}
	t.Logf("after the drop: %q", r.Error)

	code, off, length := c.head(up)
	if code != http.StatusOK || length != size || off < 0 || off > sent {
		t.Fatalf("HEAD answered %d, offset %d, length %d", code, off, length)
	}
	t.Logf("tusd kept %d of the %d bytes sent", off, sent)
	if code, r, body := e.tusStatus(up); code != 200 || r.Status != "paused" || r.Offset != off || r.Received != off || r.Length != size {
		t.Fatalf("after the HEAD: %d %s", code, body)
	}

	c.patchAll(up, off, src[off:], nil)
	if code, r, body := e.tusStatus(up); code != 200 || r.Status != "completed" || r.Offset != size || r.Received != size || r.Error != "" {
		t.Fatalf("after the resumed PATCH: %d %s", code, body)
	}
	tusd.expectStored(t, up, src)
	tusd.expectOnly(t, c)
}

// An upload created with its length deferred shows length -1 until a
// PATCH declares it, and completes when tusd holds that length.
func TestTusDeferredLength(t *testing.T) {
	tusd, e, c := startTusdBehindCaddy(t, "protocol tus")

	const size, first = 3 << 20, 1 << 20
	src := pattern(size)
	up := c.create(map[string]string{"Upload-Defer-Length": "1"})
	if code, r, body := e.tusStatus(up); code != 200 || r.Status != "created" || r.Length != -1 || r.Offset != 0 || r.Received != 0 {
		t.Fatalf("after creation: %d %s", code, body)
	}
	c.patchAll(up, 0, src[:first], nil)
	if code, r, body := e.tusStatus(up); code != 200 || r.Status != "paused" || r.Length != -1 || r.Offset != first {
		t.Fatalf("after a PATCH without the length: %d %s", code, body)
	}
	c.patchAll(up, first, src[first:], map[string]string{"Upload-Length": fmt.Sprint(size)})
	if code, r, body := e.tusStatus(up); code != 200 || r.Status != "completed" || r.Length != size || r.Offset != size || r.Received != size {
		t.Fatalf("after the PATCH with the length: %d %s", code, body)
	}
	tusd.expectStored(t, up, src)
	tusd.expectOnly(t, c)
}

// Three partial uploads concatenated into a final one, named by their
// paths and, in a second final upload, one by its absolute URL: the final
// upload is completed at its creation, with the partials' length summed.
func TestTusConcatenation(t *testing.T) {
	tusd, e, c := startTusdBehindCaddy(t, "protocol tus")

	var urls, paths []string
	var whole []byte
	for _, n := range []int{1<<20 + 1, 2<<20 + 3, 3<<20 + 5} {
		src := pattern(n + len(whole))[len(whole):]
		u := c.createURL(map[string]string{"Upload-Concat": "partial", "Upload-Length": fmt.Sprint(n)})
		p := mustPath(t, u)
		c.patchAll(p, 0, src, nil)
		if code, r, body := e.tusStatus(p); code != 200 || r.Status != "completed" || r.Length != int64(n) {
			t.Fatalf("partial %s: %d %s", p, code, body)
		}
		urls, paths, whole = append(urls, u), append(paths, p), append(whole, src...)
	}
	size := int64(len(whole))

	for _, list := range []string{
		fmt.Sprintf("final;%s %s %s", paths[0], paths[1], paths[2]),
		fmt.Sprintf("final;%s %s %s", paths[0], urls[1], paths[2]),
	} {
		up := c.create(map[string]string{"Upload-Concat": list})
		if code, r, body := e.tusStatus(up); code != 200 || r.Status != "completed" || r.Length != size || r.Offset != size || r.Received != size || r.Error != "" {
			t.Fatalf("final upload %q: %d %s", list, code, body)
		}
		tusd.expectStored(t, up, whole)
	}
	tusd.expectOnly(t, c)
}

// An upload terminated by the client's DELETE shows terminated, and its
// watcher gets that, then a normal close.
func TestTusTermination(t *testing.T) {
	tusd, e, c := startTusdBehindCaddy(t, "protocol tus")

	const size, first = 4 << 20, 1 << 20
	src := pattern(size)
	up := c.create(map[string]string{"Upload-Length": fmt.Sprint(size)})
	c.patchAll(up, 0, src[:first], nil)
	w := e.watchTus(up)
	if r := w.next(t); r.Status != "paused" || r.Offset != first {
		t.Fatalf("the watcher's first message: %+v", r)
	}

	if code := c.terminate(up); code != http.StatusNoContent {
		t.Fatalf("DELETE answered %d", code)
	}
	if code, r, body := e.tusStatus(up); code != 200 || r.Status != "terminated" {
		t.Fatalf("after the DELETE: %d %s", code, body)
	}
	msgs, closed := w.all(t, 60*time.Second)
	if last := msgs[len(msgs)-1]; last.Status != "terminated" || closed != websocket.StatusNormalClosure {
		t.Fatalf("the watcher got %+v, then close %d; want terminated, then 1000", msgs, closed)
	}
	tusd.expectOnly(t, c)
}

// An upload created at tusd past the proxy, and begun there, is unknown
// to the proxy until the client's HEAD through it, which tells its length
// and offset; the PATCH through the proxy completes it.
func TestTusUploadCreatedPastTheProxy(t *testing.T) {
	tusd, e, c := startTusdBehindCaddy(t, "protocol tus")
	direct := tusClientAt(t, "http://"+tusd.addr, e.client)

	const size, first = 4 << 20, 1 << 20
	src := pattern(size)
	up := direct.create(map[string]string{"Upload-Length": fmt.Sprint(size)})
	direct.patchAll(up, 0, src[:first], nil)
	if code, r, body := e.tusStatus(up); code != http.StatusNotFound || r.Status != "not_exist" {
		t.Fatalf("before the proxy saw it: %d %s", code, body)
	}

	if code, off, length := c.head(up); code != http.StatusOK || off != first || length != size {
		t.Fatalf("HEAD answered %d, offset %d, length %d", code, off, length)
	}
	if code, r, body := e.tusStatus(up); code != 200 || r.Status != "paused" || r.Length != size || r.Offset != first || r.Received != first {
		t.Fatalf("after the HEAD: %d %s", code, body)
	}
	c.patchAll(up, first, src[first:], nil)
	if code, r, body := e.tusStatus(up); code != 200 || r.Status != "completed" || r.Offset != size || r.Received != size {
		t.Fatalf("after the PATCH: %d %s", code, body)
	}
	tusd.expectStored(t, up, src)
	tusd.expectOnly(t, direct, c)
}

// Status requests that cannot be answered are refused with
// {"error":…}; a watcher of an unknown upload gets its not_exist reply
// before the WebSocket upgrade.
func TestTusStatusRefusals(t *testing.T) {
	tusd, e, _ := startTusdBehindCaddy(t, "protocol tus")

	for _, q := range []string{"", "?upload=/files/a&upload=/files/b"} {
		code, body := e.tusGet("/tus/progress"+q, nil)
		if code != http.StatusBadRequest {
			t.Fatalf("status%s: %d %s, want 400", q, code, body)
		}
		expectErrorReply(t, "status"+q, body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, c := range []struct {
		query string
		code  int
		body  string
	}{
		{"?upload=" + url.QueryEscape("/files/unknown"), http.StatusNotFound, `{"upload":"/files/unknown","status":"not_exist"}`},
		{"", http.StatusBadRequest, ""},
	} {
		conn, resp, err := e.dialWS(ctx, "/tus/progress/ws"+c.query, nil)
		if conn != nil {
			conn.CloseNow()
			t.Fatalf("watcher%s: the handshake succeeded", c.query)
		}
		if resp == nil {
			t.Fatalf("watcher%s: %v", c.query, err)
		}
		b, _ := io.ReadAll(resp.Body)
		body := string(bytes.TrimSpace(b))
		if resp.StatusCode != c.code {
			t.Fatalf("watcher%s: %d %s, want %d", c.query, resp.StatusCode, body, c.code)
		}
		if c.body == "" {
			expectErrorReply(t, "watcher"+c.query, body)
		} else if body != c.body {
			t.Fatalf("watcher%s: %s, want %s", c.query, body, c.body)
		}
	}
	tusd.expectOnly(t)
}

// With owner {http.request.header.Authorization}, an upload's status is
// the uploader's: refused without a credential, not_exist to another one.
func TestTusOwner(t *testing.T) {
	tusd, e, c := startTusdBehindCaddy(t, "protocol tus {\n\towner {http.request.header.Authorization}\n}")

	const size = 1 << 20
	src := pattern(size)
	alice := map[string]string{"Authorization": "Bearer alice"}
	up := c.create(map[string]string{"Upload-Length": fmt.Sprint(size), "Authorization": "Bearer alice"})
	c.patchAll(up, 0, src, alice)

	status := "/tus/progress?upload=" + url.QueryEscape(up)
	code, body := e.tusGet(status, nil)
	if code != http.StatusUnauthorized {
		t.Fatalf("without a credential: %d %s, want 401", code, body)
	}
	expectErrorReply(t, "without a credential", body)
	if code, body := e.tusGet(status, http.Header{"Authorization": {"Bearer mallory"}}); code != http.StatusNotFound || body != fmt.Sprintf(`{"upload":%q,"status":"not_exist"}`, up) {
		t.Fatalf("another credential: %d %s, want 404 not_exist", code, body)
	}
	code, body = e.tusGet(status, http.Header{"Authorization": {"Bearer alice"}})
	var r tusReply
	if err := json.Unmarshal([]byte(body), &r); err != nil || code != 200 || r.Upload != up || r.Status != "completed" || r.Length != size || r.Offset != size {
		t.Fatalf("the uploader's credential: %d %s", code, body)
	}
	tusd.expectOnly(t, c)
}

// mustPath is the path of an upload URL.
func mustPath(t testing.TB, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil || p.Path == "" {
		t.Fatalf("upload URL %q", u)
	}
	return p.Path
}
