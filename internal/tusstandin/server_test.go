package tusstandin

import (
	"crypto/md5"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is a time the test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// start serves a new Server over loopback HTTP until the test ends.
func start(t *testing.T, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	s := New(opts)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts
}

// send makes one request with Tus-Resumable: 1.0.0 and the headers given
// as name, value pairs; a non-empty body is sent as an offset stream. The
// response's body is read and closed.
func send(t *testing.T, ts *httptest.Server, method, path, body string, kv ...string) *http.Response {
	t.Helper()
	resp, err := do(ts, method, path, body, kv...)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// do is send for goroutines other than the test's, which must not Fatal.
func do(ts *httptest.Server, method, path, body string, kv ...string) (*http.Response, error) {
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Tus-Resumable", "1.0.0")
	if body != "" {
		req.Header.Set("Content-Type", offsetStream)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

// want fails the test unless resp has the status and headers (name, value
// pairs) given.
func want(t *testing.T, resp *http.Response, status int, kv ...string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("%s %s: status %d, want %d", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status)
	}
	if got := resp.Header.Get("Tus-Resumable"); got != "1.0.0" {
		t.Errorf("%s %s: Tus-Resumable %q", resp.Request.Method, resp.Request.URL.Path, got)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if got := resp.Header.Get(kv[i]); got != kv[i+1] {
			t.Errorf("%s %s: %s %q, want %q", resp.Request.Method, resp.Request.URL.Path, kv[i], got, kv[i+1])
		}
	}
}

// create makes an upload of length bytes and returns its path.
func create(t *testing.T, ts *httptest.Server, length int) string {
	t.Helper()
	resp := send(t, ts, http.MethodPost, "/files/", "", "Upload-Length", strconv.Itoa(length))
	want(t, resp, http.StatusCreated, "Upload-Offset", "0")
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "/files/") || len(loc) == len("/files/") {
		t.Fatalf("Location %q, want /files/{id}", loc)
	}
	return loc
}

func sha1Of(s string) string {
	d := sha1.Sum([]byte(s))
	return base64.StdEncoding.EncodeToString(d[:])
}
func md5Of(s string) string { d := md5.Sum([]byte(s)); return base64.StdEncoding.EncodeToString(d[:]) }

func TestOptionsAnnouncesExtensions(t *testing.T) {
	_, ts := start(t, Options{})
	req, _ := http.NewRequest(http.MethodOptions, ts.URL+"/files/", nil)
	resp, err := ts.Client().Do(req) // no Tus-Resumable: OPTIONS needs none
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want(t, resp, http.StatusNoContent,
		"Tus-Version", "1.0.0",
		"Tus-Extension", "creation,creation-with-upload,expiration,checksum,termination",
		"Tus-Checksum-Algorithm", "sha1,md5")
}

func TestRequestWithoutTusResumableIs412(t *testing.T) {
	s, ts := start(t, Options{})
	resp, err := ts.Client().Post(ts.URL+"/files/", offsetStream, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want(t, resp, http.StatusPreconditionFailed, "Tus-Version", "1.0.0")
	if n := s.Requests(); n != 1 {
		t.Errorf("Requests = %d, want 1", n)
	}
}

func TestCreateRequiresUploadLength(t *testing.T) {
	_, ts := start(t, Options{})
	want(t, send(t, ts, http.MethodPost, "/files/", ""), http.StatusBadRequest)
	want(t, send(t, ts, http.MethodPost, "/files/", "", "Upload-Length", "-1"), http.StatusBadRequest)
}

func TestUploadInTwoPatches(t *testing.T) {
	s, ts := start(t, Options{})
	resp := send(t, ts, http.MethodPost, "/files", "", "Upload-Length", "11", "Upload-Metadata", "filename aGkudHh0")
	want(t, resp, http.StatusCreated, "Upload-Offset", "0", "Upload-Expires", "")
	loc := resp.Header.Get("Location")
	id := strings.TrimPrefix(loc, "/files/")

	want(t, send(t, ts, http.MethodPatch, loc, "hello ", "Upload-Offset", "0"), http.StatusNoContent, "Upload-Offset", "6")
	want(t, send(t, ts, http.MethodHead, loc, ""), http.StatusOK,
		"Upload-Offset", "6", "Upload-Length", "11", "Cache-Control", "no-store", "Upload-Metadata", "filename aGkudHh0")
	want(t, send(t, ts, http.MethodPatch, loc, "world", "Upload-Offset", "6"), http.StatusNoContent, "Upload-Offset", "11")

	if data, ok := s.Data(id); !ok || string(data) != "hello world" {
		t.Errorf("Data = %q, %v; want \"hello world\"", data, ok)
	}
	if n := s.Requests(); n != 4 {
		t.Errorf("Requests = %d, want 4", n)
	}
}

func TestPatchRefusals(t *testing.T) {
	_, ts := start(t, Options{})
	loc := create(t, ts, 5)
	want(t, send(t, ts, http.MethodPatch, loc, "abc", "Upload-Offset", "1"), http.StatusConflict)
	want(t, send(t, ts, http.MethodPatch, loc, "abc"), http.StatusBadRequest) // no Upload-Offset
	want(t, send(t, ts, http.MethodPatch, loc, "abc", "Upload-Offset", "0", "Content-Type", "text/plain"),
		http.StatusUnsupportedMediaType)
	want(t, send(t, ts, http.MethodPatch, loc, "abcdef", "Upload-Offset", "0"), http.StatusRequestEntityTooLarge)
	want(t, send(t, ts, http.MethodHead, loc, ""), http.StatusOK, "Upload-Offset", "0")
	want(t, send(t, ts, http.MethodHead, "/files/nosuch", ""), http.StatusNotFound)
	want(t, send(t, ts, http.MethodPatch, "/files/nosuch", "a", "Upload-Offset", "0"), http.StatusNotFound)
	want(t, send(t, ts, http.MethodHead, "/elsewhere/x", ""), http.StatusNotFound)
	want(t, send(t, ts, http.MethodGet, loc, ""), http.StatusMethodNotAllowed)
}

func TestChecksum(t *testing.T) {
	s, ts := start(t, Options{})
	loc := create(t, ts, 11)
	id := strings.TrimPrefix(loc, "/files/")

	// A mismatch answers 460 and stores nothing.
	want(t, send(t, ts, http.MethodPatch, loc, "hello ", "Upload-Offset", "0", "Upload-Checksum", "sha1 "+sha1Of("hellO ")),
		statusChecksumMismatch)
	want(t, send(t, ts, http.MethodHead, loc, ""), http.StatusOK, "Upload-Offset", "0")
	if data, _ := s.Data(id); len(data) != 0 {
		t.Errorf("after 460, Data = %q, want nothing", data)
	}

	// Unknown algorithms and undecodable digests are 400.
	want(t, send(t, ts, http.MethodPatch, loc, "hello ", "Upload-Offset", "0", "Upload-Checksum", "crc32 AAAAAA=="),
		http.StatusBadRequest)
	want(t, send(t, ts, http.MethodPatch, loc, "hello ", "Upload-Offset", "0", "Upload-Checksum", "sha1 !!"),
		http.StatusBadRequest)

	// Matching sha1, then md5 (the spec's own example digest for the sha1 of "hello world").
	if sha1Of("hello world") != "Kq5sNclPz7QV2+lfQIuc6R7oRu0=" {
		t.Fatal("sha1Of disagrees with the tus spec's example")
	}
	want(t, send(t, ts, http.MethodPatch, loc, "hello ", "Upload-Offset", "0", "Upload-Checksum", "sha1 "+sha1Of("hello ")),
		http.StatusNoContent, "Upload-Offset", "6")
	want(t, send(t, ts, http.MethodPatch, loc, "world", "Upload-Offset", "6", "Upload-Checksum", "md5 "+md5Of("world")),
		http.StatusNoContent, "Upload-Offset", "11")
	if data, _ := s.Data(id); string(data) != "hello world" {
		t.Errorf("Data = %q, want \"hello world\"", data)
	}
}

func TestExpiryByClock(t *testing.T) {
	c := &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	_, ts := start(t, Options{Expiry: time.Hour, Now: c.Now})
	deadline := "Wed, 02 Jan 2030 04:04:05 GMT"

	resp := send(t, ts, http.MethodPost, "/files/", "", "Upload-Length", "4")
	want(t, resp, http.StatusCreated, "Upload-Expires", deadline)
	loc := resp.Header.Get("Location")
	done := create(t, ts, 2)
	want(t, send(t, ts, http.MethodPatch, done, "ok", "Upload-Offset", "0"), http.StatusNoContent, "Upload-Expires", "")

	// The deadline counts from the creation, not from the last PATCH.
	c.Advance(30 * time.Minute)
	want(t, send(t, ts, http.MethodPatch, loc, "ab", "Upload-Offset", "0"), http.StatusNoContent,
		"Upload-Offset", "2", "Upload-Expires", deadline)
	c.Advance(29 * time.Minute)
	want(t, send(t, ts, http.MethodHead, loc, ""), http.StatusOK, "Upload-Expires", deadline)

	c.Advance(time.Minute)
	want(t, send(t, ts, http.MethodHead, loc, ""), http.StatusGone)
	want(t, send(t, ts, http.MethodPatch, loc, "cd", "Upload-Offset", "2"), http.StatusGone)
	want(t, send(t, ts, http.MethodHead, done, ""), http.StatusOK, "Upload-Offset", "2") // complete: never expires
}

func TestExpire(t *testing.T) {
	s, ts := start(t, Options{})
	loc := create(t, ts, 4)
	id := strings.TrimPrefix(loc, "/files/")
	if !s.Expire(id) {
		t.Fatal("Expire of an existing upload reported false")
	}
	if s.Expire("nosuch") {
		t.Error("Expire of a missing upload reported true")
	}
	want(t, send(t, ts, http.MethodHead, loc, ""), http.StatusGone)
	want(t, send(t, ts, http.MethodPatch, loc, "ab", "Upload-Offset", "0"), http.StatusGone)
	if _, ok := s.Data(id); !ok {
		t.Error("Data of an expired upload: gone, want kept")
	}
}

func TestTermination(t *testing.T) {
	s, ts := start(t, Options{})
	loc := create(t, ts, 4)
	want(t, send(t, ts, http.MethodDelete, loc, ""), http.StatusNoContent)
	want(t, send(t, ts, http.MethodHead, loc, ""), http.StatusNotFound)
	want(t, send(t, ts, http.MethodDelete, loc, ""), http.StatusNotFound)
	if _, ok := s.Data(strings.TrimPrefix(loc, "/files/")); ok {
		t.Error("Data of a terminated upload still there")
	}
}

func TestCreationWithUpload(t *testing.T) {
	s, ts := start(t, Options{Expiry: time.Hour})
	resp := send(t, ts, http.MethodPost, "/files/", "hello", "Upload-Length", "11")
	want(t, resp, http.StatusCreated, "Upload-Offset", "5")
	if resp.Header.Get("Upload-Expires") == "" {
		t.Error("unfinished upload created without Upload-Expires")
	}
	loc := resp.Header.Get("Location")
	want(t, send(t, ts, http.MethodPatch, loc, " world", "Upload-Offset", "5"), http.StatusNoContent, "Upload-Offset", "11")
	if data, _ := s.Data(strings.TrimPrefix(loc, "/files/")); string(data) != "hello world" {
		t.Errorf("Data = %q, want \"hello world\"", data)
	}

	// A whole upload in the POST; a bad checksum or body creates nothing.
	want(t, send(t, ts, http.MethodPost, "/files/", "hi", "Upload-Length", "2"), http.StatusCreated,
		"Upload-Offset", "2", "Upload-Expires", "")
	for _, resp := range []*http.Response{
		send(t, ts, http.MethodPost, "/files/", "hi", "Upload-Length", "2", "Upload-Checksum", "sha1 "+sha1Of("ho")),
		send(t, ts, http.MethodPost, "/files/", "hi!", "Upload-Length", "2"),
	} {
		if resp.StatusCode != statusChecksumMismatch && resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("bad creation-with-upload: status %d", resp.StatusCode)
		}
		if loc := resp.Header.Get("Location"); loc != "" {
			t.Errorf("bad creation-with-upload created %s", loc)
		}
	}
	s.mu.Lock()
	n := len(s.uploads)
	s.mu.Unlock()
	if n != 2 {
		t.Errorf("%d uploads, want 2", n)
	}
}

func TestBasePathAndAbsoluteLocation(t *testing.T) {
	_, ts := start(t, Options{BasePath: "/up", AbsoluteLocation: true})
	resp := send(t, ts, http.MethodPost, "/up/", "", "Upload-Length", "1")
	want(t, resp, http.StatusCreated)
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, ts.URL+"/up/") {
		t.Fatalf("Location %q, want under %s/up/", loc, ts.URL)
	}
	want(t, send(t, ts, http.MethodHead, strings.TrimPrefix(loc, ts.URL), ""), http.StatusOK, "Upload-Length", "1")
	want(t, send(t, ts, http.MethodPost, "/files/", "", "Upload-Length", "1"), http.StatusNotFound)
}

// TestConcurrentPatches races PATCHes at the same offset: exactly one
// wins each round, the others answer 409, and the bytes are whole.
func TestConcurrentPatches(t *testing.T) {
	s, ts := start(t, Options{})
	const rounds, racers = 20, 4
	loc := create(t, ts, rounds)
	for round := range rounds {
		var wg sync.WaitGroup
		codes := make([]int, racers)
		for i := range racers {
			wg.Go(func() {
				resp, err := do(ts, http.MethodPatch, loc, "x", "Upload-Offset", strconv.Itoa(round))
				if err != nil {
					t.Error(err)
					return
				}
				codes[i] = resp.StatusCode
			})
		}
		wg.Wait()
		won := 0
		for _, c := range codes {
			switch c {
			case http.StatusNoContent:
				won++
			case http.StatusConflict:
			default:
				t.Fatalf("round %d: status %d", round, c)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d PATCHes won, want 1", round, won)
		}
	}
	if data, _ := s.Data(strings.TrimPrefix(loc, "/files/")); string(data) != strings.Repeat("x", rounds) {
		t.Errorf("Data = %q", data)
	}
}
