package origin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/caddy-upload-progress/caddy-upload-progress/internal/testkit"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// newOrigin starts the handler on a 127.0.0.1 test server. The storage
// directory is a child of a temp dir so tests can also check that nothing
// was written next to it.
func newOrigin(t *testing.T, cfg Config) (ts *httptest.Server, dir string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "store")
	cfg.Dir = dir
	cfg.Logf = t.Logf
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts = httptest.NewServer(s)
	t.Cleanup(func() {
		ts.Close() // waits for handlers, so none logs after the test
		s.Close()
	})
	return ts, dir
}

type request struct {
	method, query string
	header        map[string]string
	body          io.Reader
}

// do sends req to /fso and returns the status, headers and body.
func do(t *testing.T, ts *httptest.Server, req request) (int, http.Header, []byte) {
	t.Helper()
	resp, body := doResp(t, ts, req)
	return resp.StatusCode, resp.Header, body
}

// doResp is do for callers that need the whole response, e.g. resp.Close:
// the client strips "Connection: close" from the headers.
func doResp(t *testing.T, ts *httptest.Server, req request) (*http.Response, []byte) {
	t.Helper()
	if req.method == "" {
		req.method = http.MethodPost
	}
	r, err := http.NewRequest(req.method, ts.URL+"/fso?"+req.query, req.body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range req.header {
		r.Header.Set(k, v)
	}
	resp, err := ts.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func pathQuery(p string) string { return "path=" + url.QueryEscape(p) }

// wantError checks a JSON error reply.
func wantError(t *testing.T, status int, h http.Header, body []byte, wantStatus int, wantMsg string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("status = %d, want %d (body %s)", status, wantStatus, body)
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var e ErrorResponse
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
		t.Fatalf("body %s is not a JSON error (%v)", body, err)
	}
	if wantMsg != "" && e.Error != wantMsg {
		t.Errorf("error = %q, want %q", e.Error, wantMsg)
	}
}

func upload(t *testing.T, ts *httptest.Server, query string, data []byte) StoredFile {
	t.Helper()
	status, _, body := do(t, ts, request{query: query, body: bytes.NewReader(data)})
	if status != http.StatusCreated {
		t.Fatalf("upload %s: status = %d, want 201 (body %s)", query, status, body)
	}
	var f StoredFile
	if err := json.Unmarshal(body, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

func readStored(t *testing.T, dir, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// noTempFiles fails if an upload left a temp file anywhere under dir.
func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".upload-") {
			t.Errorf("temp file left behind: %s", p)
		}
		return nil
	})
}

func TestRawUpload(t *testing.T) {
	ts, dir := newOrigin(t, Config{})
	data := testkit.RandomBytes(3<<20+17, 7)

	status, h, body := do(t, ts, request{
		query:  pathQuery("/a/b//c.bin") + "&informProgress=true",
		body:   bytes.NewReader(data),
		header: map[string]string{"Content-Type": "application/octet-stream"},
	})
	if status != http.StatusCreated {
		t.Fatalf("status = %d, want 201 (body %s)", status, body)
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var got StoredFile
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	want := StoredFile{Path: "/a/b/c.bin", Size: int64(len(data)), SHA256: testkit.SHA256(data)}
	if got != want {
		t.Errorf("reply = %+v, want %+v", got, want)
	}
	if strings.Contains(string(body), `"name"`) {
		t.Errorf("raw upload reply has a name: %s", body)
	}
	if !bytes.Equal(readStored(t, dir, "a/b/c.bin"), data) {
		t.Error("stored bytes differ from the upload")
	}
	noTempFiles(t, dir)

	// GET returns the same bytes.
	status, h, body = do(t, ts, request{method: http.MethodGet, query: pathQuery("/a/b/c.bin")})
	if status != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("GET: status %d, %d bytes, equal=%v", status, len(body), bytes.Equal(body, data))
	}
	if cl := h.Get("Content-Length"); cl != fmt.Sprint(len(data)) {
		t.Errorf("GET Content-Length = %q", cl)
	}
}

func TestOverwrite(t *testing.T) {
	ts, dir := newOrigin(t, Config{})
	upload(t, ts, pathQuery("/f.txt"), []byte("first"))

	status, h, body := do(t, ts, request{query: pathQuery("/f.txt"), body: strings.NewReader("second")})
	wantError(t, status, h, body, http.StatusConflict, "file already exists")
	if got := readStored(t, dir, "f.txt"); string(got) != "first" {
		t.Errorf("after 409 the file holds %q", got)
	}

	// A conflicting upload far larger than net/http drains by itself: the
	// 409 must still reach the client although the body is never read.
	// (net/http lingers ~0.5s before closing such a connection, which is
	// most of this test's run time.)
	big := testkit.RandomBytes(8<<20, 7)
	resp, body := doResp(t, ts, request{query: pathQuery("/f.txt"), body: bytes.NewReader(big)})
	wantError(t, resp.StatusCode, resp.Header, body, http.StatusConflict, "file already exists")
	if !resp.Close {
		t.Error("409 with an unread body should carry Connection: close")
	}

	f := upload(t, ts, pathQuery("/f.txt")+"&overwrite=true", []byte("second"))
	if f.Size != 6 || f.SHA256 != testkit.SHA256([]byte("second")) {
		t.Errorf("overwrite reply = %+v", f)
	}
	if got := readStored(t, dir, "f.txt"); string(got) != "second" {
		t.Errorf("after overwrite the file holds %q", got)
	}

	// Even with overwrite, a directory is not replaced by a file.
	upload(t, ts, pathQuery("/d/x"), []byte("x"))
	status, h, body = do(t, ts, request{query: pathQuery("/d") + "&overwrite=true", body: strings.NewReader("y")})
	wantError(t, status, h, body, http.StatusConflict, "path is a directory")
	// Nor can a file be used as a directory.
	status, h, body = do(t, ts, request{query: pathQuery("/f.txt/y"), body: strings.NewReader("y")})
	wantError(t, status, h, body, http.StatusConflict, "")
	noTempFiles(t, dir)
}

func TestBadPaths(t *testing.T) {
	ts, dir := newOrigin(t, Config{})
	for _, q := range []string{
		"",                            // missing
		"path=",                       // empty
		pathQuery("relative/x"),       // not absolute
		pathQuery("/../outside"),      // traversal
		pathQuery("/a/../../outside"), // traversal after a real segment
		pathQuery("/a/.."),            // cleans to / but is still refused
		pathQuery("/"),                // the root itself
		pathQuery("/a\x00b"),          // NUL byte
		pathQuery(`/a\..\..\x`),       // Windows separators
	} {
		status, h, body := do(t, ts, request{query: q, body: strings.NewReader("data")})
		wantError(t, status, h, body, http.StatusBadRequest, "")
		status, h, body = do(t, ts, request{method: http.MethodGet, query: q})
		wantError(t, status, h, body, http.StatusBadRequest, "")
	}
	entries, _ := os.ReadDir(filepath.Dir(dir))
	if len(entries) != 1 {
		t.Errorf("something was written next to the store: %v", entries)
	}
	entries, _ = os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("store is not empty: %v", entries)
	}
}

func TestMultipart(t *testing.T) {
	ts, dir := newOrigin(t, Config{})
	files := []struct{ filename, stored string }{
		{"one.txt", "one.txt"},
		{"../two.bin", "two.bin"},              // no traversal through the filename
		{`C:\Users\me\three.dat`, "three.dat"}, // client-side Windows path
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("comment", "form fields are skipped")
	var contents [][]byte
	for i, f := range files {
		w, err := mw.CreateFormFile("file", f.filename)
		if err != nil {
			t.Fatal(err)
		}
		c := testkit.RandomBytes(100_000*(i+1), 7)
		c[0] = byte(i) // distinct contents
		contents = append(contents, c)
		_, _ = w.Write(c)
	}
	_ = mw.Close()

	status, _, body := do(t, ts, request{
		query:  pathQuery("/batch"),
		body:   &buf,
		header: map[string]string{"Content-Type": mw.FormDataContentType()},
	})
	if status != http.StatusCreated {
		t.Fatalf("status = %d, want 201 (body %s)", status, body)
	}
	var got MultipartResponse
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Files) != len(files) {
		t.Fatalf("got %d files, want %d: %s", len(got.Files), len(files), body)
	}
	for i, f := range files {
		want := StoredFile{
			Path:   "/batch/" + f.stored,
			Name:   f.stored,
			Size:   int64(len(contents[i])),
			SHA256: testkit.SHA256(contents[i]),
		}
		if got.Files[i] != want {
			t.Errorf("file %d = %+v, want %+v", i, got.Files[i], want)
		}
		if !bytes.Equal(readStored(t, dir, "batch/"+f.stored), contents[i]) {
			t.Errorf("file %d: stored bytes differ", i)
		}
	}
	noTempFiles(t, dir)
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "two.bin")); err == nil {
		t.Error("a filename escaped the store")
	}

	// The same batch again conflicts on the first file.
	buf.Reset()
	mw = multipart.NewWriter(&buf)
	w, _ := mw.CreateFormFile("file", "one.txt")
	_, _ = w.Write([]byte("again"))
	_ = mw.Close()
	status, h, body := do(t, ts, request{
		query:  pathQuery("/batch"),
		body:   &buf,
		header: map[string]string{"Content-Type": mw.FormDataContentType()},
	})
	wantError(t, status, h, body, http.StatusConflict, "file already exists")
}

func TestForcedFailure(t *testing.T) {
	ts, dir := newOrigin(t, Config{})
	resp, body := doResp(t, ts, request{
		query:  pathQuery("/x"),
		body:   bytes.NewReader(testkit.RandomBytes(1<<20, 7)),
		header: map[string]string{FailHeader: "500"},
	})
	wantError(t, resp.StatusCode, resp.Header, body, http.StatusInternalServerError, "forced failure")
	if resp.Close {
		t.Error("forced failure should read the body, keeping the connection reusable")
	}
	status, h, body := do(t, ts, request{query: pathQuery("/x"), header: map[string]string{FailHeader: "200"}})
	wantError(t, status, h, body, http.StatusBadRequest, "")
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("forced failure stored something: %v", entries)
	}
}

func TestDelay(t *testing.T) {
	ts, _ := newOrigin(t, Config{})
	start := time.Now()
	upload(t, ts, pathQuery("/slow"), []byte("x")) // no delay: sanity
	status, _, body := do(t, ts, request{method: http.MethodGet, query: pathQuery("/slow"), header: map[string]string{DelayHeader: "20ms"}})
	if status != http.StatusOK || string(body) != "x" {
		t.Fatalf("delayed GET: %d %q", status, body)
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Errorf("delayed request answered after %s", d)
	}

	status, h, body := do(t, ts, request{method: http.MethodGet, query: pathQuery("/slow"), header: map[string]string{DelayHeader: "soon"}})
	wantError(t, status, h, body, http.StatusBadRequest, "")

	// A client giving up must end the delay: Close waits for handlers, so
	// it would take the whole 30s if the context were ignored.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	r, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/fso?"+pathQuery("/slow"), nil)
	r.Header.Set(DelayHeader, "1h")
	if resp, err := ts.Client().Do(r); err == nil {
		resp.Body.Close()
		t.Fatal("request with 1h delay (clamped to 30s) answered before the client timeout")
	}
	start = time.Now()
	ts.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("handler kept sleeping after the client left (Close took %s)", d)
	}
}

func TestHead(t *testing.T) {
	ts, _ := newOrigin(t, Config{})
	upload(t, ts, pathQuery("/h.bin"), testkit.RandomBytes(1234, 7))

	status, h, body := do(t, ts, request{method: http.MethodHead, query: pathQuery("/h.bin")})
	if status != http.StatusOK || len(body) != 0 {
		t.Fatalf("HEAD: status %d, %d body bytes", status, len(body))
	}
	if cl := h.Get("Content-Length"); cl != "1234" {
		t.Errorf("HEAD Content-Length = %q, want 1234", cl)
	}

	status, _, _ = do(t, ts, request{method: http.MethodHead, query: pathQuery("/missing")})
	if status != http.StatusNotFound {
		t.Errorf("HEAD missing: status %d, want 404", status)
	}
	status, h, body = do(t, ts, request{method: http.MethodGet, query: pathQuery("/missing")})
	wantError(t, status, h, body, http.StatusNotFound, "file not found")
	status, h, body = do(t, ts, request{method: http.MethodGet, query: pathQuery("/h.bin/below")})
	wantError(t, status, h, body, http.StatusNotFound, "file not found")
}

func TestAPIKeys(t *testing.T) {
	ts, _ := newOrigin(t, Config{APIKeys: []string{"k1", "k2"}})
	status, h, body := do(t, ts, request{query: pathQuery("/k"), body: strings.NewReader("x")})
	wantError(t, status, h, body, http.StatusUnauthorized, "missing x-user-api-key header")
	status, h, body = do(t, ts, request{query: pathQuery("/k"), body: strings.NewReader("x"), header: map[string]string{"x-user-api-key": "nope"}})
	wantError(t, status, h, body, http.StatusUnauthorized, "invalid API key")
	status, _, body = do(t, ts, request{query: pathQuery("/k"), body: strings.NewReader("x"), header: map[string]string{"x-user-api-key": "k2"}})
	if status != http.StatusCreated {
		t.Fatalf("with a valid key: status %d (body %s)", status, body)
	}

	// Liveness probes carry no secret.
	resp, err := ts.Client().Get(ts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("healthz with keys configured: %d", resp.StatusCode)
	}

	if _, err := New(Config{Dir: t.TempDir(), APIKeys: []string{""}}); err == nil {
		t.Error("New accepted an empty API key")
	}
}

func TestRoutes(t *testing.T) {
	ts, _ := newOrigin(t, Config{})
	get := func(method, p string) (int, http.Header, []byte) {
		r, _ := http.NewRequest(method, ts.URL+p, nil)
		resp, err := ts.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b
	}

	status, h, body := get(http.MethodGet, "/healthz")
	if status != http.StatusOK || strings.TrimSpace(string(body)) != `{"ok":true}` || h.Get("Content-Type") != "application/json" {
		t.Errorf("healthz: %d %s %q", status, body, h.Get("Content-Type"))
	}
	status, h, body = get(http.MethodGet, "/nope")
	wantError(t, status, h, body, http.StatusNotFound, "not found")
	status, h, body = get(http.MethodPut, "/fso?path=/x")
	wantError(t, status, h, body, http.StatusMethodNotAllowed, "method not allowed")
	if h.Get("Allow") != "GET, HEAD, POST" {
		t.Errorf("Allow = %q", h.Get("Allow"))
	}
	status, h, body = get(http.MethodPost, "/healthz")
	wantError(t, status, h, body, http.StatusMethodNotAllowed, "")
}

// TestAbortedUpload checks that a client vanishing mid-body leaves no file,
// partial or temporary, behind.
func TestAbortedUpload(t *testing.T) {
	ts, dir := newOrigin(t, Config{})
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Expect: 100-continue makes the server say when the handler starts
	// reading the body, so the abort surely happens mid-upload.
	fmt.Fprintf(conn, "POST /fso?path=/part/ial.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n")
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.Contains(line, "100") {
		t.Fatalf("want 100 Continue, got %q (%v)", line, err)
	}
	_, _ = conn.Write(testkit.RandomBytes(5000, 7))
	conn.Close()
	ts.Close() // returns once the handler has finished

	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			return errors.New("left behind: " + p)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}
