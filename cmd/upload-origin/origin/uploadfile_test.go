package origin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/caddy-upload-progress/caddy-upload-progress/internal/testkit"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-upload-progress/caddy-upload-progress/protocols/pcloud"
)

// call sends a request to target (a path with its query) and returns the
// whole response and its body.
func call(t *testing.T, ts *httptest.Server, method, target string, header map[string]string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	r, err := http.NewRequest(method, ts.URL+target, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	resp, err := ts.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// filePart is a file of a multipart body; contentType "" sends the part
// without a Content-Type header.
type filePart struct {
	filename, contentType string
	data                  []byte
}

// multipartBody builds a multipart/form-data body: a form field, then the
// files, as browsers and curl -F send them.
func multipartBody(t *testing.T, files ...filePart) (body []byte, contentType string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := mw.WriteField("folderid", "0"); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, f.filename))
		if f.contentType != "" {
			h.Set("Content-Type", f.contentType)
		}
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(f.data)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), mw.FormDataContentType()
}

// pcloudUpload posts to /uploadfile and decodes pCloud's answer, which
// must come with HTTP 200 whatever its result.
func pcloudUpload(t *testing.T, ts *httptest.Server, query string, header map[string]string, body []byte) (PcloudAnswer, *http.Response, []byte) {
	t.Helper()
	resp, raw := call(t, ts, http.MethodPost, "/uploadfile?"+query, header, bytes.NewReader(body))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("uploadfile?%s: status %d, want 200 (body %s)", query, resp.StatusCode, raw)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var a PcloudAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("answer %s: %v", raw, err)
	}
	return a, resp, raw
}

// wantPcloudError checks a refused upload: its result code, an error
// message, and no file.
func wantPcloudError(t *testing.T, a PcloudAnswer, raw []byte, result int) {
	t.Helper()
	if a.Result != result || a.Error == "" || a.Metadata != nil || a.FileIDs != nil {
		t.Fatalf("answer %s, want result %d with an error and no files", raw, result)
	}
}

func TestUploadFileMultipart(t *testing.T) {
	ts, dir := newOrigin(t, Config{})
	one, two, three := testkit.RandomBytes(300_000, 7), []byte("hello, pCloud\n"), []byte(`{"a":1}`)
	two[0] = 'H'
	body, ct := multipartBody(t,
		filePart{"one.bin", "application/octet-stream", one},
		filePart{`C:\docs\two.txt`, "text/plain; charset=utf-8", two},
		filePart{"three.json", "", three},
	)
	before := time.Now().Add(-time.Second)
	a, _, raw := pcloudUpload(t, ts, "progresshash=h1&auth=demo&path=/pc", map[string]string{"Content-Type": ct}, body)
	if a.Result != 0 || a.Error != "" || len(a.Metadata) != 3 || len(a.FileIDs) != 3 {
		t.Fatalf("answer %s, want result 0 and three files", raw)
	}
	want := []struct {
		name, contentType string
		data              []byte
	}{
		{"one.bin", "application/octet-stream", one},
		{"two.txt", "text/plain", two},
		{"three.json", "application/json", three},
	}
	seen := map[uint64]bool{}
	for i, w := range want {
		m := a.Metadata[i]
		if m.Name != w.name || m.Size != int64(len(w.data)) || m.SHA256 != testkit.SHA256(w.data) ||
			m.ContentType != w.contentType || m.Path != "/pc/"+w.name || m.IsFolder {
			t.Errorf("file %d: %+v, want %s, %d bytes, %s", i, m, w.name, len(w.data), w.contentType)
		}
		if m.FileID == 0 || seen[m.FileID] || a.FileIDs[i] != m.FileID || m.ID != "f"+strconv.FormatUint(m.FileID, 10) {
			t.Errorf("file %d: fileid %d, id %q, fileids %v: want distinct ids matching", i, m.FileID, m.ID, a.FileIDs)
		}
		seen[m.FileID] = true
		for _, ts := range []string{m.Created, m.Modified} {
			if tm, err := time.Parse(time.RFC1123Z, ts); err != nil || tm.Before(before) || tm.After(time.Now().Add(time.Second)) {
				t.Errorf("file %d: time %q is not now in pCloud's format (%v)", i, ts, err)
			}
		}
		if !bytes.Equal(readStored(t, dir, "pc/"+w.name), w.data) {
			t.Errorf("file %d: stored bytes differ", i)
		}
	}
	noTempFiles(t, dir)

	// The proxy reads the stored files out of this answer, in order.
	files, ok := pcloud.OriginFilesOf(raw)
	if !ok {
		t.Fatalf("the proxy does not read the files of %s", raw)
	}
	var got []PcloudMetadata
	if err := json.Unmarshal(files, &got); err != nil || len(got) != 3 || got[1].Name != "two.txt" {
		t.Fatalf("the proxy reads %s (%v)", files, err)
	}
}

func TestUploadFileRaw(t *testing.T) {
	ts, dir := newOrigin(t, Config{})
	data := testkit.RandomBytes(1<<20, 7)
	a, _, raw := pcloudUpload(t, ts, "progresshash=h&auth=demo&filename=photo.jpg", nil, data)
	if a.Result != 0 || len(a.Metadata) != 1 {
		t.Fatalf("answer %s", raw)
	}
	if m := a.Metadata[0]; m.Name != "photo.jpg" || m.Path != "/photo.jpg" || m.Size != int64(len(data)) ||
		m.SHA256 != testkit.SHA256(data) || m.ContentType != "image/jpeg" {
		t.Errorf("metadata %+v", m)
	}
	if !bytes.Equal(readStored(t, dir, "photo.jpg"), data) {
		t.Error("stored bytes differ")
	}

	// Without a name a raw body cannot be stored: refused before it is
	// read, with HTTP 200 as pCloud does, and the connection closed so
	// the client stops sending.
	a, resp, raw := pcloudUpload(t, ts, "progresshash=h&auth=demo", nil, testkit.RandomBytes(8<<20, 7))
	wantPcloudError(t, a, raw, pcloudBadName)
	if !resp.Close {
		t.Error("a refusal with an unread body should carry Connection: close")
	}
	a, _, raw = pcloudUpload(t, ts, "auth=demo&filename=..", nil, []byte("x"))
	wantPcloudError(t, a, raw, pcloudBadName)
	noTempFiles(t, dir)
}

// A name that is taken is replaced, as on pCloud; with renameifexists the
// new file takes a numbered name instead.
func TestUploadFileNameTaken(t *testing.T) {
	ts, dir := newOrigin(t, Config{})
	for _, content := range []string{"first", "second"} {
		a, _, raw := pcloudUpload(t, ts, "filename=a.txt", nil, []byte(content))
		if a.Result != 0 || a.Metadata[0].Path != "/a.txt" {
			t.Fatalf("answer %s", raw)
		}
	}
	if got := readStored(t, dir, "a.txt"); string(got) != "second" {
		t.Errorf("a.txt holds %q, want the second upload", got)
	}
	for i, want := range []string{"a (2).txt", "a (3).txt"} {
		a, _, raw := pcloudUpload(t, ts, "filename=a.txt&renameifexists=1", nil, []byte{byte('0' + i)})
		if a.Result != 0 || a.Metadata[0].Name != want || a.Metadata[0].Path != "/"+want {
			t.Fatalf("renameifexists: %s, want %s", raw, want)
		}
		if got := readStored(t, dir, want); !bytes.Equal(got, []byte{byte('0' + i)}) {
			t.Errorf("%s holds %q", want, got)
		}
	}
	if got := readStored(t, dir, "a.txt"); string(got) != "second" {
		t.Errorf("renameifexists changed a.txt: %q", got)
	}
	// In a multipart body too, and a folder in the way is passed over.
	if err := os.Mkdir(filepath.Join(dir, "b.txt"), 0o755); err != nil {
		t.Fatal(err)
	}
	body, ct := multipartBody(t, filePart{"b.txt", "", []byte("b")})
	a, _, raw := pcloudUpload(t, ts, "renameifexists=1", map[string]string{"Content-Type": ct}, body)
	if a.Result != 0 || a.Metadata[0].Name != "b (2).txt" {
		t.Fatalf("renameifexists past a folder: %s", raw)
	}
	// Without it, a folder is not replaced by a file, nor a file used as
	// a folder.
	a, _, raw = pcloudUpload(t, ts, "", map[string]string{"Content-Type": ct}, body)
	wantPcloudError(t, a, raw, pcloudExists)
	a, _, raw = pcloudUpload(t, ts, "filename=x&path=/a.txt", nil, []byte("x"))
	wantPcloudError(t, a, raw, pcloudNoParent)
	noTempFiles(t, dir)
}

func TestUploadFileFolders(t *testing.T) {
	ts, dir := newOrigin(t, Config{})
	a, _, raw := pcloudUpload(t, ts, "filename=r.txt&folderid=0", nil, []byte("root"))
	if a.Result != 0 || a.Metadata[0].Path != "/r.txt" {
		t.Fatalf("folderid=0: %s", raw)
	}
	a, _, raw = pcloudUpload(t, ts, "filename=d.txt&path=/x/y", nil, []byte("deep"))
	if a.Result != 0 || a.Metadata[0].Path != "/x/y/d.txt" || string(readStored(t, dir, "x/y/d.txt")) != "deep" {
		t.Fatalf("path=/x/y: %s", raw)
	}
	for q, result := range map[string]int{
		"filename=f&folderid=7":      pcloudNoFolder,
		"filename=f&folderid=x":      pcloudBadFolderID,
		"filename=f&path=relative":   pcloudBadPath,
		"filename=f&path=/a/../../b": pcloudBadPath,
	} {
		a, _, raw := pcloudUpload(t, ts, q, nil, []byte("f"))
		wantPcloudError(t, a, raw, result)
	}
	body, ct := multipartBody(t) // a form field, no file
	a, _, raw = pcloudUpload(t, ts, "", map[string]string{"Content-Type": ct}, body)
	wantPcloudError(t, a, raw, pcloudNoFile)
	a, _, raw = pcloudUpload(t, ts, "", map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, []byte("not multipart"))
	wantPcloudError(t, a, raw, pcloudBroken)
	if _, err := os.Stat(filepath.Join(dir, "f")); err == nil {
		t.Error("a refused upload was stored")
	}
}

// With API keys, /uploadfile takes one of them as pCloud's credential
// and refuses others as pCloud does, with HTTP 200.
func TestUploadFileCredentials(t *testing.T) {
	ts, dir := newOrigin(t, Config{APIKeys: []string{"k1", "k2"}})
	for _, c := range []struct {
		query  string
		header map[string]string
		result int
	}{
		{"filename=f", nil, pcloudLoginNeeded},
		{"filename=f&auth=", nil, pcloudLoginNeeded},
		{"filename=f&auth=nope", nil, pcloudLoginFailed},
		{"filename=f&access_token=nope", nil, pcloudLoginFailed},
		{"filename=f", map[string]string{"Authorization": "Bearer nope"}, pcloudLoginFailed},
		{"filename=f", map[string]string{"x-user-api-key": "k1"}, pcloudLoginNeeded}, // the storage node's header is not pCloud's
		{"filename=f&auth=k1", nil, pcloudOK},
		{"filename=f&access_token=k2", nil, pcloudOK},
		{"filename=f", map[string]string{"Authorization": "bearer k2"}, pcloudOK},
	} {
		a, _, raw := pcloudUpload(t, ts, c.query, c.header, []byte("x"))
		if c.result != pcloudOK {
			wantPcloudError(t, a, raw, c.result)
			if _, err := os.Stat(filepath.Join(dir, "f")); err == nil {
				t.Fatalf("%s %v: refused, but stored", c.query, c.header)
			}
			continue
		}
		if a.Result != 0 || len(a.Metadata) != 1 {
			t.Errorf("%s %v: %s, want it stored", c.query, c.header, raw)
		}
	}
}

func TestUploadFileMethodsAndHooks(t *testing.T) {
	ts, dir := newOrigin(t, Config{})
	resp, raw := call(t, ts, http.MethodGet, "/uploadfile?filename=f", nil, nil)
	wantError(t, resp.StatusCode, resp.Header, raw, http.StatusMethodNotAllowed, "method not allowed")
	if resp.Header.Get("Allow") != "POST, PUT" {
		t.Errorf("Allow = %q", resp.Header.Get("Allow"))
	}
	resp, raw = call(t, ts, http.MethodPut, "/uploadfile?filename=put.bin", nil, strings.NewReader("put"))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), `"result":0`) {
		t.Errorf("PUT: %d %s", resp.StatusCode, raw)
	}
	// The test hooks work here as on /fso.
	resp, raw = call(t, ts, http.MethodPost, "/uploadfile?filename=fail", map[string]string{FailHeader: "503"}, strings.NewReader("x"))
	wantError(t, resp.StatusCode, resp.Header, raw, http.StatusServiceUnavailable, "forced failure")
	if _, err := os.Stat(filepath.Join(dir, "fail")); err == nil {
		t.Error("forced failure stored the file")
	}
}

func TestNumbered(t *testing.T) {
	for name, want := range map[string]string{
		"a.txt":                   "a (2).txt",
		"archive.tar.gz":          "archive.tar (2).gz",
		"noext":                   "noext (2)",
		".profile":                ".profile (2)",
		filepath.Join("d", "x.b"): filepath.Join("d", "x (2).b"),
	} {
		if got := numbered(name, 2); got != want {
			t.Errorf("numbered(%q, 2) = %q, want %q", name, got, want)
		}
	}
}
