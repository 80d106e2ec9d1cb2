package origin

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/testkit"
)

const (
	sbToken = "token-a"
	sbOther = "token-b"
	mib     = 1 << 20
)

// fakeClock is a sandbox clock tests move by hand; with step set, every
// reading also moves it on by step, so each change of a session has a
// time of its own.
type fakeClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func newFakeClock(step time.Duration) *fakeClock {
	return &fakeClock{t: time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC), step: step}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// sandboxOrigin starts an origin as newOrigin does, and returns its
// Server too.
func sandboxOrigin(t *testing.T, cfg Config) (*httptest.Server, string, *Server) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "store")
	cfg.Dir = dir
	cfg.Logf = t.Logf
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return ts, dir, s
}

// sbClient speaks to the sandbox sb_test of an origin with a token.
type sbClient struct {
	t     *testing.T
	ts    *httptest.Server
	token string
}

func (c sbClient) uploads() string { return "/v1/sandboxes/sb_test/uploads" }

// send sends a request and returns the answer; it may run outside the
// test's goroutine. size is the body's Content-Length, -1 to send it
// chunked.
func (c sbClient) send(method, target string, body io.Reader, size int64) (*http.Response, []byte, error) {
	r, err := http.NewRequest(method, c.ts.URL+target, body)
	if err != nil {
		return nil, nil, err
	}
	if body != nil {
		r.ContentLength = size
	}
	if c.token != "" {
		r.Header.Set("Authorization", "Bearer "+c.token)
	}
	return fetch(c.ts, r)
}

func (c sbClient) do(method, target string, body []byte) (*http.Response, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	resp, b, err := c.send(method, target, rd, int64(len(body)))
	if err != nil {
		c.t.Fatal(err)
	}
	return resp, b
}

// create creates a session with the fields of req and wants 201.
func (c sbClient) create(req map[string]any) SandboxUpload {
	c.t.Helper()
	body, _ := json.Marshal(req)
	resp, b := c.do(http.MethodPost, c.uploads(), body)
	if resp.StatusCode != http.StatusCreated {
		c.t.Fatalf("create %s: %s %s", body, resp.Status, b)
	}
	up := decodeUpload(c.t, b)
	if loc := resp.Header.Get("Location"); loc != c.uploads()+"/"+up.UploadID {
		c.t.Errorf("Location = %q", loc)
	}
	return up
}

func (c sbClient) session(id string) string { return c.uploads() + "/" + id }

func (c sbClient) part(id string, n int) string {
	return fmt.Sprintf("%s/%s/parts/%d", c.uploads(), id, n)
}

// put sends part n and wants 200.
func (c sbClient) put(id string, n int, data []byte) SandboxUpload {
	c.t.Helper()
	resp, b := c.do(http.MethodPut, c.part(id, n), data)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("part %d: %s %s", n, resp.Status, b)
	}
	return decodeUpload(c.t, b)
}

// get asks for the session and wants 200.
func (c sbClient) get(id string) SandboxUpload {
	c.t.Helper()
	resp, b := c.do(http.MethodGet, c.session(id), nil)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("GET %s: %s %s", id, resp.Status, b)
	}
	return decodeUpload(c.t, b)
}

// complete asks to complete the session (query "" or "?mode=…") and wants
// status.
func (c sbClient) complete(id, query string, status int) SandboxUpload {
	c.t.Helper()
	resp, b := c.do(http.MethodPost, c.session(id)+"/complete"+query, nil)
	if resp.StatusCode != status {
		c.t.Fatalf("complete: %s %s, want %d", resp.Status, b, status)
	}
	return decodeUpload(c.t, b)
}

// wantSbError checks a sandbox error answer: its status, its code, its shape.
func wantSbError(t *testing.T, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s %s: %s %s, want %d %s", resp.Request.Method, resp.Request.URL.Path, resp.Status, body, status, code)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var e SandboxErrorResponse
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Message == "" {
		t.Fatalf("%s is not a sandbox error (%v)", body, err)
	}
	if e.Error.Code != code {
		t.Errorf("error code = %q (%s), want %q", e.Error.Code, e.Error.Message, code)
	}
}

func decodeUpload(t *testing.T, b []byte) SandboxUpload {
	t.Helper()
	var up SandboxUpload
	if err := json.Unmarshal(b, &up); err != nil || up.UploadID == "" {
		t.Fatalf("%s is not an upload session (%v)", b, err)
	}
	return up
}

func fileRequest(target string, length, partSize int) map[string]any {
	return map[string]any{"target_path": target, "content_length": length, "part_size": partSize, "kind": "file", "conflict": "error"}
}

// stagingEmpty checks that no session's parts are left in SandboxDir.
func stagingEmpty(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, SandboxDir))
	if err != nil || len(entries) > 0 {
		t.Errorf("staging directory holds %v (%v)", entries, err)
	}
}

// holdPart starts sending part n of id and returns once the origin reads
// its body, that is once it counts the part as under way.
func holdPart(c sbClient, id string, n int, data []byte) *heldRequest {
	c.t.Helper()
	return holdRequest(c.t, fmt.Sprintf("part %d", n), http.MethodPut, c.ts.URL+c.part(id, n), data, "Authorization", "Bearer "+c.token)
}

// The whole flow as a client sends it: a 4 MiB file in four 1 MiB parts,
// two at a time, one of them sent twice, completed asynchronously and
// watched by polling the status until it completed.
func TestSandboxFlow(t *testing.T) {
	clock := newFakeClock(time.Second)
	ts, dir, _ := sandboxOrigin(t, Config{Now: clock.Now, SandboxCompleteDelay: 50 * time.Millisecond})
	c := sbClient{t, ts, sbToken}
	data := testkit.RandomBytes(4*mib, 3)
	part := func(n int) []byte { return data[(n-1)*mib : n*mib] }

	up := c.create(map[string]any{"target_path": "/dir//big.bin", "content_length": 4 * mib, "part_size": mib,
		"kind": "file", "conflict": "error", "max_concurrency": 2})
	want := SandboxUpload{
		UploadID: up.UploadID, Kind: "file", SourceKind: "restartable_file", TargetPath: "/dir/big.bin",
		ContentLength: 4 * mib, ReservedStagingBytes: 4 * mib, PartSize: mib, PartCount: 4, MaxConcurrency: 2,
		Status: "created", Conflict: "error", ChecksumAlgorithm: "sha256", Limits: DefaultSandboxLimits,
		CreatedAt: up.CreatedAt, UpdatedAt: up.CreatedAt, ExpiresAt: up.CreatedAt.Add(time.Hour), NextPart: 1,
	}
	if !strings.HasPrefix(up.UploadID, "up_") || up != want {
		t.Fatalf("created\n%+v\nwant\n%+v", up, want)
	}
	if up.CreatedAt.Location() != time.UTC {
		t.Errorf("created_at %s is not UTC", up.CreatedAt)
	}

	// Parts 1 and 2 stream side by side: the origin says nothing of them
	// until they are whole, and a third part at once is one too many.
	p1, p2 := holdPart(c, up.UploadID, 1, part(1)), holdPart(c, up.UploadID, 2, part(2))
	if got := c.get(up.UploadID); got.Status != "created" || got.AcceptedBytes != 0 {
		t.Errorf("while parts stream: %s, %d bytes accepted", got.Status, got.AcceptedBytes)
	}
	resp, b := c.do(http.MethodPut, c.part(up.UploadID, 3), part(3))
	wantSbError(t, resp, b, http.StatusTooManyRequests, SandboxTooManyPartsCode)
	for i, h := range []*heldRequest{p1, p2} {
		if err := h.release(); err != nil {
			t.Fatalf("part %d: %v", i+1, err)
		}
	}
	got := c.get(up.UploadID)
	if got.Status != "uploading" || got.AcceptedBytes != 2*mib || got.NextPart != 3 || !got.UpdatedAt.After(up.UpdatedAt) {
		t.Fatalf("after parts 1 and 2: %+v", got)
	}

	// Parts 4 and 3, out of order, at the same time.
	send := func(n int) func() error {
		return func() error {
			resp, b, err := c.send(http.MethodPut, c.part(up.UploadID, n), bytes.NewReader(part(n)), mib)
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("part %d: %s %s", n, resp.Status, b)
			}
			return err
		}
	}
	atOnce(t, send(4), send(3))
	staged := c.get(up.UploadID)
	if staged.Status != "staged" || staged.AcceptedBytes != 4*mib || staged.NextPart != 0 {
		t.Fatalf("all parts in: %+v", staged)
	}

	// Part 2 sent again replaces the first one and counts once.
	again := c.put(up.UploadID, 2, part(2))
	if again.Status != "staged" || again.AcceptedBytes != 4*mib || !again.UpdatedAt.After(staged.UpdatedAt) {
		t.Fatalf("part 2 again: %+v", again)
	}

	completing := c.complete(up.UploadID, "", http.StatusAccepted)
	if completing.Status != "completing" || completing.WholeChecksumSHA256 != "" {
		t.Fatalf("complete answered %+v", completing)
	}
	var done SandboxUpload
	deadline := time.Now().Add(5 * time.Second)
	for done = c.get(up.UploadID); done.Status == "completing" && time.Now().Before(deadline); done = c.get(up.UploadID) {
		time.Sleep(10 * time.Millisecond)
	}
	if done.Status != "completed" || done.WholeChecksumSHA256 != testkit.SHA256(data) ||
		done.ReservedStagingBytes != 0 || done.AcceptedBytes != 4*mib || !done.UpdatedAt.After(completing.UpdatedAt) {
		t.Fatalf("after completion: %+v", done)
	}
	if !bytes.Equal(readStored(t, dir, "dir/big.bin"), data) {
		t.Error("the stored file is not the upload")
	}
	stagingEmpty(t, dir)
	// Completing again says how it stands; parts are over.
	if again := c.complete(up.UploadID, "", http.StatusOK); again != done {
		t.Errorf("completed again: %+v", again)
	}
	resp, b = c.do(http.MethodPut, c.part(up.UploadID, 1), part(1))
	wantSbError(t, resp, b, http.StatusConflict, SandboxInvalidStateCode)
}

// Parts of the wrong size, or over max_part_bytes, are refused and leave
// the session as it was; the same part sent right is then taken.
func TestSandboxPartRefusals(t *testing.T) {
	ts, dir, _ := sandboxOrigin(t, Config{SandboxLimits: SandboxLimits{MaxPartBytes: mib}})
	c := sbClient{t, ts, sbToken}
	up := c.create(fileRequest("/p.bin", 2*mib+10, mib))
	if up.PartCount != 3 || up.Limits.MaxPartBytes != mib || up.Limits.MaxUploadBytes != DefaultSandboxLimits.MaxUploadBytes {
		t.Fatalf("created %+v", up)
	}
	data := testkit.RandomBytes(2*mib+10, 5)
	tooBig := testkit.RandomBytes(mib+1, 6)

	// Over max_part_bytes, said by Content-Length or found on reading.
	resp, b := c.do(http.MethodPut, c.part(up.UploadID, 1), tooBig)
	wantSbError(t, resp, b, http.StatusRequestEntityTooLarge, SandboxPartTooLargeCode)
	resp, b, err := c.send(http.MethodPut, c.part(up.UploadID, 2), io.MultiReader(bytes.NewReader(tooBig), strings.NewReader("and more")), -1)
	if err != nil {
		t.Fatal(err)
	}
	wantSbError(t, resp, b, http.StatusRequestEntityTooLarge, SandboxPartTooLargeCode)
	if got := c.get(up.UploadID); got.Status != "created" || got.AcceptedBytes != 0 || got.NextPart != 1 {
		t.Fatalf("after refused parts: %+v", got)
	}
	if got := c.put(up.UploadID, 1, data[:mib]); got.AcceptedBytes != mib || got.Status != "uploading" || got.NextPart != 2 {
		t.Fatalf("part 1 resent: %+v", got)
	}

	// The last part is the rest: 10 bytes, not 11 nor 9.
	resp, b = c.do(http.MethodPut, c.part(up.UploadID, 3), data[2*mib-1:])
	wantSbError(t, resp, b, http.StatusBadRequest, SandboxPartSizeCode)
	resp, b, err = c.send(http.MethodPut, c.part(up.UploadID, 3), io.MultiReader(bytes.NewReader(data[2*mib+1:])), -1)
	if err != nil {
		t.Fatal(err)
	}
	wantSbError(t, resp, b, http.StatusBadRequest, SandboxPartSizeCode)
	if got := c.put(up.UploadID, 3, data[2*mib:]); got.AcceptedBytes != mib+10 || got.NextPart != 2 {
		t.Fatalf("part 3: %+v", got)
	}
	for _, n := range []string{"0", "4", "x", "-1"} {
		resp, b := c.do(http.MethodPut, c.uploads()+"/"+up.UploadID+"/parts/"+n, []byte("x"))
		wantSbError(t, resp, b, http.StatusBadRequest, SandboxInvalidPartCode)
	}
	resp, b = c.do(http.MethodPost, c.session(up.UploadID)+"/complete", nil)
	wantSbError(t, resp, b, http.StatusConflict, SandboxPartsMissingCode)

	c.put(up.UploadID, 2, data[mib:2*mib])
	if done := c.complete(up.UploadID, "?mode=sync", http.StatusOK); done.WholeChecksumSHA256 != testkit.SHA256(data) {
		t.Fatalf("completed %+v", done)
	}
	if !bytes.Equal(readStored(t, dir, "p.bin"), data) {
		t.Error("the stored file is not the upload")
	}
	stagingEmpty(t, dir)
}

// A creation is checked field by field; a taken target with conflict
// "error" and a sandbox over its staging quota are refused.
func TestSandboxCreateRefusals(t *testing.T) {
	ts, _, _ := sandboxOrigin(t, Config{SandboxLimits: SandboxLimits{StagingQuotaBytes: 10 * mib}})
	c := sbClient{t, ts, sbToken}
	for _, body := range []string{
		`not json`,
		`{"target_path":"/a","content_length":1,"part_size":1,"kind":"file","conflict":"error"} {}`,
		`{"content_length":1,"part_size":1,"kind":"file","conflict":"error"}`,
		`{"target_path":"/a","part_size":1,"kind":"file","conflict":"error"}`,
		`{"target_path":"/a","content_length":1,"kind":"file","conflict":"error"}`,
		`{"target_path":"/a","content_length":1,"part_size":1,"conflict":"error"}`,
		`{"target_path":"/a","content_length":1,"part_size":1,"kind":"file"}`,
		`{"target_path":"a","content_length":1,"part_size":1,"kind":"file","conflict":"error"}`,
		`{"target_path":"/","content_length":1,"part_size":1,"kind":"file","conflict":"error"}`,
		`{"target_path":"/.sandbox/x","content_length":1,"part_size":1,"kind":"file","conflict":"error"}`,
		`{"target_path":"/a","content_length":-1,"part_size":1,"kind":"file","conflict":"error"}`,
		`{"target_path":"/a","content_length":1,"part_size":0,"kind":"file","conflict":"error"}`,
		`{"target_path":"/a","content_length":1,"part_size":67108865,"kind":"file","conflict":"error"}`,
		`{"target_path":"/a","content_length":1073741825,"part_size":1,"kind":"file","conflict":"error"}`,
		`{"target_path":"/a","content_length":10001,"part_size":1,"kind":"file","conflict":"error"}`,
		`{"target_path":"/a","content_length":1,"part_size":1,"kind":"dir","conflict":"error"}`,
		`{"target_path":"/a","content_length":1,"part_size":1,"kind":"file","conflict":"skip"}`,
		`{"target_path":"/a","content_length":1,"part_size":1,"kind":"file","conflict":"error","max_concurrency":0}`,
		`{"target_path":"/a","content_length":1,"part_size":1,"kind":"file","conflict":"error","max_concurrency":9}`,
		`{"target_path":"/a","content_length":1,"part_size":1,"kind":"file","conflict":"error","archive_format":"tar"}`,
		`{"target_path":"/a","content_length":1,"part_size":1,"kind":"directory_tar","conflict":"error","archive_format":"zip"}`,
	} {
		resp, b := c.do(http.MethodPost, c.uploads(), []byte(body))
		wantSbError(t, resp, b, http.StatusBadRequest, SandboxInvalidRequestCode)
	}

	up := c.create(fileRequest("/taken", 1, 1))
	c.put(up.UploadID, 1, []byte("x"))
	c.complete(up.UploadID, "?mode=sync", http.StatusOK)
	resp, b := c.do(http.MethodPost, c.uploads(), []byte(`{"target_path":"/taken","content_length":1,"part_size":1,"kind":"file","conflict":"error"}`))
	wantSbError(t, resp, b, http.StatusConflict, SandboxTargetExistsCode)

	// The quota counts the open sessions of the sandbox: 6 MiB reserved,
	// 5 more do not fit, 4 do; another sandbox has a quota of its own.
	c.create(fileRequest("/q1", 6*mib, mib))
	body := []byte(`{"target_path":"/q2","content_length":5242880,"part_size":1048576,"kind":"file","conflict":"replace"}`)
	resp, b = c.do(http.MethodPost, c.uploads(), body)
	wantSbError(t, resp, b, http.StatusInsufficientStorage, SandboxQuotaCode)
	if resp, b := c.do(http.MethodPost, "/v1/sandboxes/sb_other/uploads", body); resp.StatusCode != http.StatusCreated {
		t.Errorf("another sandbox: %s %s", resp.Status, b)
	}
	c.create(fileRequest("/q3", 4*mib, mib))

	resp, b = c.do(http.MethodGet, c.uploads(), nil)
	wantSbError(t, resp, b, http.StatusMethodNotAllowed, SandboxMethodCode)
	if resp.Header.Get("Allow") != http.MethodPost {
		t.Errorf("Allow = %q", resp.Header.Get("Allow"))
	}
	for _, p := range []string{"/v1/sandboxes/sb_test", "/v1/sandboxes/sb_test/uploads/", "/v1/sandboxes/sb_test/uploads/x/parts", "/v1/sandboxes//uploads"} {
		resp, b := c.do(http.MethodGet, p, nil)
		wantSbError(t, resp, b, http.StatusNotFound, SandboxNotFoundCode)
	}
}

// Every request needs a bearer token, and a session answers only to the
// token that created it: to another one it does not exist.
func TestSandboxTokens(t *testing.T) {
	ts, _, _ := sandboxOrigin(t, Config{APIKeys: []string{sbToken, sbOther}})
	c := sbClient{t, ts, sbToken}
	up := c.create(fileRequest("/t.bin", 2, 1))

	for _, auth := range []string{"", "Basic dTpw", "Bearer ", "Bearer unknown"} {
		r, _ := http.NewRequest(http.MethodGet, ts.URL+c.session(up.UploadID), nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		resp, err := ts.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantSbError(t, resp, b, http.StatusUnauthorized, SandboxUnauthorizedCode)
		if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
		}
	}

	other := sbClient{t, ts, sbOther}
	for _, req := range []struct {
		method, target string
		body           []byte
	}{
		{http.MethodGet, other.session(up.UploadID), nil},
		{http.MethodPut, other.part(up.UploadID, 1), []byte("x")},
		{http.MethodPost, other.session(up.UploadID) + "/complete", nil},
		{http.MethodDelete, other.session(up.UploadID), nil},
		{http.MethodGet, "/v1/sandboxes/sb_elsewhere/uploads/" + up.UploadID, nil},
	} {
		resp, b := other.do(req.method, req.target, req.body)
		wantSbError(t, resp, b, http.StatusNotFound, SandboxNotFoundCode)
	}
	resp, b := c.do(http.MethodGet, "/v1/sandboxes/sb_elsewhere/uploads/"+up.UploadID, nil)
	wantSbError(t, resp, b, http.StatusNotFound, SandboxNotFoundCode)
	if got := c.get(up.UploadID); got.Status != "created" || got.AcceptedBytes != 0 {
		t.Errorf("the other token changed the session: %+v", got)
	}
}

// An aborted session keeps answering, aborted, and takes nothing more; its
// parts are gone and nothing is stored.
func TestSandboxAbort(t *testing.T) {
	ts, dir, _ := sandboxOrigin(t, Config{})
	c := sbClient{t, ts, sbToken}
	up := c.create(fileRequest("/gone.bin", 4, 2))
	c.put(up.UploadID, 1, []byte("ab"))

	resp, b := c.do(http.MethodDelete, c.session(up.UploadID), nil)
	if resp.StatusCode != http.StatusNoContent || len(b) != 0 {
		t.Fatalf("DELETE: %s %q", resp.Status, b)
	}
	got := c.get(up.UploadID)
	if got.Status != "aborted" || got.ReservedStagingBytes != 0 || got.AcceptedBytes != 2 {
		t.Fatalf("aborted: %+v", got)
	}
	resp, b = c.do(http.MethodPut, c.part(up.UploadID, 2), []byte("cd"))
	wantSbError(t, resp, b, http.StatusConflict, SandboxInvalidStateCode)
	resp, b = c.do(http.MethodPost, c.session(up.UploadID)+"/complete", nil)
	wantSbError(t, resp, b, http.StatusConflict, SandboxInvalidStateCode)
	if resp, _ := c.do(http.MethodDelete, c.session(up.UploadID), nil); resp.StatusCode != http.StatusNoContent {
		t.Errorf("DELETE again: %s", resp.Status)
	}
	stagingEmpty(t, dir)
	if _, err := os.Stat(filepath.Join(dir, "gone.bin")); !os.IsNotExist(err) {
		t.Errorf("the aborted upload was stored (%v)", err)
	}

	// A completed session cannot be aborted.
	up = c.create(fileRequest("/kept.bin", 1, 1))
	c.put(up.UploadID, 1, []byte("k"))
	c.complete(up.UploadID, "?mode=sync", http.StatusOK)
	resp, b = c.do(http.MethodDelete, c.session(up.UploadID), nil)
	wantSbError(t, resp, b, http.StatusConflict, SandboxInvalidStateCode)
}

// makeTar is a tar archive of files (name → content), in the order given.
func makeTar(t *testing.T, files ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i+1 < len(files); i += 2 {
		if err := tw.WriteHeader(&tar.Header{Name: files[i], Mode: 0o644, Size: int64(len(files[i+1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(files[i+1]))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sendAll sends data as the session's parts.
func (c sbClient) sendAll(up SandboxUpload, data []byte) {
	c.t.Helper()
	for n := 1; n <= int(up.PartCount); n++ {
		c.put(up.UploadID, n, data[(n-1)*int(up.PartSize):min(n*int(up.PartSize), len(data))])
	}
}

// With synchronous completion the answer is the completed session, or
// the error that failed it; a directory_tar upload is unpacked at its
// target as its conflict policy says.
func TestSandboxSyncCompletion(t *testing.T) {
	ts, dir, _ := sandboxOrigin(t, Config{SandboxCompletion: "sync"})
	c := sbClient{t, ts, sbToken}
	archive := makeTar(t, "site/index.html", "<h1>hi</h1>", "site/css/a.css", "body{}")
	dirRequest := func(conflict string) map[string]any {
		return map[string]any{"target_path": "/www", "content_length": len(archive), "part_size": 1000,
			"kind": "directory_tar", "conflict": conflict, "archive_format": "tar"}
	}
	up := c.create(dirRequest("error"))
	if up.SourceKind != "directory_archive" || up.ArchiveFormat != "tar" {
		t.Fatalf("created %+v", up)
	}
	c.sendAll(up, archive)
	done := c.complete(up.UploadID, "", http.StatusOK)
	if done.Status != "completed" || done.WholeChecksumSHA256 != testkit.SHA256(archive) {
		t.Fatalf("completed %+v", done)
	}
	if got := string(readStored(t, dir, "www/site/css/a.css")); got != "body{}" {
		t.Errorf("a.css holds %q", got)
	}

	// merge adds to the directory, replace starts it anew.
	extra := makeTar(t, "site/new.txt", "new", "site/index.html", "v2")
	up = c.create(map[string]any{"target_path": "/www", "content_length": len(extra), "part_size": len(extra), "kind": "directory_tar", "conflict": "merge"})
	c.sendAll(up, extra)
	c.complete(up.UploadID, "", http.StatusOK)
	if a, b := string(readStored(t, dir, "www/site/css/a.css")), string(readStored(t, dir, "www/site/index.html")); a != "body{}" || b != "v2" {
		t.Errorf("after merge: a.css %q, index.html %q", a, b)
	}
	up = c.create(map[string]any{"target_path": "/www", "content_length": len(extra), "part_size": len(extra), "kind": "directory_tar", "conflict": "replace"})
	c.sendAll(up, extra)
	c.complete(up.UploadID, "", http.StatusOK)
	if _, err := os.Stat(filepath.Join(dir, "www/site/css")); !os.IsNotExist(err) {
		t.Errorf("replace kept the old directory's files (%v)", err)
	}

	// A target taken between creation and completion fails the session.
	up = c.create(fileRequest("/late.bin", 3, 3))
	c.sendAll(up, []byte("abc"))
	if err := os.WriteFile(filepath.Join(dir, "late.bin"), []byte("first"), 0o644); err != nil {
		t.Fatal(err)
	}
	resp, b := c.do(http.MethodPost, c.session(up.UploadID)+"/complete", nil)
	wantSbError(t, resp, b, http.StatusConflict, SandboxTargetConflictCode)
	if got := c.get(up.UploadID); got.Status != "failed" || got.ReservedStagingBytes != 0 || got.WholeChecksumSHA256 != "" {
		t.Errorf("after a failed completion: %+v", got)
	}
	// So does an archive that is not one.
	up = c.create(map[string]any{"target_path": "/junk", "content_length": 600, "part_size": 600, "kind": "directory_tar", "conflict": "error"})
	c.sendAll(up, bytes.Repeat([]byte("x"), 600))
	resp, b = c.do(http.MethodPost, c.session(up.UploadID)+"/complete", nil)
	wantSbError(t, resp, b, http.StatusUnprocessableEntity, SandboxInvalidArchiveCode)

	// ?mode=async overrides the origin's setting.
	up = c.create(fileRequest("/async.bin", 1, 1))
	c.put(up.UploadID, 1, []byte("a"))
	if got := c.complete(up.UploadID, "?mode=async", http.StatusAccepted); got.Status != "completing" {
		t.Errorf("?mode=async: %+v", got)
	}
	resp, b = c.do(http.MethodPost, c.session(up.UploadID)+"/complete?mode=later", nil)
	wantSbError(t, resp, b, http.StatusBadRequest, SandboxInvalidRequestCode)
	stagingEmptyEventually(t, c, up.UploadID, dir)
}

// stagingEmptyEventually waits (bounded) for an asynchronous completion
// to end, then checks the staging directory.
func stagingEmptyEventually(t *testing.T, c sbClient, id, dir string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for c.get(id).Status == "completing" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	stagingEmpty(t, dir)
}

// A session whose expires_at passed before it completed is expired: it
// says so, its staged parts are dropped, and it takes nothing more.
// Tests get there by moving the origin's clock, or with
// ExpireSandboxUpload.
func TestSandboxExpiry(t *testing.T) {
	clock := newFakeClock(0)
	ts, dir, s := sandboxOrigin(t, Config{Now: clock.Now, SandboxTTL: 10 * time.Minute})
	c := sbClient{t, ts, sbToken}
	up := c.create(fileRequest("/late.bin", 4, 2))
	c.put(up.UploadID, 1, []byte("ab"))
	clock.Advance(10*time.Minute - time.Second)
	if got := c.get(up.UploadID); got.Status != "uploading" {
		t.Fatalf("a second before expiry: %+v", got)
	}
	clock.Advance(time.Second)
	got := c.get(up.UploadID)
	if got.Status != "expired" || !got.UpdatedAt.Equal(got.ExpiresAt) || !got.ExpiresAt.Equal(up.CreatedAt.Add(10*time.Minute)) || got.ReservedStagingBytes != 0 {
		t.Fatalf("expired: %+v", got)
	}
	resp, b := c.do(http.MethodPut, c.part(up.UploadID, 2), []byte("cd"))
	wantSbError(t, resp, b, http.StatusGone, SandboxExpiredCode)
	resp, b = c.do(http.MethodPost, c.session(up.UploadID)+"/complete", nil)
	wantSbError(t, resp, b, http.StatusGone, SandboxExpiredCode)
	resp, b = c.do(http.MethodDelete, c.session(up.UploadID), nil)
	wantSbError(t, resp, b, http.StatusGone, SandboxExpiredCode)
	stagingEmpty(t, dir)

	// ExpireSandboxUpload does it at once, even to a staged session.
	up = c.create(fileRequest("/now.bin", 1, 1))
	c.put(up.UploadID, 1, []byte("x"))
	if !s.ExpireSandboxUpload("sb_test", up.UploadID) || s.ExpireSandboxUpload("sb_test", "up_none") {
		t.Fatal("ExpireSandboxUpload did not find the session, or found one that is not")
	}
	if got := c.get(up.UploadID); got.Status != "expired" {
		t.Fatalf("after ExpireSandboxUpload: %+v", got)
	}
	stagingEmpty(t, dir)

	// An ended session is forgotten one TTL after it expired.
	clock.Advance(11 * time.Minute)
	c.create(fileRequest("/other.bin", 1, 1))
	resp, b = c.do(http.MethodGet, c.session(up.UploadID), nil)
	wantSbError(t, resp, b, http.StatusNotFound, SandboxNotFoundCode)
}

// The status answer has every field of the seed's GET, each with its JSON
// type; archive_format and whole_checksum_sha256 only where they apply.
func TestSandboxSeedFields(t *testing.T) {
	ts, _, _ := sandboxOrigin(t, Config{SandboxCompletion: "sync"})
	c := sbClient{t, ts, sbToken}
	archive := makeTar(t, "a.txt", "a")
	up := c.create(map[string]any{"target_path": "/tree", "content_length": len(archive), "part_size": 1024,
		"kind": "directory_tar", "conflict": "replace", "user": "root"})
	c.sendAll(up, archive)
	c.complete(up.UploadID, "", http.StatusOK)

	fields := func(id string) map[string]any {
		resp, b := c.do(http.MethodGet, c.session(id), nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("GET: %s %q", resp.Status, resp.Header.Get("Content-Type"))
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := fields(up.UploadID)
	isUint := func(v any) bool {
		f, ok := v.(float64)
		return ok && f >= 0 && f == float64(uint64(f))
	}
	isOneOf := func(set ...string) func(any) bool {
		return func(v any) bool {
			s, ok := v.(string)
			return ok && strings.Contains(" "+strings.Join(set, " ")+" ", " "+s+" ")
		}
	}
	isString := func(v any) bool { _, ok := v.(string); return ok }
	isTime := func(v any) bool {
		s, ok := v.(string)
		tm, err := time.Parse(time.RFC3339, s)
		return ok && err == nil && tm.Location() == time.UTC && strings.HasSuffix(s, "Z")
	}
	isLimits := func(v any) bool {
		l, ok := v.(map[string]any)
		return ok && len(l) == 4 && isUint(l["max_upload_bytes"]) && isUint(l["max_part_bytes"]) &&
			isUint(l["max_concurrency"]) && isUint(l["sandbox_staging_quota_bytes"])
	}
	isSHA256 := func(v any) bool { s, ok := v.(string); return ok && len(s) == 64 }
	seed := map[string]func(any) bool{
		"upload_id": isString, "kind": isOneOf("file", "directory_tar"),
		"source_kind":    isOneOf("restartable_file", "spooled_stream", "directory_archive"),
		"target_path":    isString,
		"content_length": isUint, "accepted_bytes": isUint, "reserved_staging_bytes": isUint, "part_size": isUint,
		"part_count": isUint, "max_concurrency": isUint,
		"status":   isOneOf("created", "uploading", "staged", "completing", "completed", "aborted", "expired", "failed"),
		"conflict": isOneOf("merge", "replace", "error"), "checksum_algorithm": isOneOf("sha256"),
		"limits": isLimits, "created_at": isTime, "updated_at": isTime, "expires_at": isTime,
		"user": isString, "next_part": isUint, "archive_format": isOneOf("tar"), "whole_checksum_sha256": isSHA256,
	}
	for name, ok := range seed {
		if v, in := m[name]; !in || !ok(v) {
			t.Errorf("field %s = %#v (present: %v)", name, v, in)
		}
	}
	for name := range m {
		if seed[name] == nil {
			t.Errorf("field %s is not in the seed", name)
		}
	}

	// A file session, open: no archive_format, no checksum, no user.
	up = c.create(fileRequest("/f", 1, 1))
	m = fields(up.UploadID)
	for _, name := range []string{"archive_format", "whole_checksum_sha256", "user"} {
		if v, in := m[name]; in {
			t.Errorf("an open file session has %s = %#v", name, v)
		}
	}
}
