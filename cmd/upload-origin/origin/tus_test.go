package origin

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/testkit"
)

// tusCall sends a tus 1.0 request to the origin.
func tusCall(t *testing.T, ts *httptest.Server, method, target string, header map[string]string, body []byte) (*http.Response, []byte) {
	t.Helper()
	h := map[string]string{"Tus-Resumable": "1.0.0"}
	for k, v := range header {
		h[k] = v
	}
	if body != nil {
		h["Content-Type"] = "application/offset+octet-stream"
	}
	return call(t, ts, method, target, h, bytes.NewReader(body))
}

// tusCreate creates an upload with header and returns its path.
func tusCreate(t *testing.T, ts *httptest.Server, header map[string]string) string {
	t.Helper()
	resp, body := tusCall(t, ts, http.MethodPost, TusPath, header, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("creation: %s (%s)", resp.Status, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || len(loc.Path) <= len(TusPath) || loc.Path[:len(TusPath)] != TusPath {
		t.Fatalf("creation answered Location %q, want an upload under %s", resp.Header.Get("Location"), TusPath)
	}
	return loc.Path
}

// tusPatch sends data from offset and checks the 204 and its new offset.
func tusPatch(t *testing.T, ts *httptest.Server, up string, offset int64, data []byte, header map[string]string) {
	t.Helper()
	h := map[string]string{"Upload-Offset": strconv.FormatInt(offset, 10)}
	for k, v := range header {
		h[k] = v
	}
	resp, body := tusCall(t, ts, http.MethodPatch, up, h, data)
	want := strconv.FormatInt(offset+int64(len(data)), 10)
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Upload-Offset") != want {
		t.Fatalf("PATCH at %d: %s, Upload-Offset %q, want 204 and %s (%s)", offset, resp.Status, resp.Header.Get("Upload-Offset"), want, body)
	}
}

// tusHead checks what a HEAD says of an upload.
func tusHead(t *testing.T, ts *httptest.Server, up string, wantOffset, wantLength string) {
	t.Helper()
	resp, _ := tusCall(t, ts, http.MethodHead, up, nil, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Upload-Offset") != wantOffset || resp.Header.Get("Upload-Length") != wantLength {
		t.Fatalf("HEAD %s: %s, offset %q, length %q; want 200, %s, %q", up, resp.Status,
			resp.Header.Get("Upload-Offset"), resp.Header.Get("Upload-Length"), wantOffset, wantLength)
	}
}

// A tus upload in two PATCHes, resumed after a HEAD, as tus clients do:
// the origin stores it byte for byte under TusDir, serves it back, and
// forgets it once terminated.
func TestTusUpload(t *testing.T) {
	ts, dir := newOrigin(t, Config{})
	data := testkit.RandomBytes(1<<20+5, 7)
	size := strconv.Itoa(len(data))
	up := tusCreate(t, ts, map[string]string{"Upload-Length": size, "Upload-Metadata": "filename dmlkZW8ubXA0"})
	tusHead(t, ts, up, "0", size)

	half := int64(len(data) / 2)
	tusPatch(t, ts, up, 0, data[:half], nil)
	tusHead(t, ts, up, strconv.FormatInt(half, 10), size)
	// A PATCH that is not where the upload stands is refused.
	if resp, _ := tusCall(t, ts, http.MethodPatch, up, map[string]string{"Upload-Offset": "0"}, data[:10]); resp.StatusCode != http.StatusConflict {
		t.Fatalf("PATCH at the wrong offset: %s, want 409", resp.Status)
	}
	tusPatch(t, ts, up, half, data[half:], nil)
	tusHead(t, ts, up, size, size)

	stored, err := os.ReadFile(filepath.Join(dir, TusDir, filepath.Base(up)))
	if err != nil || !bytes.Equal(stored, data) {
		t.Fatalf("stored %d bytes (%v), not the upload", len(stored), err)
	}
	if resp, body := call(t, ts, http.MethodGet, up, nil, nil); resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("GET %s: %s, %d bytes", up, resp.Status, len(body))
	}

	if resp, _ := tusCall(t, ts, http.MethodDelete, up, nil, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %s, want 204", resp.Status)
	}
	if resp, _ := tusCall(t, ts, http.MethodHead, up, nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("HEAD after DELETE: %s, want 404", resp.Status)
	}
	if _, err := os.Stat(filepath.Join(dir, TusDir, filepath.Base(up))); !os.IsNotExist(err) {
		t.Errorf("the terminated upload is still stored (%v)", err)
	}
}

// Deferred length and concatenation, which tus clients use for uploads of
// unknown size and parallel uploads.
func TestTusDeferredLengthAndConcatenation(t *testing.T) {
	ts, dir := newOrigin(t, Config{})
	deferred := tusCreate(t, ts, map[string]string{"Upload-Defer-Length": "1"})
	tusHead(t, ts, deferred, "0", "")
	tusPatch(t, ts, deferred, 0, []byte("hello"), map[string]string{"Upload-Length": "5"})
	tusHead(t, ts, deferred, "5", "5")

	a := tusCreate(t, ts, map[string]string{"Upload-Length": "3", "Upload-Concat": "partial"})
	b := tusCreate(t, ts, map[string]string{"Upload-Length": "4", "Upload-Concat": "partial"})
	tusPatch(t, ts, a, 0, []byte("one"), nil)
	tusPatch(t, ts, b, 0, []byte("-two"), nil)
	final := tusCreate(t, ts, map[string]string{"Upload-Concat": "final;" + a + " " + b})
	tusHead(t, ts, final, "7", "7")
	if got, err := os.ReadFile(filepath.Join(dir, TusDir, filepath.Base(final))); err != nil || string(got) != "one-two" {
		t.Fatalf("the final upload holds %q (%v)", got, err)
	}
}

// With API keys, tus requests need one too, but a CORS preflight, which
// carries none, passes; upload ids that are not plain names are refused
// before tusd's file store sees them.
func TestTusRefusals(t *testing.T) {
	ts, dir := newOrigin(t, Config{APIKeys: []string{"k1"}})
	resp, body := tusCall(t, ts, http.MethodPost, TusPath, map[string]string{"Upload-Length": "1"}, nil)
	wantError(t, resp.StatusCode, resp.Header, body, http.StatusUnauthorized, "missing x-user-api-key header")
	resp, _ = call(t, ts, http.MethodOptions, TusPath, map[string]string{
		"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") == "" {
		t.Errorf("CORS preflight: %s, Access-Control-Allow-Origin %q", resp.Status, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	key := map[string]string{"X-User-Api-Key": "k1"}
	up := tusCreate(t, ts, map[string]string{"Upload-Length": "1", "X-User-Api-Key": "k1"})
	tusPatch(t, ts, up, 0, []byte("x"), key)

	for _, p := range []string{TusPath + "..%2F..%2Fx", TusPath + "a/b", TusPath + ".."} {
		resp, body := tusCall(t, ts, http.MethodDelete, p, key, nil)
		wantError(t, resp.StatusCode, resp.Header, body, http.StatusNotFound, "no such upload")
	}
	resp, body = tusCall(t, ts, http.MethodPost, TusPath, map[string]string{"X-User-Api-Key": "k1", "Upload-Concat": "final;" + TusPath + "../x"}, nil)
	wantError(t, resp.StatusCode, resp.Header, body, http.StatusBadRequest, "invalid Upload-Concat")
	if entries, _ := os.ReadDir(filepath.Dir(dir)); len(entries) != 1 {
		t.Errorf("something was written next to the store: %v", entries)
	}
}
