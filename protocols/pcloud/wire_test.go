package pcloud

import (
	"bytes"
	"encoding/json"
	"github.com/caddy-upload-progress/caddy-upload-progress/internal/progresstest"
	"github.com/caddy-upload-progress/caddy-upload-progress/progress/multipart"
	"io"
	mimemultipart "mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"slices"
	"strings"
	"testing"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// pcJSON marshals a pCloud reply as the handler sends it and returns the
// text and its top-level keys, so that tests can tell an absent key from a
// null or zero one.
func pcJSON(t *testing.T, st Status) (string, map[string]json.RawMessage) {
	t.Helper()
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatalf("marshal %+v: %v", st, err)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatalf("reply %s is not a JSON object: %v", b, err)
	}
	return string(b), keys
}

// pcWant checks that a reply's key holds exactly the JSON text want.
func pcWant(t *testing.T, reply string, keys map[string]json.RawMessage, key, want string) {
	t.Helper()
	got, ok := keys[key]
	if !ok {
		t.Errorf("reply %s: %q is absent, want %s", reply, key, want)
		return
	}
	if string(got) != want {
		t.Errorf("reply %s: %q = %s, want %s", reply, key, got, want)
	}
}

// pcAbsent checks that a reply has none of the keys.
func pcAbsent(t *testing.T, reply string, keys map[string]json.RawMessage, names ...string) {
	t.Helper()
	for _, k := range names {
		if v, ok := keys[k]; ok {
			t.Errorf("reply %s: %q = %s, want it absent", reply, k, v)
		}
	}
}

// pcFeed reads chunk through a Body of rec, as the proxy reads the upload.
func pcFeed(t *testing.T, rec *progress.Record, chunk []byte) {
	t.Helper()
	n, err := io.Copy(io.Discard, progress.NewBody(io.NopCloser(bytes.NewReader(chunk)), rec))
	if err != nil || n != int64(len(chunk)) {
		t.Fatalf("read %d of %d bytes: %v", n, len(chunk), err)
	}
}

// pcUpload is a multipart/form-data upload as a pCloud client sends it: a
// form field, then two files.
type pcUpload struct {
	boundary string
	body     []byte
	// one and two are where the contents of the two files start.
	one, two int
}

const (
	pcOneSize = 100
	pcTwoSize = 200
)

func pcBuildUpload(t *testing.T) pcUpload {
	t.Helper()
	var buf bytes.Buffer
	w := mimemultipart.NewWriter(&buf)
	if err := w.WriteField("folderid", "0"); err != nil {
		t.Fatal(err)
	}
	one := bytes.Repeat([]byte{'a'}, pcOneSize)
	two := bytes.Repeat([]byte{'b'}, pcTwoSize)
	for _, f := range []struct {
		field, name, ctype string
		content            []byte
	}{
		{"file1", "one.txt", "text/plain", one},
		{"file2", "dir/two.bin", "application/octet-stream", two},
	} {
		h := make(textproto.MIMEHeader)
		h.Set("Content-Disposition", `form-data; name="`+f.field+`"; filename="`+f.name+`"`)
		h.Set("Content-Type", f.ctype)
		pw, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		pw.Write(f.content)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	u := pcUpload{boundary: w.Boundary(), body: buf.Bytes()}
	u.one = bytes.Index(u.body, one)
	u.two = bytes.Index(u.body, two)
	if u.one < 0 || u.two < 0 {
		t.Fatal("file contents not found in the built body")
	}
	return u
}

// pcBegin starts tracking a multipart upload the way the handler does:
// Begin, FollowMultipart, and only then the Body.
func pcBegin(t *testing.T, tr *progress.MemoryTracker, owner progress.Owner, key string, u pcUpload) *progress.Record {
	t.Helper()
	rec, err := tr.Begin(owner, key, int64(len(u.body)))
	if err != nil {
		t.Fatal(err)
	}
	s := multipart.NewScanner(u.boundary)
	if s == nil {
		t.Fatalf("no scanner for boundary %q", u.boundary)
	}
	rec.FollowMultipart(s)
	return rec
}

func TestPcloudStatusNotFound(t *testing.T) {
	tr := progresstest.NewTracker(t, progress.Options{})
	s := tr.Lookup(tr.Owner("auth:x"), "nohash")
	if s.Found {
		t.Fatalf("Lookup of an unknown hash found %+v", s)
	}
	got, _ := pcJSON(t, StatusOf(s))
	if want := `{"result":1900,"error":"Upload not found."}`; got != want {
		t.Fatalf("not found reply = %s, want %s", got, want)
	}
}

func TestPcloudStatusNotFoundForAnotherOwner(t *testing.T) {
	tr := progresstest.NewTracker(t, progress.Options{})
	if _, err := tr.Begin(tr.Owner("auth:alice"), "h1", 10); err != nil {
		t.Fatal(err)
	}
	got, _ := pcJSON(t, StatusOf(tr.Lookup(tr.Owner("auth:bob"), "h1")))
	if want := `{"result":1900,"error":"Upload not found."}`; got != want {
		t.Fatalf("another owner's upload = %s, want %s", got, want)
	}
}

func TestPcloudStatusMultipartLifecycle(t *testing.T) {
	tr := progresstest.NewTracker(t, progress.Options{})
	owner := tr.Owner("auth:tok")
	u := pcBuildUpload(t)
	rec := pcBegin(t, tr, owner, "hash1", u)
	total := pcItoa(len(u.body))

	// Inside the first file: it is current, nothing is finished yet.
	cut1 := u.one + 40
	pcFeed(t, rec, u.body[:cut1])
	reply, keys := pcJSON(t, StatusOf(tr.Lookup(owner, "hash1")))
	pcWant(t, reply, keys, "result", "0")
	pcWant(t, reply, keys, "total", total)
	pcWant(t, reply, keys, "uploaded", pcItoa(cut1))
	pcWant(t, reply, keys, "currentfile", `"one.txt"`)
	pcWant(t, reply, keys, "currentfileuploaded", "40")
	pcWant(t, reply, keys, "filenumber", "1")
	pcWant(t, reply, keys, "finished", "false")
	pcWant(t, reply, keys, "files", "[]")
	pcAbsent(t, reply, keys, "error")

	// Inside the second file: the first is finished, with its size and type.
	cut2 := u.two + 50
	pcFeed(t, rec, u.body[cut1:cut2])
	reply, keys = pcJSON(t, StatusOf(tr.Lookup(owner, "hash1")))
	pcWant(t, reply, keys, "result", "0")
	pcWant(t, reply, keys, "total", total)
	pcWant(t, reply, keys, "uploaded", pcItoa(cut2))
	pcWant(t, reply, keys, "currentfile", `"two.bin"`) // without its directory
	pcWant(t, reply, keys, "currentfileuploaded", "50")
	pcWant(t, reply, keys, "filenumber", "2")
	pcWant(t, reply, keys, "finished", "false")
	pcWant(t, reply, keys, "files", `[{"name":"one.txt","size":100,"contenttype":"text/plain"}]`)
	pcAbsent(t, reply, keys, "error")

	// The whole body, and the origin's success answer.
	pcFeed(t, rec, u.body[cut2:])
	if !tr.Finish(rec, progress.Judge(progress.Event{Status: http.StatusOK, Received: int64(len(u.body))})) {
		t.Fatal("Finish returned false")
	}
	reply, keys = pcJSON(t, StatusOf(tr.Lookup(owner, "hash1")))
	pcWant(t, reply, keys, "result", "0")
	pcWant(t, reply, keys, "total", total)
	pcWant(t, reply, keys, "uploaded", total)
	pcWant(t, reply, keys, "filenumber", "2")
	pcWant(t, reply, keys, "finished", "true")
	pcWant(t, reply, keys, "files", `[{"name":"one.txt","size":100,"contenttype":"text/plain"},`+
		`{"name":"two.bin","size":200,"contenttype":"application/octet-stream"}]`)
	pcAbsent(t, reply, keys, "currentfile", "currentfileuploaded", "error")
}

func TestPcloudStatusPlainUploadHasEmptyFiles(t *testing.T) {
	// An upload with neither multipart body nor file name: no file is
	// known, but files is still an empty array and filenumber 0.
	tr := progresstest.NewTracker(t, progress.Options{})
	rec, err := tr.Begin(progress.Anyone, "h", -1)
	if err != nil {
		t.Fatal(err)
	}
	pcFeed(t, rec, make([]byte, 7))
	reply, keys := pcJSON(t, StatusOf(tr.Lookup(progress.Anyone, "h")))
	want := `{"result":0,"total":-1,"uploaded":7,"filenumber":0,"finished":false,"files":[]}`
	if reply != want {
		t.Fatalf("reply = %s, want %s", reply, want)
	}
	pcAbsent(t, reply, keys, "currentfile", "currentfileuploaded")
}

func TestPcloudStatusFailedUpload(t *testing.T) {
	tr := progresstest.NewTracker(t, progress.Options{})
	owner := tr.Owner("auth:tok")
	u := pcBuildUpload(t)
	rec := pcBegin(t, tr, owner, "hash2", u)
	cut := u.two + 50
	pcFeed(t, rec, u.body[:cut])
	o := progress.Judge(progress.Event{Status: http.StatusBadGateway, Received: int64(cut)})
	if !tr.Finish(rec, o) {
		t.Fatal("Finish returned false")
	}
	st := StatusOf(tr.Lookup(owner, "hash2"))
	reply, keys := pcJSON(t, st)
	// The progress query itself succeeded: result 0, the reason in error.
	pcWant(t, reply, keys, "result", "0")
	pcWant(t, reply, keys, "finished", "true")
	if st.Error == "" || st.Error != o.Error {
		t.Errorf("error = %q, want the outcome's %q", st.Error, o.Error)
	}
	pcWant(t, reply, keys, "uploaded", pcItoa(cut))
	pcWant(t, reply, keys, "filenumber", "2")
	// Only the file the proxy saw end is listed; the cut one is not current
	// any more either.
	pcWant(t, reply, keys, "files", `[{"name":"one.txt","size":100,"contenttype":"text/plain"}]`)
	pcAbsent(t, reply, keys, "currentfile", "currentfileuploaded")
}

func TestPcloudStatusClientAbort(t *testing.T) {
	tr := progresstest.NewTracker(t, progress.Options{})
	rec, err := tr.Begin(progress.Anyone, "h", 1000)
	if err != nil {
		t.Fatal(err)
	}
	rec.SetFileName("big.iso")
	pcFeed(t, rec, make([]byte, 300))
	tr.Finish(rec, progress.Judge(progress.Event{ReadErr: io.ErrUnexpectedEOF, Received: 300}))
	reply, keys := pcJSON(t, StatusOf(tr.Lookup(progress.Anyone, "h")))
	pcWant(t, reply, keys, "result", "0")
	pcWant(t, reply, keys, "finished", "true")
	pcWant(t, reply, keys, "error", `"client disconnected after 300 bytes"`)
	pcWant(t, reply, keys, "total", "1000")
	pcWant(t, reply, keys, "uploaded", "300")
	pcAbsent(t, reply, keys, "currentfile", "currentfileuploaded")
}

func TestPcloudStatusOriginFiles(t *testing.T) {
	tr := progresstest.NewTracker(t, progress.Options{})
	owner := tr.Owner("auth:tok")
	u := pcBuildUpload(t)
	rec := pcBegin(t, tr, owner, "hash3", u)
	pcFeed(t, rec, u.body)

	meta := `[{"name":"one.txt","fileid":11,"size":100},{"name":"two.bin","fileid":12,"size":200}]`
	answer := []byte(`{"result":0,"fileids":[11,12],"metadata":` + meta + `}`)
	// The module reads the origin's answer; the record keeps what it read
	// as its detail.
	a := new(Pcloud).ReadAnswer(answer)
	if a.Detail == nil || a.Refused != "" {
		t.Fatalf("ReadAnswer(%s) = %+v", answer, a)
	}
	if a.Size < int64(len(meta)) {
		t.Errorf("ReadAnswer says the detail holds %d bytes, less than the %d of the metadata", a.Size, len(meta))
	}
	rec.SetDetail(a.Detail, a.Size)
	tr.Finish(rec, progress.Judge(progress.Event{Status: http.StatusOK, Received: int64(len(u.body))}))

	st := StatusOf(tr.Lookup(owner, "hash3"))
	if string(st.Files) != meta {
		t.Errorf("Files = %s, want the origin's %s", st.Files, meta)
	}
	reply, keys := pcJSON(t, st)
	pcWant(t, reply, keys, "files", meta)
	pcWant(t, reply, keys, "finished", "true")
	pcWant(t, reply, keys, "filenumber", "2")
	pcAbsent(t, reply, keys, "currentfile", "currentfileuploaded", "error")
}

func TestPcloudStatusOriginFilesVerbatim(t *testing.T) {
	// Whatever valid JSON the origin gave is what the reply carries, even
	// with its spacing (json.Marshal compacts it on the wire).
	meta := "[ {\"name\": \"a b.txt\", \"size\": 3} ]"
	st := StatusOf(progress.Snapshot{Found: true, State: progress.Completed, Total: 3, Received: 3, Detail: originFiles(meta)})
	if string(st.Files) != meta {
		t.Errorf("Files = %s, want %s", st.Files, meta)
	}
	reply, keys := pcJSON(t, st)
	pcWant(t, reply, keys, "files", `[{"name":"a b.txt","size":3}]`)

	// The same, read from the origin's answer by the module.
	a := new(Pcloud).ReadAnswer([]byte(`{"result": 0, "metadata": ` + meta + `}`))
	if a.Detail == nil {
		t.Fatal("ReadAnswer kept nothing")
	}
	st = StatusOf(progress.Snapshot{Found: true, State: progress.Completed, Total: 3, Received: 3, Detail: a.Detail})
	if string(st.Files) != meta {
		t.Errorf("Files from the answer = %s, want %s", st.Files, meta)
	}
}

func TestPcloudReadAnswer(t *testing.T) {
	// What ReadAnswer keeps is what OriginFilesOf reads, and nothing for an
	// answer that holds no metadata.
	answer := []byte(`{"result":0,"metadata":{"name":"a","size":3}}`)
	files, ok := OriginFilesOf(answer)
	if !ok {
		t.Fatal("OriginFilesOf = false")
	}
	a := new(Pcloud).ReadAnswer(answer)
	d, isFiles := a.Detail.(originFiles)
	if !isFiles || string(d) != string(files) || a.Size < int64(len(files)) || a.Refused != "" {
		t.Errorf("ReadAnswer = %+v; want originFiles %s and its size", a, files)
	}
	for _, answer := range []string{`{"result":0}`, `<html>`, ``, `{"result":0,"metadata":[` /* cut short */} {
		if a := new(Pcloud).ReadAnswer([]byte(answer)); a.Detail != nil || a.Size != 0 || a.Refused != "" {
			t.Errorf("ReadAnswer(%q) = %+v; want nothing", answer, a)
		}
	}
	// pCloud refuses with HTTP 200 and a result code: the upload failed.
	for answer, want := range map[string]string{
		`{"result":2005,"error":"Directory does not exist."}`: "origin refused the upload: Directory does not exist. (result 2005)",
		`{"result":5000}`: "origin refused the upload: no reason given (result 5000)",
	} {
		if a := new(Pcloud).ReadAnswer([]byte(answer)); a.Refused != want || a.Detail != nil {
			t.Errorf("ReadAnswer(%s) = %+v; want refused: %s", answer, a, want)
		}
	}
	// Another protocol's detail is not taken for origin files.
	st := StatusOf(progress.Snapshot{Found: true, State: progress.Completed, Detail: json.RawMessage(`[{"name":"x"}]`)})
	if string(st.Files) != "[]" {
		t.Errorf("Files with a foreign detail = %s, want []", st.Files)
	}
}

func TestPcloudStatusRawUploadWithFileName(t *testing.T) {
	tr := progresstest.NewTracker(t, progress.Options{})
	rec, err := tr.Begin(progress.Anyone, "h", 64)
	if err != nil {
		t.Fatal(err)
	}
	rec.SetFileName("photo.jpg")
	pcFeed(t, rec, make([]byte, 10))

	reply, _ := pcJSON(t, StatusOf(tr.Lookup(progress.Anyone, "h")))
	want := `{"result":0,"total":64,"uploaded":10,"currentfile":"photo.jpg","currentfileuploaded":10,` +
		`"filenumber":1,"finished":false,"files":[]}`
	if reply != want {
		t.Errorf("uploading reply = %s, want %s", reply, want)
	}

	pcFeed(t, rec, make([]byte, 54))
	tr.Finish(rec, progress.Judge(progress.Event{Status: http.StatusOK, Received: 64}))
	reply, keys := pcJSON(t, StatusOf(tr.Lookup(progress.Anyone, "h")))
	want = `{"result":0,"total":64,"uploaded":64,"filenumber":1,"finished":true,` +
		`"files":[{"name":"photo.jpg","size":64}]}`
	if reply != want {
		t.Errorf("finished reply = %s, want %s", reply, want)
	}
	pcAbsent(t, reply, keys, "currentfile", "currentfileuploaded")
}

func TestPcloudFailure(t *testing.T) {
	for _, tc := range []struct {
		kind   progress.FailureKind
		code   int
		result int
	}{
		{progress.NoCredential, http.StatusOK, 1000},
		{progress.BadCredential, http.StatusOK, 2000},
		{progress.BadRequest, http.StatusOK, 1900},
		{progress.MethodNotAllowed, http.StatusMethodNotAllowed, 1900},
		{progress.Unavailable, http.StatusServiceUnavailable, 5000},
	} {
		f := &progress.Failure{Kind: tc.kind, Message: "why it failed"}
		code, body := FailureReply(f)
		if code != tc.code {
			t.Errorf("kind %d: HTTP %d, want %d", tc.kind, code, tc.code)
		}
		st, ok := body.(Status)
		if !ok {
			t.Errorf("kind %d: body is %T, want Status", tc.kind, body)
			continue
		}
		reply, _ := pcJSON(t, st)
		if want := `{"result":` + pcItoa(tc.result) + `,"error":"why it failed"}`; reply != want {
			t.Errorf("kind %d: reply %s, want %s", tc.kind, reply, want)
		}
	}
}

func TestPcloudCredential(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    *http.Request
		want string
	}{
		{"auth", progresstest.Request("GET", "/uploadprogress?auth=abc&progresshash=h", ""), "auth:abc"},
		{"access_token", progresstest.Request("GET", "/uploadprogress?access_token=xyz", ""), "access_token:xyz"},
		{"bearer", progresstest.Request("GET", "/uploadprogress", "", "Authorization", "Bearer xyz"), "access_token:xyz"},
		{"bearer padded", progresstest.Request("GET", "/uploadprogress", "", "Authorization", "Bearer  xyz "), "access_token:xyz"},
		{"basic", progresstest.Request("GET", "/uploadprogress", "", "Authorization", "Basic dXNlcjpwYXNz"), "authorization:Basic dXNlcjpwYXNz"},
		{"other scheme", progresstest.Request("GET", "/uploadprogress", "", "Authorization", "Token xyz"), "authorization:Token xyz"},
		{"auth before access_token", progresstest.Request("GET", "/uploadprogress?access_token=t&auth=a", ""), "auth:a"},
		{"param before header", progresstest.Request("GET", "/uploadprogress?auth=a", "", "Authorization", "Bearer b"), "auth:a"},
		{"empty params ignored", progresstest.Request("GET", "/uploadprogress?auth=&access_token=", ""), ""},
		{"none", progresstest.Request("GET", "/uploadprogress?progresshash=h", ""), ""},
		// An upload's body is never read for parameters.
		{"upload body", progresstest.Request("POST", "/uploadfile?progresshash=h", "auth=inbody",
			"Content-Type", "application/x-www-form-urlencoded"), ""},
	} {
		if got := credential(tc.r); got != tc.want {
			t.Errorf("%s: credential = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestPcloudCredentialBearerIsAccessToken(t *testing.T) {
	// An upload made with ?access_token=x and a status request with
	// Authorization: Bearer x belong to the same owner.
	param := credential(progresstest.Request("POST", "/uploadfile?access_token=x&progresshash=h", "data"))
	header := credential(progresstest.Request("GET", "/uploadprogress?progresshash=h", "", "Authorization", "Bearer x"))
	if param == "" || param != header {
		t.Fatalf("access_token=x gives %q, Bearer x gives %q; want the same credential", param, header)
	}
	if auth := credential(progresstest.Request("GET", "/uploadprogress?auth=x", "")); auth == param {
		t.Fatalf("auth=x and access_token=x are the same credential %q", auth)
	}
}

func TestPcloudPreparePostForm(t *testing.T) {
	r := progresstest.Request("POST", "/uploadprogress", "auth=formtok&progresshash=h42",
		"Content-Type", "application/x-www-form-urlencoded")
	if f := prepare(r); f != nil {
		t.Fatalf("prepare: %+v", f)
	}
	cred := credential(r)
	if cred != "auth:formtok" {
		t.Errorf("credential = %q, want auth:formtok", cred)
	}
	// The same credential as an upload that gave auth in its query.
	if up := credential(progresstest.Request("POST", "/uploadfile?auth=formtok&progresshash=h42", "data")); up != cred {
		t.Errorf("upload credential %q, status POST credential %q: not the same owner", up, cred)
	}
	sq, f := ParseQuery(r)
	if f != nil || sq.Key != "h42" || sq.Step != MB {
		t.Errorf("ParseQuery = %+v, %+v; want key h42, step MB", sq, f)
	}
}

func TestPcloudPrepareQueryAndFormTogether(t *testing.T) {
	// progresshash in the query, auth in the form: both count.
	r := progresstest.Request("POST", "/uploadprogress?progresshash=hq", "access_token=ft",
		"Content-Type", "application/x-www-form-urlencoded")
	if f := prepare(r); f != nil {
		t.Fatalf("prepare: %+v", f)
	}
	if got := credential(r); got != "access_token:ft" {
		t.Errorf("credential = %q, want access_token:ft", got)
	}
	if sq, f := ParseQuery(r); f != nil || sq.Key != "hq" {
		t.Errorf("ParseQuery = %+v, %+v; want key hq", sq, f)
	}
}

func TestPcloudPrepareFormLimit(t *testing.T) {
	form := func(n int) string { return "auth=" + strings.Repeat("a", n-len("auth=")) }

	r := progresstest.Request("POST", "/uploadprogress", form(64<<10), "Content-Type", "application/x-www-form-urlencoded")
	if f := prepare(r); f != nil {
		t.Fatalf("a 64 KiB form is refused: %+v", f)
	}
	if got := credential(r); len(got) != len("auth:")+64<<10-len("auth=") {
		t.Errorf("credential of a 64 KiB form has %d bytes", len(got))
	}

	r = progresstest.Request("POST", "/uploadprogress", form(64<<10+1), "Content-Type", "application/x-www-form-urlencoded")
	f := prepare(r)
	if f == nil || f.Kind != progress.BadRequest || f.Message == "" {
		t.Fatalf("a form of 64 KiB + 1 byte: prepare = %+v, want a BadRequest failure", f)
	}
	if code, body := FailureReply(f); code != http.StatusOK || body.(Status).Result != ResultNotFound {
		t.Errorf("oversized form renders HTTP %d %+v", code, body)
	}
	// Even without a declared length (chunked), the bound holds.
	r = progresstest.Request("POST", "/uploadprogress", "", "Content-Type", "application/x-www-form-urlencoded")
	r.Body = io.NopCloser(io.MultiReader(strings.NewReader("auth="), zeroLetters{}))
	r.ContentLength = -1
	if f := prepare(r); f == nil || f.Kind != progress.BadRequest {
		t.Fatalf("an endless chunked form: prepare = %+v, want a BadRequest failure", f)
	}
}

// zeroLetters is an endless source of the letter a.
type zeroLetters struct{}

func (zeroLetters) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}

func TestPcloudPrepareLeavesGetAlone(t *testing.T) {
	r := progresstest.Request("GET", "/uploadprogress?auth=q", "auth=body", "Content-Type", "application/x-www-form-urlencoded")
	if f := prepare(r); f != nil {
		t.Fatalf("prepare(GET) = %+v", f)
	}
	if r.Form != nil || r.PostForm != nil {
		t.Errorf("prepare parsed the form of a GET: %v", r.Form)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil || string(body) != "auth=body" {
		t.Errorf("GET body after prepare = %q, %v; want it untouched", body, err)
	}
	if got := credential(r); got != "auth:q" {
		t.Errorf("credential = %q, want auth:q", got)
	}
}

func TestParsePcloudQuery(t *testing.T) {
	long := strings.Repeat("h", progress.MaxKeyLen)
	for _, tc := range []struct {
		query string
		key   string // "" when it must fail
	}{
		{"progresshash=abc123", "abc123"},
		{"progresshash=" + long, long},
		{"auth=x&progresshash=%E6%96%87", "文"},
		{"", ""},
		{"auth=x", ""},
		{"progresshash=", ""},
		{"progresshash=a&progresshash=b", ""},
		{"progresshash=a&progresshash=a", ""},
		{"progresshash=a%00b", ""},
		{"progresshash=a%0Ab", ""},
		{"progresshash=%7F", ""},
		{"progresshash=%C2%85", ""},
		{"progresshash=%FF", ""},
		{"progresshash=" + long + "h", ""},
	} {
		r := httptest.NewRequest("GET", "/uploadprogress", nil)
		r.URL.RawQuery = tc.query
		sq, f := ParseQuery(r)
		if tc.key == "" {
			if f == nil {
				t.Errorf("%.40q: accepted %+v, want a failure", tc.query, sq)
				continue
			}
			if f.Kind != progress.BadRequest || !strings.HasPrefix(f.Message, "Upload not found") {
				t.Errorf("%.40q: failure %+v, want BadRequest \"Upload not found...\"", tc.query, f)
			}
			if sq != (progress.StatusQuery{}) {
				t.Errorf("%.40q: failure with a query %+v", tc.query, sq)
			}
			continue
		}
		if f != nil {
			t.Errorf("%.40q: %+v", tc.query, f)
			continue
		}
		if sq.Key != tc.key || sq.Step != MB {
			t.Errorf("%.40q: %+v, want key %.40q step %d", tc.query, sq, tc.key, MB)
		}
	}
}

func TestPcloudTracks(t *testing.T) {
	chunked := progresstest.Request("POST", "/uploadfile?progresshash=h", "data")
	chunked.ContentLength = -1
	noBody := progresstest.Request("POST", "/uploadfile?progresshash=h", "")
	noBody.Body = http.NoBody
	emptyBody := progresstest.Request("POST", "/uploadfile?progresshash=h", "")
	emptyBody.Body = io.NopCloser(strings.NewReader(""))
	emptyBody.ContentLength = 0
	for _, tc := range []struct {
		name string
		r    *http.Request
		want bool
	}{
		{"upload", progresstest.Request("POST", "/uploadfile?progresshash=h&auth=a", "data"), true},
		{"chunked upload", chunked, true},
		{"PUT upload", progresstest.Request("PUT", "/uploadfile?progresshash=h", "data"), true},
		{"no progresshash", progresstest.Request("POST", "/uploadfile?auth=a", "data"), false},
		{"empty progresshash", progresstest.Request("POST", "/uploadfile?progresshash=", "data"), false},
		{"other path", progresstest.Request("POST", "/other?progresshash=h", "data"), false},
		{"path prefix", progresstest.Request("POST", "/uploadfile/x?progresshash=h", "data"), false},
		{"status path", progresstest.Request("POST", "/uploadprogress?progresshash=h", "data"), false},
		{"GET", progresstest.Request("GET", "/uploadfile?progresshash=h", ""), false},
		{"NoBody", noBody, false},
		{"empty body", emptyBody, false},
		// pCloud's progresshash is a query parameter; one in the form body
		// is not seen (the body is never parsed).
		{"hash in body", progresstest.Request("POST", "/uploadfile", "progresshash=h",
			"Content-Type", "application/x-www-form-urlencoded"), false},
	} {
		if got := tracks(tc.r, "/uploadfile"); got != tc.want {
			t.Errorf("%s: tracks = %v, want %v", tc.name, got, tc.want)
		}
	}
	if r := progresstest.Request("POST", "/api/upload?progresshash=h", "x"); !tracks(r, "/api/upload") {
		t.Error("a configured upload path is not tracked")
	}
}

func TestPcloudKeyAndFileName(t *testing.T) {
	r := progresstest.Request("POST", "/uploadfile?progresshash=h%20x&filename=a%2Fb.txt", "data")
	if got := key(r); got != "h x" {
		t.Errorf("key = %q", got)
	}
	if got := fileName(r); got != "a/b.txt" {
		t.Errorf("fileName = %q", got)
	}
}

func TestPcloudOriginFiles(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer string
		want   string // "" when it must report false
	}{
		{"array", `{"result":0,"fileids":[1],"metadata":[{"name":"a","fileid":1}]}`, `[{"name":"a","fileid":1}]`},
		{"array spaced", `{"result": 0, "metadata":  [ {"name": "a"}, {"name": "b"} ] }`, `[ {"name": "a"}, {"name": "b"} ]`},
		{"empty array", `{"result":0,"metadata":[]}`, `[]`},
		{"object", `{"result":0,"metadata":{"name":"a","size":3}}`, `[{"name":"a","size":3}]`},
		{"result after metadata", `{"metadata":[{"name":"a"}],"result":0}`, `[{"name":"a"}]`},
		{"error result", `{"result":2000,"error":"Log in failed."}`, ""},
		{"error result with metadata", `{"result":2008,"metadata":[{"name":"a"}]}`, ""},
		{"missing result", `{"metadata":[{"name":"a"}]}`, ""},
		{"null result", `{"result":null,"metadata":[{"name":"a"}]}`, ""},
		{"string result", `{"result":"0","metadata":[{"name":"a"}]}`, ""},
		{"no metadata", `{"result":0}`, ""},
		{"null metadata", `{"result":0,"metadata":null}`, ""},
		{"string metadata", `{"result":0,"metadata":"a"}`, ""},
		{"number metadata", `{"result":0,"metadata":3}`, ""},
		{"truncated", `{"result":0,"metadata":[{"name":"a"},{"na`, ""},
		{"truncated after metadata", `{"result":0,"metadata":[{"name":"a"}]`, ""},
		{"trailing garbage", `{"result":0,"metadata":[]} x`, ""},
		{"html", `<html><body>502 Bad Gateway</body></html>`, ""},
		{"empty", ``, ""},
		{"array answer", `[{"result":0}]`, ""},
	} {
		got, ok := OriginFilesOf([]byte(tc.answer))
		if tc.want == "" {
			if ok || got != nil {
				t.Errorf("%s: OriginFilesOf = %s, %v; want nil, false", tc.name, got, ok)
			}
			continue
		}
		if !ok || string(got) != tc.want {
			t.Errorf("%s: OriginFilesOf = %s, %v; want %s, true", tc.name, got, ok, tc.want)
			continue
		}
		if !json.Valid(got) {
			t.Errorf("%s: %s is not valid JSON", tc.name, got)
		}
	}
}

func TestPcloudOriginFilesDoesNotAliasTheAnswer(t *testing.T) {
	// The capture buffer may be reused once the answer has gone on.
	answer := []byte(`{"result":0,"metadata":[{"name":"a"}]}`)
	got, ok := OriginFilesOf(answer)
	if !ok {
		t.Fatal("OriginFilesOf = false")
	}
	want := slices.Clone(got)
	for i := range answer {
		answer[i] = 'x'
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("files changed with the answer buffer: %s", got)
	}
}

func TestPcloudStatusRendersErrorsAsJSONSafe(t *testing.T) {
	// A file name with characters that must be escaped in JSON stays valid.
	tr := progresstest.NewTracker(t, progress.Options{})
	rec, err := tr.Begin(progress.Anyone, "h", -1)
	if err != nil {
		t.Fatal(err)
	}
	rec.SetFileName("a\"b\\c\n<d>.txt")
	pcFeed(t, rec, []byte("xyz"))
	reply, _ := pcJSON(t, StatusOf(tr.Lookup(progress.Anyone, "h")))
	var back Status
	if err := json.Unmarshal([]byte(reply), &back); err != nil {
		t.Fatalf("reply %s does not parse back: %v", reply, err)
	}
	if back.CurrentFile == nil || *back.CurrentFile != "a\"b\\c\n<d>.txt" {
		t.Fatalf("currentfile round-trips to %v", back.CurrentFile)
	}
	if strings.Contains(reply, "<") {
		t.Errorf("reply %s carries a raw <", reply)
	}
}

// pcItoa formats an int for comparison with JSON numbers.
func pcItoa[T ~int | ~int64](n T) string {
	b, _ := json.Marshal(int64(n))
	return string(b)
}

// The scheme of an Authorization header is case-insensitive (RFC 9110
// section 11.1): "bearer x" and "BEARER x" are the same credential as
// "Bearer x", that is, as access_token=x, or a client that spells it so
// would be another owner and get "Upload not found." (Found failing:
// credential only recognised "Bearer " with that exact case.)
func TestPcloudCredentialBearerSchemeIsCaseInsensitive(t *testing.T) {
	want := credential(progresstest.Request("GET", "/uploadprogress?access_token=x", ""))
	for _, h := range []string{"bearer x", "BEARER x", "BeArEr x"} {
		if got := credential(progresstest.Request("GET", "/uploadprogress", "", "Authorization", h)); got != want {
			t.Errorf("Authorization: %s gives credential %q, want %q as for access_token=x", h, got, want)
		}
	}
}
