package origin

import (
	"bytes"
	"encoding/json"
	"github.com/caddy-upload-progress/caddy-upload-progress/internal/testkit"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// plainUpload posts body to /upload?query and decodes the 201 reply.
func plainUpload(t *testing.T, ts *httptest.Server, query string, header map[string]string, body []byte) MultipartResponse {
	t.Helper()
	resp, raw := call(t, ts, http.MethodPost, "/upload?"+query, header, bytes.NewReader(body))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload?%s: status %d, want 201 (body %s)", query, resp.StatusCode, raw)
	}
	var r MultipartResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("reply %s: %v", raw, err)
	}
	return r
}

// A raw body is stored under a new name each time, or under its filename.
func TestPlainUploadRaw(t *testing.T) {
	ts, dir := newOrigin(t, Config{})
	data := testkit.RandomBytes(2<<20+5, 7)
	first := plainUpload(t, ts, "X-Progress-ID=abc", nil, data)
	second := plainUpload(t, ts, "", map[string]string{"X-Progress-ID": "abc"}, data)
	for _, r := range []MultipartResponse{first, second} {
		if len(r.Files) != 1 {
			t.Fatalf("reply %+v, want one file", r)
		}
		f := r.Files[0]
		if !strings.HasPrefix(f.Name, "upload-") || f.Path != "/"+f.Name || f.Size != int64(len(data)) || f.SHA256 != testkit.SHA256(data) {
			t.Errorf("file %+v, want a new upload-… name with the upload's size and hash", f)
		}
		if !bytes.Equal(readStored(t, dir, f.Name), data) {
			t.Errorf("%s: stored bytes differ", f.Name)
		}
	}
	if first.Files[0].Name == second.Files[0].Name {
		t.Errorf("two unnamed uploads got the same name %s", first.Files[0].Name)
	}

	// A filename names it; sent again, it replaces the first.
	for _, content := range []string{"one", "two"} {
		r := plainUpload(t, ts, "X-Progress-ID=n&filename=n.txt&path=/in", nil, []byte(content))
		if len(r.Files) != 1 || r.Files[0].Path != "/in/n.txt" || r.Files[0].Name != "n.txt" {
			t.Fatalf("reply %+v", r)
		}
	}
	if got := readStored(t, dir, "in/n.txt"); string(got) != "two" {
		t.Errorf("n.txt holds %q, want the second upload", got)
	}
	noTempFiles(t, dir)
}

func TestPlainUploadMultipart(t *testing.T) {
	ts, dir := newOrigin(t, Config{})
	one, two := testkit.RandomBytes(100_000, 7), []byte("two")
	body, ct := multipartBody(t, filePart{"one.bin", "", one}, filePart{"../two.txt", "text/plain", two})
	for range 2 { // the same upload twice: the files are replaced
		r := plainUpload(t, ts, "X-Progress-ID=m&path=/batch", map[string]string{"Content-Type": ct}, body)
		want := []StoredFile{
			{Path: "/batch/one.bin", Name: "one.bin", Size: int64(len(one)), SHA256: testkit.SHA256(one)},
			{Path: "/batch/two.txt", Name: "two.txt", Size: 3, SHA256: testkit.SHA256(two)},
		}
		if len(r.Files) != 2 || r.Files[0] != want[0] || r.Files[1] != want[1] {
			t.Fatalf("reply %+v, want %+v", r.Files, want)
		}
	}
	if !bytes.Equal(readStored(t, dir, "batch/one.bin"), one) || string(readStored(t, dir, "batch/two.txt")) != "two" {
		t.Error("stored bytes differ")
	}

	body, ct = multipartBody(t)
	resp, raw := call(t, ts, http.MethodPost, "/upload", map[string]string{"Content-Type": ct}, bytes.NewReader(body))
	wantError(t, resp.StatusCode, resp.Header, raw, http.StatusBadRequest, "no file parts in multipart body")
	noTempFiles(t, dir)
}

func TestPlainUploadRefusals(t *testing.T) {
	ts, _ := newOrigin(t, Config{APIKeys: []string{"k1"}})
	resp, raw := call(t, ts, http.MethodPost, "/upload?X-Progress-ID=a", nil, strings.NewReader("x"))
	wantError(t, resp.StatusCode, resp.Header, raw, http.StatusUnauthorized, "missing x-user-api-key header")
	key := map[string]string{"x-user-api-key": "k1"}
	plainUpload(t, ts, "X-Progress-ID=a", key, []byte("x"))

	resp, raw = call(t, ts, http.MethodGet, "/upload", key, nil)
	wantError(t, resp.StatusCode, resp.Header, raw, http.StatusMethodNotAllowed, "method not allowed")
	if resp.Header.Get("Allow") != "POST, PUT" {
		t.Errorf("Allow = %q", resp.Header.Get("Allow"))
	}
	resp, raw = call(t, ts, http.MethodPost, "/upload?path=rel", key, strings.NewReader("x"))
	wantError(t, resp.StatusCode, resp.Header, raw, http.StatusBadRequest, "path must start with /")
	resp, raw = call(t, ts, http.MethodPost, "/upload?filename=..", key, strings.NewReader("x"))
	wantError(t, resp.StatusCode, resp.Header, raw, http.StatusBadRequest, "")
	resp, raw = call(t, ts, http.MethodPost, "/upload", map[string]string{"x-user-api-key": "k1", FailHeader: "502"}, strings.NewReader("x"))
	wantError(t, resp.StatusCode, resp.Header, raw, http.StatusBadGateway, "forced failure")
}
