package progress

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"slices"
	"strings"
	"testing"
)

// pcJSON marshals a pCloud reply as the handler sends it and returns the
// text and its top-level keys, so that tests can tell an absent key from a
// null or zero one.
func pcJSON(t *testing.T, st PcloudStatus) (string, map[string]json.RawMessage) {
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
func pcFeed(t *testing.T, rec *Record, chunk []byte) {
	t.Helper()
	n, err := io.Copy(io.Discard, NewBody(io.NopCloser(bytes.NewReader(chunk)), rec))
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
	w := multipart.NewWriter(&buf)
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
func pcBegin(t *testing.T, tr *MemoryTracker, owner Owner, key string, u pcUpload) *Record {
	t.Helper()
	rec, err := tr.Begin(owner, key, int64(len(u.body)))
	if err != nil {
		t.Fatal(err)
	}
	s := NewMultipartScanner(u.boundary)
	if s == nil {
		t.Fatalf("no scanner for boundary %q", u.boundary)
	}
	rec.FollowMultipart(s)
	return rec
}

func TestPcloudStatusNotFound(t *testing.T) {
	tr := newTestTracker(t, Options{})
	s := tr.Lookup(tr.Owner("auth:x"), "nohash")
	if s.Found {
		t.Fatalf("Lookup of an unknown hash found %+v", s)
	}
	got, _ := pcJSON(t, PcloudStatusOf(s))
	if want := `{"result":1900,"error":"Upload not found."}`; got != want {
		t.Fatalf("not found reply = %s, want %s", got, want)
	}
}

func TestPcloudStatusNotFoundForAnotherOwner(t *testing.T) {
	tr := newTestTracker(t, Options{})
	if _, err := tr.Begin(tr.Owner("auth:alice"), "h1", 10); err != nil {
		t.Fatal(err)
	}
	got, _ := pcJSON(t, PcloudStatusOf(tr.Lookup(tr.Owner("auth:bob"), "h1")))
	if want := `{"result":1900,"error":"Upload not found."}`; got != want {
		t.Fatalf("another owner's upload = %s, want %s", got, want)
	}
}

func TestPcloudStatusMultipartLifecycle(t *testing.T) {
	tr := newTestTracker(t, Options{})
	owner := tr.Owner("auth:tok")
	u := pcBuildUpload(t)
	rec := pcBegin(t, tr, owner, "hash1", u)
	total := pcItoa(len(u.body))

	// Inside the first file: it is current, nothing is finished yet.
	cut1 := u.one + 40
	pcFeed(t, rec, u.body[:cut1])
	reply, keys := pcJSON(t, PcloudStatusOf(tr.Lookup(owner, "hash1")))
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
	reply, keys = pcJSON(t, PcloudStatusOf(tr.Lookup(owner, "hash1")))
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
	if !tr.Finish(rec, Judge(Event{Status: http.StatusOK, Received: int64(len(u.body))})) {
		t.Fatal("Finish returned false")
	}
	reply, keys = pcJSON(t, PcloudStatusOf(tr.Lookup(owner, "hash1")))
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
	tr := newTestTracker(t, Options{})
	rec, err := tr.Begin(Anyone, "h", -1)
	if err != nil {
		t.Fatal(err)
	}
	pcFeed(t, rec, make([]byte, 7))
	reply, keys := pcJSON(t, PcloudStatusOf(tr.Lookup(Anyone, "h")))
	want := `{"result":0,"total":-1,"uploaded":7,"filenumber":0,"finished":false,"files":[]}`
	if reply != want {
		t.Fatalf("reply = %s, want %s", reply, want)
	}
	pcAbsent(t, reply, keys, "currentfile", "currentfileuploaded")
}

func TestPcloudStatusFailedUpload(t *testing.T) {
	tr := newTestTracker(t, Options{})
	owner := tr.Owner("auth:tok")
	u := pcBuildUpload(t)
	rec := pcBegin(t, tr, owner, "hash2", u)
	cut := u.two + 50
	pcFeed(t, rec, u.body[:cut])
	o := Judge(Event{Status: http.StatusBadGateway, Received: int64(cut)})
	if !tr.Finish(rec, o) {
		t.Fatal("Finish returned false")
	}
	st := PcloudStatusOf(tr.Lookup(owner, "hash2"))
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
	tr := newTestTracker(t, Options{})
	rec, err := tr.Begin(Anyone, "h", 1000)
	if err != nil {
		t.Fatal(err)
	}
	rec.SetFileName("big.iso")
	pcFeed(t, rec, make([]byte, 300))
	tr.Finish(rec, Judge(Event{ReadErr: io.ErrUnexpectedEOF, Received: 300}))
	reply, keys := pcJSON(t, PcloudStatusOf(tr.Lookup(Anyone, "h")))
	pcWant(t, reply, keys, "result", "0")
	pcWant(t, reply, keys, "finished", "true")
	pcWant(t, reply, keys, "error", `"client disconnected after 300 bytes"`)
	pcWant(t, reply, keys, "total", "1000")
	pcWant(t, reply, keys, "uploaded", "300")
	pcAbsent(t, reply, keys, "currentfile", "currentfileuploaded")
}

func TestPcloudStatusOriginFiles(t *testing.T) {
	tr := newTestTracker(t, Options{})
	owner := tr.Owner("auth:tok")
	u := pcBuildUpload(t)
	rec := pcBegin(t, tr, owner, "hash3", u)
	pcFeed(t, rec, u.body)

	meta := `[{"name":"one.txt","fileid":11,"size":100},{"name":"two.bin","fileid":12,"size":200}]`
	answer := []byte(`{"result":0,"fileids":[11,12],"metadata":` + meta + `}`)
	files, ok := PcloudOriginFiles(answer)
	if !ok {
		t.Fatalf("PcloudOriginFiles(%s) = false", answer)
	}
	rec.SetOriginFiles(files)
	tr.Finish(rec, Judge(Event{Status: http.StatusOK, Received: int64(len(u.body))}))

	st := PcloudStatusOf(tr.Lookup(owner, "hash3"))
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
	st := PcloudStatusOf(Snapshot{Found: true, State: Completed, Total: 3, Received: 3, OriginFiles: meta})
	if string(st.Files) != meta {
		t.Errorf("Files = %s, want %s", st.Files, meta)
	}
	reply, keys := pcJSON(t, st)
	pcWant(t, reply, keys, "files", `[{"name":"a b.txt","size":3}]`)
}

func TestPcloudStatusRawUploadWithFileName(t *testing.T) {
	tr := newTestTracker(t, Options{})
	rec, err := tr.Begin(Anyone, "h", 64)
	if err != nil {
		t.Fatal(err)
	}
	rec.SetFileName("photo.jpg")
	pcFeed(t, rec, make([]byte, 10))

	reply, _ := pcJSON(t, PcloudStatusOf(tr.Lookup(Anyone, "h")))
	want := `{"result":0,"total":64,"uploaded":10,"currentfile":"photo.jpg","currentfileuploaded":10,` +
		`"filenumber":1,"finished":false,"files":[]}`
	if reply != want {
		t.Errorf("uploading reply = %s, want %s", reply, want)
	}

	pcFeed(t, rec, make([]byte, 54))
	tr.Finish(rec, Judge(Event{Status: http.StatusOK, Received: 64}))
	reply, keys := pcJSON(t, PcloudStatusOf(tr.Lookup(Anyone, "h")))
	want = `{"result":0,"total":64,"uploaded":64,"filenumber":1,"finished":true,` +
		`"files":[{"name":"photo.jpg","size":64}]}`
	if reply != want {
		t.Errorf("finished reply = %s, want %s", reply, want)
	}
	pcAbsent(t, reply, keys, "currentfile", "currentfileuploaded")
}

func TestPcloudFailure(t *testing.T) {
	for _, tc := range []struct {
		kind   FailureKind
		code   int
		result int
	}{
		{NoCredential, http.StatusOK, 1000},
		{BadCredential, http.StatusOK, 2000},
		{BadRequest, http.StatusOK, 1900},
		{MethodNotAllowed, http.StatusMethodNotAllowed, 1900},
		{Unavailable, http.StatusServiceUnavailable, 5000},
	} {
		f := &Failure{Kind: tc.kind, Message: "why it failed"}
		code, body := PcloudFailure(f)
		if code != tc.code {
			t.Errorf("kind %d: HTTP %d, want %d", tc.kind, code, tc.code)
		}
		st, ok := body.(PcloudStatus)
		if !ok {
			t.Errorf("kind %d: body is %T, want PcloudStatus", tc.kind, body)
			continue
		}
		reply, _ := pcJSON(t, st)
		if want := `{"result":` + pcItoa(tc.result) + `,"error":"why it failed"}`; reply != want {
			t.Errorf("kind %d: reply %s, want %s", tc.kind, reply, want)
		}
	}
}

// pcRequest makes a server request for tests of the request helpers.
func pcRequest(method, target, body string, header ...string) *http.Request {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	return r
}

func TestPcloudCredential(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    *http.Request
		want string
	}{
		{"auth", pcRequest("GET", "/uploadprogress?auth=abc&progresshash=h", ""), "auth:abc"},
		{"access_token", pcRequest("GET", "/uploadprogress?access_token=xyz", ""), "access_token:xyz"},
		{"bearer", pcRequest("GET", "/uploadprogress", "", "Authorization", "Bearer xyz"), "access_token:xyz"},
		{"bearer padded", pcRequest("GET", "/uploadprogress", "", "Authorization", "Bearer  xyz "), "access_token:xyz"},
		{"basic", pcRequest("GET", "/uploadprogress", "", "Authorization", "Basic dXNlcjpwYXNz"), "authorization:Basic dXNlcjpwYXNz"},
		{"other scheme", pcRequest("GET", "/uploadprogress", "", "Authorization", "Token xyz"), "authorization:Token xyz"},
		{"auth before access_token", pcRequest("GET", "/uploadprogress?access_token=t&auth=a", ""), "auth:a"},
		{"param before header", pcRequest("GET", "/uploadprogress?auth=a", "", "Authorization", "Bearer b"), "auth:a"},
		{"empty params ignored", pcRequest("GET", "/uploadprogress?auth=&access_token=", ""), ""},
		{"none", pcRequest("GET", "/uploadprogress?progresshash=h", ""), ""},
		// An upload's body is never read for parameters.
		{"upload body", pcRequest("POST", "/uploadfile?progresshash=h", "auth=inbody",
			"Content-Type", "application/x-www-form-urlencoded"), ""},
	} {
		if got := PcloudCredential(tc.r); got != tc.want {
			t.Errorf("%s: PcloudCredential = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestPcloudCredentialBearerIsAccessToken(t *testing.T) {
	// An upload made with ?access_token=x and a status request with
	// Authorization: Bearer x belong to the same owner.
	param := PcloudCredential(pcRequest("POST", "/uploadfile?access_token=x&progresshash=h", "data"))
	header := PcloudCredential(pcRequest("GET", "/uploadprogress?progresshash=h", "", "Authorization", "Bearer x"))
	if param == "" || param != header {
		t.Fatalf("access_token=x gives %q, Bearer x gives %q; want the same credential", param, header)
	}
	if auth := PcloudCredential(pcRequest("GET", "/uploadprogress?auth=x", "")); auth == param {
		t.Fatalf("auth=x and access_token=x are the same credential %q", auth)
	}
}

func TestPcloudPreparePostForm(t *testing.T) {
	r := pcRequest("POST", "/uploadprogress", "auth=formtok&progresshash=h42",
		"Content-Type", "application/x-www-form-urlencoded")
	if f := PcloudPrepare(r); f != nil {
		t.Fatalf("PcloudPrepare: %+v", f)
	}
	cred := PcloudCredential(r)
	if cred != "auth:formtok" {
		t.Errorf("credential = %q, want auth:formtok", cred)
	}
	// The same credential as an upload that gave auth in its query.
	if up := PcloudCredential(pcRequest("POST", "/uploadfile?auth=formtok&progresshash=h42", "data")); up != cred {
		t.Errorf("upload credential %q, status POST credential %q: not the same owner", up, cred)
	}
	sq, f := ParsePcloudQuery(r)
	if f != nil || sq.Key != "h42" || sq.Step != MB {
		t.Errorf("ParsePcloudQuery = %+v, %+v; want key h42, step MB", sq, f)
	}
}

func TestPcloudPrepareQueryAndFormTogether(t *testing.T) {
	// progresshash in the query, auth in the form: both count.
	r := pcRequest("POST", "/uploadprogress?progresshash=hq", "access_token=ft",
		"Content-Type", "application/x-www-form-urlencoded")
	if f := PcloudPrepare(r); f != nil {
		t.Fatalf("PcloudPrepare: %+v", f)
	}
	if got := PcloudCredential(r); got != "access_token:ft" {
		t.Errorf("credential = %q, want access_token:ft", got)
	}
	if sq, f := ParsePcloudQuery(r); f != nil || sq.Key != "hq" {
		t.Errorf("ParsePcloudQuery = %+v, %+v; want key hq", sq, f)
	}
}

func TestPcloudPrepareFormLimit(t *testing.T) {
	form := func(n int) string { return "auth=" + strings.Repeat("a", n-len("auth=")) }

	r := pcRequest("POST", "/uploadprogress", form(64<<10), "Content-Type", "application/x-www-form-urlencoded")
	if f := PcloudPrepare(r); f != nil {
		t.Fatalf("a 64 KiB form is refused: %+v", f)
	}
	if got := PcloudCredential(r); len(got) != len("auth:")+64<<10-len("auth=") {
		t.Errorf("credential of a 64 KiB form has %d bytes", len(got))
	}

	r = pcRequest("POST", "/uploadprogress", form(64<<10+1), "Content-Type", "application/x-www-form-urlencoded")
	f := PcloudPrepare(r)
	if f == nil || f.Kind != BadRequest || f.Message == "" {
		t.Fatalf("a form of 64 KiB + 1 byte: PcloudPrepare = %+v, want a BadRequest failure", f)
	}
	if code, body := PcloudFailure(f); code != http.StatusOK || body.(PcloudStatus).Result != PcloudNotFound {
		t.Errorf("oversized form renders HTTP %d %+v", code, body)
	}
	// Even without a declared length (chunked), the bound holds.
	r = pcRequest("POST", "/uploadprogress", "", "Content-Type", "application/x-www-form-urlencoded")
	r.Body = io.NopCloser(io.MultiReader(strings.NewReader("auth="), zeroLetters{}))
	r.ContentLength = -1
	if f := PcloudPrepare(r); f == nil || f.Kind != BadRequest {
		t.Fatalf("an endless chunked form: PcloudPrepare = %+v, want a BadRequest failure", f)
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
	r := pcRequest("GET", "/uploadprogress?auth=q", "auth=body", "Content-Type", "application/x-www-form-urlencoded")
	if f := PcloudPrepare(r); f != nil {
		t.Fatalf("PcloudPrepare(GET) = %+v", f)
	}
	if r.Form != nil || r.PostForm != nil {
		t.Errorf("PcloudPrepare parsed the form of a GET: %v", r.Form)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil || string(body) != "auth=body" {
		t.Errorf("GET body after PcloudPrepare = %q, %v; want it untouched", body, err)
	}
	if got := PcloudCredential(r); got != "auth:q" {
		t.Errorf("credential = %q, want auth:q", got)
	}
}

func TestParsePcloudQuery(t *testing.T) {
	long := strings.Repeat("h", MaxKeyLen)
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
		sq, f := ParsePcloudQuery(r)
		if tc.key == "" {
			if f == nil {
				t.Errorf("%.40q: accepted %+v, want a failure", tc.query, sq)
				continue
			}
			if f.Kind != BadRequest || !strings.HasPrefix(f.Message, "Upload not found") {
				t.Errorf("%.40q: failure %+v, want BadRequest \"Upload not found...\"", tc.query, f)
			}
			if sq != (StatusQuery{}) {
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
	chunked := pcRequest("POST", "/uploadfile?progresshash=h", "data")
	chunked.ContentLength = -1
	noBody := pcRequest("POST", "/uploadfile?progresshash=h", "")
	noBody.Body = http.NoBody
	emptyBody := pcRequest("POST", "/uploadfile?progresshash=h", "")
	emptyBody.Body = io.NopCloser(strings.NewReader(""))
	emptyBody.ContentLength = 0
	for _, tc := range []struct {
		name string
		r    *http.Request
		want bool
	}{
		{"upload", pcRequest("POST", "/uploadfile?progresshash=h&auth=a", "data"), true},
		{"chunked upload", chunked, true},
		{"PUT upload", pcRequest("PUT", "/uploadfile?progresshash=h", "data"), true},
		{"no progresshash", pcRequest("POST", "/uploadfile?auth=a", "data"), false},
		{"empty progresshash", pcRequest("POST", "/uploadfile?progresshash=", "data"), false},
		{"other path", pcRequest("POST", "/other?progresshash=h", "data"), false},
		{"path prefix", pcRequest("POST", "/uploadfile/x?progresshash=h", "data"), false},
		{"status path", pcRequest("POST", "/uploadprogress?progresshash=h", "data"), false},
		{"GET", pcRequest("GET", "/uploadfile?progresshash=h", ""), false},
		{"NoBody", noBody, false},
		{"empty body", emptyBody, false},
		// pCloud's progresshash is a query parameter; one in the form body
		// is not seen (the body is never parsed).
		{"hash in body", pcRequest("POST", "/uploadfile", "progresshash=h",
			"Content-Type", "application/x-www-form-urlencoded"), false},
	} {
		if got := PcloudTracks(tc.r, "/uploadfile"); got != tc.want {
			t.Errorf("%s: PcloudTracks = %v, want %v", tc.name, got, tc.want)
		}
	}
	if r := pcRequest("POST", "/api/upload?progresshash=h", "x"); !PcloudTracks(r, "/api/upload") {
		t.Error("a configured upload path is not tracked")
	}
}

func TestPcloudKeyAndFileName(t *testing.T) {
	r := pcRequest("POST", "/uploadfile?progresshash=h%20x&filename=a%2Fb.txt", "data")
	if got := PcloudKey(r); got != "h x" {
		t.Errorf("PcloudKey = %q", got)
	}
	if got := PcloudFileName(r); got != "a/b.txt" {
		t.Errorf("PcloudFileName = %q", got)
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
		got, ok := PcloudOriginFiles([]byte(tc.answer))
		if tc.want == "" {
			if ok || got != nil {
				t.Errorf("%s: PcloudOriginFiles = %s, %v; want nil, false", tc.name, got, ok)
			}
			continue
		}
		if !ok || string(got) != tc.want {
			t.Errorf("%s: PcloudOriginFiles = %s, %v; want %s, true", tc.name, got, ok, tc.want)
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
	got, ok := PcloudOriginFiles(answer)
	if !ok {
		t.Fatal("PcloudOriginFiles = false")
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
	tr := newTestTracker(t, Options{})
	rec, err := tr.Begin(Anyone, "h", -1)
	if err != nil {
		t.Fatal(err)
	}
	rec.SetFileName("a\"b\\c\n<d>.txt")
	pcFeed(t, rec, []byte("xyz"))
	reply, _ := pcJSON(t, PcloudStatusOf(tr.Lookup(Anyone, "h")))
	var back PcloudStatus
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
// PcloudCredential only recognised "Bearer " with that exact case.)
func TestPcloudCredentialBearerSchemeIsCaseInsensitive(t *testing.T) {
	want := PcloudCredential(pcRequest("GET", "/uploadprogress?access_token=x", ""))
	for _, h := range []string{"bearer x", "BEARER x", "BeArEr x"} {
		if got := PcloudCredential(pcRequest("GET", "/uploadprogress", "", "Authorization", h)); got != want {
			t.Errorf("Authorization: %s gives credential %q, want %q as for access_token=x", h, got, want)
		}
	}
}
