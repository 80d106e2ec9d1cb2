package origin

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/testkit"
)

// dsClient speaks to the dStor routes of an origin with an Authorization
// header ("" sends none).
type dsClient struct {
	t    *testing.T
	ts   *httptest.Server
	auth string
}

// dsFile is a file of a chunk: its multipart field, its file name (its
// path in the folder), its bytes.
type dsFile struct {
	field, name string
	data        []byte
}

// send sends a request with the headers (name, value, …) and returns the
// answer; it may run outside the test's goroutine.
func (c dsClient) send(method, target string, body io.Reader, header ...string) (*http.Response, []byte, error) {
	r, err := http.NewRequest(method, c.ts.URL+target, body)
	if err != nil {
		return nil, nil, err
	}
	if c.auth != "" {
		r.Header.Set("Authorization", c.auth)
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	return fetch(c.ts, r)
}

func (c dsClient) do(method, target string, body []byte, header ...string) (*http.Response, []byte) {
	c.t.Helper()
	resp, b, err := c.send(method, target, bytes.NewReader(body), header...)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp, b
}

// getToken asks for a token with a JSON body and wants 200.
func (c dsClient) getToken(chunks int, folder string, header ...string) string {
	c.t.Helper()
	body, _ := json.Marshal(map[string]any{"chunks_number": chunks, "folder_path": folder})
	resp, b := c.do(http.MethodPost, "/v1/upload/get-token", body, append([]string{"Content-Type", "application/json"}, header...)...)
	return wantToken(c.t, resp, b)
}

func wantToken(t *testing.T, resp *http.Response, b []byte) string {
	t.Helper()
	var m DstorMessage
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &m) != nil || m.Message != "ok" || m.Token == "" {
		t.Fatalf("get-token: %s %s", resp.Status, b)
	}
	return m.Token
}

// chunkBody is a multipart body holding files.
func chunkBody(t *testing.T, files []dsFile) (body []byte, contentType string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range files {
		w, err := mw.CreateFormFile(f.field, f.name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(f.data)
	}
	mw.Close()
	return buf.Bytes(), mw.FormDataContentType()
}

// chunk sends a chunk of files under token and returns the answer.
func (c dsClient) chunk(token string, files []dsFile, header ...string) (*http.Response, []byte) {
	c.t.Helper()
	body, ct := chunkBody(c.t, files)
	return c.do(http.MethodPost, "/v1/upload/", body, append([]string{"Content-Type", ct, DstorTokenHeader, token}, header...)...)
}

// okChunk sends a chunk and wants 200 {"message":"ok"}.
func (c dsClient) okChunk(token string, files []dsFile) {
	c.t.Helper()
	resp, b := c.chunk(token, files)
	wantMessage(c.t, resp, b, http.StatusOK, "ok")
}

// wantMessage checks an answer of the token or chunk route.
func wantMessage(t *testing.T, resp *http.Response, b []byte, status int, msg string) {
	t.Helper()
	var m DstorMessage
	if resp.StatusCode != status || json.Unmarshal(b, &m) != nil || m.Message == "" || (msg != "" && m.Message != msg) {
		t.Fatalf("%s %s: %s %s, want %d %q", resp.Request.Method, resp.Request.URL.Path, resp.Status, b, status, msg)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
}

// status asks for the upload's status and wants 200.
func (c dsClient) status(token string) DstorStatus {
	c.t.Helper()
	resp, b := c.do(http.MethodGet, "/v1/upload/get-status/", nil, DstorTokenHeader, token)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("get-status: %s %s", resp.Status, b)
	}
	return decodeDstorStatus(c.t, b)
}

func decodeDstorStatus(t *testing.T, b []byte) DstorStatus {
	t.Helper()
	var st DstorStatus
	if err := json.Unmarshal(b, &st); err != nil || st.Status == "" {
		t.Fatalf("%s is not a status (%v)", b, err)
	}
	return st
}

// wantStatusError checks an error of the status route: its HTTP status,
// and an ERROR at UPLOADING saying why.
func wantStatusError(t *testing.T, resp *http.Response, b []byte, status int, why string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("get-status: %s %s, want %d", resp.Status, b, status)
	}
	st := decodeDstorStatus(t, b)
	if st.Status != DstorError || st.ErrorAtStage != DstorUploading || !strings.Contains(st.ErrorExplanation, why) || st.Data != nil {
		t.Fatalf("get-status: %s, want an ERROR at UPLOADING saying %q", b, why)
	}
}

// stageOrder ranks the statuses an upload goes through.
var stageOrder = map[string]int{DstorPending: 0, DstorAddingToIPFS: 1, DstorSavingData: 2, DstorDone: 3, DstorError: 3}

// poll asks for the status until the upload is DONE or ERROR (for at most
// 10 s) and returns the last answer and every status seen, each once, in
// order. It fails the test if the statuses go back.
func (c dsClient) poll(token string) (DstorStatus, []string) {
	c.t.Helper()
	var seen []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := c.status(token)
		if len(seen) == 0 || seen[len(seen)-1] != st.Status {
			if len(seen) > 0 && stageOrder[st.Status] < stageOrder[seen[len(seen)-1]] {
				c.t.Fatalf("status went from %s back to %s", seen[len(seen)-1], st.Status)
			}
			seen = append(seen, st.Status)
		}
		if st.Status == DstorDone || st.Status == DstorError {
			return st, seen
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("not DONE nor ERROR after 10s: %v", seen)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// wantDone checks a DONE upload's data against the files sent, the last
// sent of each path counting, and that the origin holds them at folder.
func wantDone(t *testing.T, st DstorStatus, dir, folder string, sent ...[]dsFile) {
	t.Helper()
	want := map[string][]byte{}
	for _, files := range sent {
		for _, f := range files {
			p, err := dstorPath(f.name)
			if err != nil {
				t.Fatal(err)
			}
			want[p] = f.data
		}
	}
	if st.Status != DstorDone || st.Data == nil || st.Data.FolderPath != folder || st.ErrorExplanation != "" || st.ErrorAtStage != "" {
		t.Fatalf("DONE status: %+v", st)
	}
	if len(st.Data.Files) != len(want) {
		t.Errorf("data lists %d files, want %d", len(st.Data.Files), len(want))
	}
	if !slices.IsSortedFunc(st.Data.Files, func(a, b DstorFile) int { return strings.Compare(a.Path, b.Path) }) {
		t.Errorf("data files not sorted by path")
	}
	for _, f := range st.Data.Files {
		data, ok := want[f.Path]
		if !ok || f.Size != int64(len(data)) || f.CID != rawCID(sha256.Sum256(data)) {
			t.Errorf("data file %+v: want %d bytes (listed: %v)", f, len(data), ok)
		}
	}
	for p, data := range want {
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(folder), filepath.FromSlash(p)))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: %d bytes stored (%v), want the %d sent", path.Join(folder, p), len(got), err, len(data))
		}
	}
}

// tempGone checks that no upload's temp folder is left.
func tempGone(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, DstorDir))
	if (err != nil && !errors.Is(err, os.ErrNotExist)) || len(entries) > 0 {
		t.Errorf("temp folder holds %v (%v)", entries, err)
	}
}

// folderFiles is a folder's worth of chunks: chunks of per files each,
// in subfolders, one of them 1 MiB.
func folderFiles(chunks, per int) [][]dsFile {
	out := make([][]dsFile, chunks)
	for c := range out {
		for i := range per {
			n := c*per + i
			data := testkit.RandomBytes(100+n*37, byte(n))
			if n == 1 {
				data = testkit.RandomBytes(mib, 7)
			}
			out[c] = append(out[c], dsFile{field: fmt.Sprintf("f%d", i), name: fmt.Sprintf("2024/%02d/img_%03d.jpg", c, n), data: data})
		}
	}
	return out
}

// The whole flow as a client sends it: a token, three chunks of several
// files, one refused by the origin and sent again, then the stages
// watched by polling until DONE and every file at folder_path.
func TestDstorFlow(t *testing.T) {
	ts, dir, _ := sandboxOrigin(t, Config{DstorStageDelay: 300 * time.Millisecond})
	c := dsClient{t, ts, "Bearer user-1"}
	chunks := folderFiles(3, 4)
	chunks[0] = append(chunks[0], dsFile{"file", "./top.txt", []byte("at the top")}, dsFile{"other", `win\path.txt`, []byte("backslashes")})
	token := c.getToken(3, "/photos")

	// Nothing until the last chunk: PENDING, whatever came in.
	if st := c.status(token); st != (DstorStatus{Status: DstorPending}) {
		t.Fatalf("fresh upload: %+v", st)
	}
	c.okChunk(token, chunks[0])
	resp, b := c.chunk(token, chunks[1], FailHeader, "500")
	wantMessage(t, resp, b, http.StatusInternalServerError, "forced failure")
	if st := c.status(token); st != (DstorStatus{Status: DstorPending}) {
		t.Fatalf("after a chunk in and one refused: %+v", st)
	}
	c.okChunk(token, chunks[1])
	if _, err := os.Stat(filepath.Join(dir, "photos")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the folder is there before the last chunk (%v)", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, DstorDir, token)); len(entries) != 2 {
		t.Errorf("temp folder holds %d chunks, want the 2 accepted", len(entries))
	}

	c.okChunk(token, chunks[2])
	if st := c.status(token); st != (DstorStatus{Status: DstorAddingToIPFS}) {
		t.Fatalf("right after the last chunk: %+v", st)
	}
	resp, b = c.chunk(token, chunks[2])
	wantMessage(t, resp, b, http.StatusConflict, "")

	st, seen := c.poll(token)
	if !slices.Equal(seen, []string{DstorAddingToIPFS, DstorSavingData, DstorDone}) {
		t.Errorf("statuses seen: %v", seen)
	}
	wantDone(t, st, dir, "/photos", chunks...)
	if st.Data.Files[0].Path != "2024/00/img_000.jpg" || !slices.ContainsFunc(st.Data.Files, func(f DstorFile) bool { return f.Path == "win/path.txt" }) {
		t.Errorf("paths: %+v", st.Data.Files)
	}
	tempGone(t, dir)
	if again := c.status(token); again.Status != DstorDone || len(again.Data.Files) != len(st.Data.Files) {
		t.Errorf("asked again: %+v", again)
	}
}

// The token request's three encodings, and its bad bodies.
func TestDstorToken(t *testing.T) {
	ts, _, _ := sandboxOrigin(t, Config{})
	c := dsClient{t, ts, "some-jwt"}
	multipartBody := func(fields map[string]string) ([]byte, string) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		for k, v := range fields {
			mw.WriteField(k, v)
		}
		mw.Close()
		return buf.Bytes(), mw.FormDataContentType()
	}
	mpBody, mpType := multipartBody(map[string]string{"chunks_number": "2", "folder_path": "/m"})
	tokens := map[string]bool{}
	for _, tc := range []struct {
		name, contentType, body string
	}{
		{"JSON", "application/json", `{"chunks_number": 3, "folder_path": "/photos"}`},
		{"JSON string count", "application/json; charset=utf-8", `{"chunks_number": "3", "folder_path": "/a//b/", "other": true}`},
		{"JSON untyped", "", `{"chunks_number": 1, "folder_path": "/"}`},
		{"urlencoded", "application/x-www-form-urlencoded", url.Values{"chunks_number": {"5"}, "folder_path": {"/my folder"}}.Encode()},
		{"multipart", mpType, string(mpBody)},
	} {
		resp, b := c.do(http.MethodPost, "/v1/upload/get-token", []byte(tc.body), "Content-Type", tc.contentType)
		token := wantToken(t, resp, b)
		if tokens[token] {
			t.Errorf("%s: token %s given twice", tc.name, token)
		}
		tokens[token] = true
		if st := c.status(token); st.Status != DstorPending {
			t.Errorf("%s: %+v", tc.name, st)
		}
	}

	for _, tc := range []struct {
		name, contentType, body string
		status                  int
	}{
		{"no chunks_number", "application/json", `{"folder_path": "/p"}`, 400},
		{"no folder_path", "application/json", `{"chunks_number": 2}`, 400},
		{"zero chunks", "application/json", `{"chunks_number": 0, "folder_path": "/p"}`, 400},
		{"negative chunks", "application/json", `{"chunks_number": -1, "folder_path": "/p"}`, 400},
		{"fractional chunks", "application/json", `{"chunks_number": 1.5, "folder_path": "/p"}`, 400},
		{"too many chunks", "application/json", `{"chunks_number": 1000001, "folder_path": "/p"}`, 400},
		{"words", "application/x-www-form-urlencoded", "chunks_number=two&folder_path=%2Fp", 400},
		{"relative folder", "application/json", `{"chunks_number": 1, "folder_path": "photos"}`, 400},
		{"dot-dot folder", "application/json", `{"chunks_number": 1, "folder_path": "/a/../b"}`, 400},
		{"reserved folder", "application/json", `{"chunks_number": 1, "folder_path": "/.dstor/x"}`, 400},
		{"folder not a string", "application/json", `{"chunks_number": 1, "folder_path": 7}`, 400},
		{"broken JSON", "application/json", `{"chunks_number": 1,`, 400},
		{"broken multipart", "multipart/form-data; boundary=x", "--x\r\nnot a part", 400},
		{"too large", "application/json", `{"folder_path": "/p", "pad": "` + strings.Repeat("x", 64<<10) + `"}`, 413},
	} {
		resp, b := c.do(http.MethodPost, "/v1/upload/get-token", []byte(tc.body), "Content-Type", tc.contentType)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %s %s, want %d", tc.name, resp.Status, b, tc.status)
			continue
		}
		wantMessage(t, resp, b, tc.status, "")
	}
	resp, b := c.do(http.MethodPost, "/v1/upload/get-token", []byte(`{"chunks_number": 1, "folder_path": "/p"}`), DstorFailStageHeader, "SOMEWHERE")
	wantMessage(t, resp, b, http.StatusBadRequest, "")
	resp, b = c.do(http.MethodGet, "/v1/upload/get-token", nil)
	wantMessage(t, resp, b, http.StatusMethodNotAllowed, "method not allowed")
	if allow := resp.Header.Get("Allow"); allow != "POST" {
		t.Errorf("Allow = %q", allow)
	}
}

// Credentials: uploads belong to the Authorization that asked for their
// token; another, or an unknown token, finds nothing; the keys hold.
func TestDstorCredentials(t *testing.T) {
	ts, dir, _ := sandboxOrigin(t, Config{APIKeys: []string{"k1", "k2"}, DstorStageDelay: 10 * time.Millisecond})
	owner, other, raw := dsClient{t, ts, "Bearer k1"}, dsClient{t, ts, "Bearer k2"}, dsClient{t, ts, "k1"}
	token := owner.getToken(1, "/mine")
	files := []dsFile{{"file", "a.txt", []byte("mine")}}

	// The bare key is the same credential as its bearer form.
	if st := raw.status(token); st.Status != DstorPending {
		t.Errorf("asked with the bare key: %+v", st)
	}
	resp, b := other.do(http.MethodGet, "/v1/upload/get-status/", nil, DstorTokenHeader, token)
	wantStatusError(t, resp, b, http.StatusNotFound, "upload not found")
	resp, b = owner.do(http.MethodGet, "/v1/upload/get-status", nil, DstorTokenHeader, "NOSUCHTOKEN")
	wantStatusError(t, resp, b, http.StatusNotFound, "upload not found")
	resp, b = other.chunk(token, []dsFile{{"file", "a.txt", []byte("theirs")}})
	wantMessage(t, resp, b, http.StatusNotFound, "upload not found")
	resp, b = owner.chunk("NOSUCHTOKEN", files)
	wantMessage(t, resp, b, http.StatusNotFound, "upload not found")

	// Missing or wrong credentials, missing tokens.
	for _, c := range []dsClient{{t, ts, ""}, {t, ts, "Bearer nope"}, {t, ts, "Bearer "}} {
		resp, b := c.do(http.MethodGet, "/v1/upload/get-status/", nil, DstorTokenHeader, token)
		wantStatusError(t, resp, b, http.StatusUnauthorized, "")
		if resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("401 without WWW-Authenticate")
		}
		resp, b = c.chunk(token, files)
		wantMessage(t, resp, b, http.StatusUnauthorized, "")
		resp, b = c.do(http.MethodPost, "/v1/upload/get-token", []byte(`{"chunks_number": 1, "folder_path": "/p"}`))
		wantMessage(t, resp, b, http.StatusUnauthorized, "")
	}
	resp, b = owner.do(http.MethodGet, "/v1/upload/get-status/", nil)
	wantStatusError(t, resp, b, http.StatusBadRequest, "x-dstor-upload-token")
	body, ct := chunkBody(t, files)
	resp, b = owner.do(http.MethodPost, "/v1/upload/", body, "Content-Type", ct)
	wantMessage(t, resp, b, http.StatusBadRequest, "missing x-dstor-upload-token header")

	// Nothing the others sent counted: the owner's one chunk finishes it.
	owner.okChunk(token, files)
	st, _ := owner.poll(token)
	wantDone(t, st, dir, "/mine", files)
}

// Without Config.APIKeys any Authorization will do, but one is needed.
func TestDstorAnyCredential(t *testing.T) {
	ts, _, _ := sandboxOrigin(t, Config{})
	token := dsClient{t, ts, "Basic dXNlcjpwYXNz"}.getToken(1, "/x")
	if st := (dsClient{t, ts, "Basic dXNlcjpwYXNz"}).status(token); st.Status != DstorPending {
		t.Errorf("%+v", st)
	}
	resp, b := dsClient{t, ts, "Basic b3RoZXI6cGFzcw=="}.do(http.MethodGet, "/v1/upload/get-status/", nil, DstorTokenHeader, token)
	wantStatusError(t, resp, b, http.StatusNotFound, "upload not found")
	resp, b = dsClient{t, ts, ""}.do(http.MethodPost, "/v1/upload/get-token", []byte(`{"chunks_number": 1, "folder_path": "/p"}`))
	wantMessage(t, resp, b, http.StatusUnauthorized, "missing Authorization header")
}

// Chunks the origin refuses count for nothing: the upload still takes
// chunks_number good ones.
func TestDstorBadChunks(t *testing.T) {
	ts, dir, _ := sandboxOrigin(t, Config{DstorStageDelay: 10 * time.Millisecond})
	c := dsClient{t, ts, "Bearer u"}
	token := c.getToken(2, "/")
	file := func(name, data string) dsFile { return dsFile{"file", name, []byte(data)} }

	for _, tc := range []struct {
		name   string
		files  []dsFile
		status int
	}{
		{"dot-dot", []dsFile{file("ok.txt", "x"), file("../escape.txt", "x")}, 400},
		{"dot-dot inside", []dsFile{file("a/../../escape.txt", "x")}, 400},
		{"no name", []dsFile{file("/", "x")}, 400},
		{"long element", []dsFile{file(strings.Repeat("n", 256), "x")}, 400},
		{"reserved", []dsFile{file(".dstor/x", "x")}, 400},
		{"file then directory", []dsFile{file("d", "x"), file("d/e", "x")}, 409},
		{"directory then file", []dsFile{file("d/e", "x"), file("d", "x")}, 409},
	} {
		resp, b := c.chunk(token, tc.files)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %s %s, want %d", tc.name, resp.Status, b, tc.status)
			continue
		}
		wantMessage(t, resp, b, tc.status, "")
	}
	resp, b := c.do(http.MethodPost, "/v1/upload/", []byte("raw"), DstorTokenHeader, token, "Content-Type", "application/octet-stream")
	wantMessage(t, resp, b, http.StatusBadRequest, "a chunk must be multipart/form-data")
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("note", "a field, not a file")
	mw.Close()
	resp, b = c.do(http.MethodPost, "/v1/upload/", buf.Bytes(), DstorTokenHeader, token, "Content-Type", mw.FormDataContentType())
	wantMessage(t, resp, b, http.StatusBadRequest, "no files in the chunk")
	resp, b = c.do(http.MethodPut, "/v1/upload/", nil, DstorTokenHeader, token)
	wantMessage(t, resp, b, http.StatusMethodNotAllowed, "")
	resp, b = c.do(http.MethodGet, "/v1/upload/elsewhere", nil)
	wantMessage(t, resp, b, http.StatusNotFound, "not found")
	if st := c.status(token); st.Status != DstorPending {
		t.Fatalf("after refused chunks: %+v", st)
	}
	tempEntries, _ := os.ReadDir(filepath.Join(dir, DstorDir, token))
	if len(tempEntries) != 0 {
		t.Errorf("refused chunks left %d entries in the temp folder", len(tempEntries))
	}

	// A path sent again replaces the earlier file; a file whose path makes
	// a directory of an earlier file refuses its whole chunk.
	first := []dsFile{file("d", "first"), file("keep.txt", "kept"), {"f", "notes/a.txt", []byte("a")}}
	c.okChunk(token, first)
	resp, b = c.chunk(token, []dsFile{file("new.txt", "x"), file("d/e", "x")})
	wantMessage(t, resp, b, http.StatusConflict, "")
	resp, b = c.chunk(token, []dsFile{file("notes", "x")})
	wantMessage(t, resp, b, http.StatusConflict, "")
	second := []dsFile{file("d", "second"), {"plain", "/notes/b.txt", []byte("b")}}
	c.okChunk(token, second)
	st, _ := c.poll(token)
	wantDone(t, st, dir, "/", first, second)
	if _, err := os.Stat(filepath.Join(dir, "new.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file of a refused chunk was stored (%v)", err)
	}
	tempGone(t, dir)
}

// Chunks stream side by side; one more than chunks_number, counting those
// being received, is refused.
func TestDstorParallelChunks(t *testing.T) {
	ts, dir, _ := sandboxOrigin(t, Config{DstorStageDelay: 10 * time.Millisecond})
	c := dsClient{t, ts, "Bearer u"}
	chunks := folderFiles(4, 5)
	token := c.getToken(4, "/par")

	held := holdChunk(c, token, chunks[0])
	var sends []func() error
	for _, files := range chunks[1:] {
		body, ct := chunkBody(t, files)
		sends = append(sends, func() error {
			resp, b, err := c.send(http.MethodPost, "/v1/upload/", bytes.NewReader(body), "Content-Type", ct, DstorTokenHeader, token)
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("chunk: %s %s", resp.Status, b)
			}
			return err
		})
	}
	atOnce(t, sends...)
	// Three in, one being received: a fifth is one too many.
	resp, b := c.chunk(token, []dsFile{{"file", "extra.txt", []byte("x")}})
	wantMessage(t, resp, b, http.StatusConflict, "")
	if st := c.status(token); st.Status != DstorPending {
		t.Fatalf("with a chunk still coming: %+v", st)
	}
	if err := held.release(); err != nil {
		t.Fatal(err)
	}
	st, _ := c.poll(token)
	wantDone(t, st, dir, "/par", chunks...)
}

// holdChunk starts sending a chunk and returns once the origin reads its
// body, that is once it counts the chunk as being received.
func holdChunk(c dsClient, token string, files []dsFile) *heldRequest {
	c.t.Helper()
	body, ct := chunkBody(c.t, files)
	return holdRequest(c.t, "chunk", http.MethodPost, c.ts.URL+"/v1/upload/", body,
		"Authorization", c.auth, "Content-Type", ct, DstorTokenHeader, token)
}

// ERROR: asked for by the token request's header or by the Config, or
// because the tree is in the way; the files are not saved either way.
func TestDstorErrors(t *testing.T) {
	files := []dsFile{{"file", "sub/a.txt", []byte("a")}, {"file", "b.txt", []byte("b")}}
	for _, tc := range []struct {
		name   string
		cfg    Config
		header []string
		folder string
		stage  string
		why    string
	}{
		{"header at SAVING_DATA", Config{}, []string{DstorFailStageHeader, "SAVING_DATA"}, "/f", DstorSavingData, "forced failure at SAVING_DATA"},
		{"config at ADDING_TO_IPFS", Config{DstorFailStage: DstorAddingToIPFS}, nil, "/f", DstorAddingToIPFS, "forced failure at ADDING_TO_IPFS"},
		{"header over config", Config{DstorFailStage: DstorAddingToIPFS}, []string{DstorFailStageHeader, "SAVING_DATA"}, "/f", DstorSavingData, "forced failure"},
		{"a file in the way", Config{}, nil, "/in/way", DstorSavingData, "/in is not a directory"},
		{"a directory in the way", Config{}, nil, "/taken", DstorSavingData, "/taken/b.txt is a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.DstorStageDelay = 100 * time.Millisecond
			ts, dir, _ := sandboxOrigin(t, tc.cfg)
			if err := os.WriteFile(filepath.Join(dir, "in"), []byte("a file"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(dir, "taken", "b.txt"), 0o755); err != nil {
				t.Fatal(err)
			}
			c := dsClient{t, ts, "Bearer u"}
			token := c.getToken(1, tc.folder, tc.header...)
			c.okChunk(token, files)
			st, seen := c.poll(token)
			if st.Status != DstorError || st.ErrorAtStage != tc.stage || !strings.Contains(st.ErrorExplanation, tc.why) || st.Data != nil {
				t.Fatalf("final status %+v, want ERROR at %s saying %q", st, tc.stage, tc.why)
			}
			if seen[len(seen)-2] != tc.stage {
				t.Errorf("statuses seen %v: ERROR not right after %s", seen, tc.stage)
			}
			if _, err := os.Stat(filepath.Join(dir, "f")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("files saved after all (%v)", err)
			}
			if _, err := os.Stat(filepath.Join(dir, "taken", "sub")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a file moved before the failure (%v)", err)
			}
			tempGone(t, dir)
		})
	}
}

// The prefix is the Config's; the routes take it with or without a
// trailing slash.
func TestDstorPrefix(t *testing.T) {
	ts, dir, _ := sandboxOrigin(t, Config{DstorPrefix: "/api/dstor/", DstorStageDelay: 10 * time.Millisecond})
	c := dsClient{t, ts, "Bearer u"}
	resp, b := c.do(http.MethodPost, "/api/dstor/get-token/", []byte(`{"chunks_number": 1, "folder_path": "/p"}`))
	token := wantToken(t, resp, b)
	files := []dsFile{{"file", "x.bin", []byte("x")}}
	body, ct := chunkBody(t, files)
	resp, b = c.do(http.MethodPost, "/api/dstor", body, "Content-Type", ct, DstorTokenHeader, token)
	wantMessage(t, resp, b, http.StatusOK, "ok")
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, b = c.do(http.MethodGet, "/api/dstor/get-status", nil, DstorTokenHeader, token)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("get-status: %s %s", resp.Status, b)
		}
		if st := decodeDstorStatus(t, b); st.Status == DstorDone {
			wantDone(t, st, dir, "/p", files)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not DONE after 10s: %s", b)
		}
		time.Sleep(5 * time.Millisecond)
	}
	resp, b = c.do(http.MethodPost, "/v1/upload/get-token", []byte(`{"chunks_number": 1, "folder_path": "/p"}`))
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("the default prefix answers %s %s", resp.Status, b)
	}
	if _, err := New(Config{Dir: t.TempDir(), DstorPrefix: "/"}); err == nil {
		t.Error("DstorPrefix / accepted")
	}
	if _, err := New(Config{Dir: t.TempDir(), DstorFailStage: "DONE"}); err == nil {
		t.Error("DstorFailStage DONE accepted")
	}
}

// An upload is forgotten a TTL after it last changed, its temp folder
// with it.
func TestDstorTTL(t *testing.T) {
	clock := newFakeClock(0)
	ts, dir, _ := sandboxOrigin(t, Config{Now: clock.Now, DstorTTL: time.Hour})
	c := dsClient{t, ts, "Bearer u"}
	old := c.getToken(2, "/old")
	c.okChunk(old, []dsFile{{"file", "a", []byte("a")}})
	clock.Advance(59 * time.Minute)
	c.getToken(1, "/new") // sweeps
	if st := c.status(old); st.Status != DstorPending {
		t.Fatalf("before its TTL: %+v", st)
	}
	clock.Advance(2 * time.Minute)
	c.getToken(1, "/new")
	resp, b := c.do(http.MethodGet, "/v1/upload/get-status/", nil, DstorTokenHeader, old)
	wantStatusError(t, resp, b, http.StatusNotFound, "upload not found")
	if _, err := os.Stat(filepath.Join(dir, DstorDir, old)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the forgotten upload's temp folder is left (%v)", err)
	}
}

// Close stops the stages of uploads under way and leaves no timer
// behind (TestMain looks for leaks).
func TestDstorCloseStopsStages(t *testing.T) {
	s, err := New(Config{Dir: t.TempDir(), Logf: t.Logf, DstorStageDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	c := dsClient{t, ts, "Bearer u"}
	token := c.getToken(1, "/slow")
	c.okChunk(token, []dsFile{{"file", "a", []byte("a")}})
	if st := c.status(token); st.Status != DstorAddingToIPFS {
		t.Fatalf("%+v", st)
	}
	ts.Close()
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close waits for an hour-long stage")
	}
}

// The CIDs are those IPFS gives the bytes as one raw block.
func TestDstorRawCID(t *testing.T) {
	for data, want := range map[string]string{
		"":            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
		"hello world": "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e",
	} {
		if got := rawCID(sha256.Sum256([]byte(data))); got != want {
			t.Errorf("CID of %q = %s, want %s", data, got, want)
		}
	}
}
