package dstor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/url"
	"strings"
	"testing"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
	mp "github.com/caddy-upload-progress/caddy-upload-progress/progress/multipart"
	"github.com/caddy-upload-progress/caddy-upload-progress/protocol"
)

// formBody is a multipart/form-data body of the fields, in order (name,
// value pairs), and its content type.
func formBody(fields ...string) ([]byte, string) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	_ = mw.SetBoundary("dstor-form-boundary")
	for i := 0; i+1 < len(fields); i += 2 {
		_ = mw.WriteField(fields[i], fields[i+1])
	}
	_ = mw.Close()
	return b.Bytes(), mw.FormDataContentType()
}

func TestParseTokenRequest(t *testing.T) {
	form, formType := formBody("folder_path", "/photos/2024", "chunks_number", "12")
	formNoFolder, formNoFolderType := formBody("chunks_number", "3", "other", "x")
	for _, tc := range []struct {
		name, contentType, body string
		want                    TokenRequest
	}{
		{"JSON number", "application/json", `{"chunks_number": 100, "folder_path": "/photos"}`, TokenRequest{100, "/photos"}},
		{"JSON string", "application/json", `{"chunks_number": "3", "folder_path": "/a//b/", "other": true}`, TokenRequest{3, "/a//b/"}},
		{"JSON string with an escape", "application/json", `{"chunks_number": "\u0034", "folder_path": "/p"}`, TokenRequest{4, "/p"}},
		{"JSON string padded", "application/json", `{"chunks_number": " 7 ", "folder_path": "/p"}`, TokenRequest{7, "/p"}},
		{"JSON with a charset", "application/json; charset=utf-8", `{"chunks_number":1,"folder_path":"/"}`, TokenRequest{1, "/"}},
		{"JSON untyped", "", `{"chunks_number":2,"folder_path":"/p"}`, TokenRequest{2, "/p"}},
		{"JSON as text", "text/plain", `{"chunks_number":2,"folder_path":"/p"}`, TokenRequest{2, "/p"}},
		{"JSON without a folder", "application/json", `{"chunks_number":2}`, TokenRequest{2, ""}},
		{"JSON with a unicode folder", "application/json", `{"chunks_number":2,"folder_path":"/fotos/été"}`, TokenRequest{2, "/fotos/été"}},
		{"JSON at the bound", "application/json", `{"chunks_number":1000000,"folder_path":"/p"}`, TokenRequest{1_000_000, "/p"}},
		{"JSON leading zeros", "application/json", `{"chunks_number":"007","folder_path":"/p"}`, TokenRequest{7, "/p"}},
		{"urlencoded", "application/x-www-form-urlencoded", url.Values{"chunks_number": {"5"}, "folder_path": {"/my folder"}}.Encode(), TokenRequest{5, "/my folder"}},
		{"urlencoded first of two", "application/x-www-form-urlencoded", "chunks_number=5&chunks_number=6&folder_path=%2Fp", TokenRequest{5, "/p"}},
		{"multipart", formType, string(form), TokenRequest{12, "/photos/2024"}},
		{"multipart without a folder", formNoFolderType, string(formNoFolder), TokenRequest{3, ""}},
	} {
		got, ok := ParseTokenRequest(tc.contentType, []byte(tc.body))
		if !ok || got != tc.want {
			t.Errorf("%s: ParseTokenRequest(%q, %q) = %+v, %v; want %+v", tc.name, tc.contentType, tc.body, got, ok, tc.want)
		}
	}
}

func TestParseTokenRequestRefused(t *testing.T) {
	zero, zeroType := formBody("chunks_number", "0", "folder_path", "/p")
	noCount, noCountType := formBody("folder_path", "/p")
	for _, tc := range []struct {
		name, contentType, body string
	}{
		{"empty", "application/json", ""},
		{"missing count", "application/json", `{"folder_path":"/p"}`},
		{"null count", "application/json", `{"chunks_number":null,"folder_path":"/p"}`},
		{"zero", "application/json", `{"chunks_number":0,"folder_path":"/p"}`},
		{"negative", "application/json", `{"chunks_number":-1,"folder_path":"/p"}`},
		{"negative string", "application/json", `{"chunks_number":"-3","folder_path":"/p"}`},
		{"fraction", "application/json", `{"chunks_number":1.5,"folder_path":"/p"}`},
		{"whole as a fraction", "application/json", `{"chunks_number":3.0,"folder_path":"/p"}`},
		{"exponent", "application/json", `{"chunks_number":1e2,"folder_path":"/p"}`},
		{"over the bound", "application/json", `{"chunks_number":1000001,"folder_path":"/p"}`},
		{"huge", "application/json", `{"chunks_number":99999999999999999999999,"folder_path":"/p"}`},
		{"boolean", "application/json", `{"chunks_number":true,"folder_path":"/p"}`},
		{"array", "application/json", `{"chunks_number":[3],"folder_path":"/p"}`},
		{"words", "application/json", `{"chunks_number":"three","folder_path":"/p"}`},
		{"folder not a string", "application/json", `{"chunks_number":3,"folder_path":7}`},
		{"not an object", "application/json", `[3]`},
		{"a bare number", "application/json", `3`},
		{"garbage", "application/json", "chunks_number: 3"},
		{"broken JSON", "application/json", `{"chunks_number": 1,`},
		{"urlencoded words", "application/x-www-form-urlencoded", "chunks_number=two&folder_path=%2Fp"},
		{"urlencoded bad escape", "application/x-www-form-urlencoded", "chunks_number=2&folder_path=%zz"},
		{"urlencoded missing", "application/x-www-form-urlencoded", "folder_path=%2Fp"},
		{"urlencoded read as JSON", "", "chunks_number=2&folder_path=%2Fp"},
		{"multipart zero", zeroType, string(zero)},
		{"multipart missing", noCountType, string(noCount)},
		{"multipart without a boundary", "multipart/form-data", string(zero)},
		{"multipart with another boundary", "multipart/form-data; boundary=other", string(zero)},
	} {
		if got, ok := ParseTokenRequest(tc.contentType, []byte(tc.body)); ok {
			t.Errorf("%s: ParseTokenRequest(%q, %q) = %+v, want it refused", tc.name, tc.contentType, tc.body, got)
		}
	}
}

// TestParseTokenRequestCut: the proxy sees the start of a token request,
// protocol.MaxAnswer bytes at most; a count cut short there ("12" read as
// "1") is no count.
func TestParseTokenRequestCut(t *testing.T) {
	const urlencoded = "application/x-www-form-urlencoded"
	cut := func(s string) []byte { return []byte(s[:min(len(s), protocol.MaxAnswer)]) }

	// The count last, its second digit past the cut.
	long := "folder_path=/" + strings.Repeat("a", protocol.MaxAnswer) + "&chunks_number=12"
	countLast := "folder_path=/" + strings.Repeat("a", protocol.MaxAnswer-len("folder_path=/&chunks_number=1")) + "&chunks_number=12"
	if len(cut(countLast)) != protocol.MaxAnswer || !strings.HasSuffix(string(cut(countLast)), "&chunks_number=1") {
		t.Fatalf("the test's body is not cut in its count: ...%s", cut(countLast)[protocol.MaxAnswer-20:])
	}
	if got, ok := ParseTokenRequest(urlencoded, cut(countLast)); ok {
		t.Errorf("urlencoded, cut in the count: %s, want no count", shown(got))
	}
	if got, ok := ParseTokenRequest(urlencoded, cut(long)); ok {
		t.Errorf("urlencoded, the count past the cut: %s, want no count", shown(got))
	}
	// The count first: it is whole, the folder past the cut is not kept.
	first := "chunks_number=12&folder_path=/" + strings.Repeat("a", protocol.MaxAnswer)
	if got, ok := ParseTokenRequest(urlencoded, cut(first)); !ok || got != (TokenRequest{12, ""}) {
		t.Errorf("urlencoded, the folder cut: %s, %v; want 12 chunks and no folder", shown(got), ok)
	}
	// Shorter than the bound, the body is whole.
	if got, ok := ParseTokenRequest(urlencoded, []byte("folder_path=%2Fp&chunks_number=12")); !ok || got != (TokenRequest{12, "/p"}) {
		t.Errorf("urlencoded, whole: %+v, %v; want 12 chunks in /p", got, ok)
	}

	// A multipart part cut short ends without its boundary.
	form, formType := formBody("folder_path", "/p", "chunks_number", "12")
	at := bytes.Index(form, []byte("\r\n\r\n12")) + len("\r\n\r\n1")
	if got, ok := ParseTokenRequest(formType, form[:at]); ok {
		t.Errorf("multipart, cut in the count: %s, want no count", shown(got))
	}
	form, formType = formBody("chunks_number", "12", "folder_path", "/photos")
	at = bytes.Index(form, []byte("/photos")) + len("/pho")
	if got, ok := ParseTokenRequest(formType, form[:at]); !ok || got != (TokenRequest{12, ""}) {
		t.Errorf("multipart, the folder cut: %s, %v; want 12 chunks and no folder", shown(got), ok)
	}

	// JSON cut anywhere is no JSON.
	js := `{"chunks_number":12,"folder_path":"/photos"}`
	for i := range len(js) {
		if got, ok := ParseTokenRequest("application/json", []byte(js[:i])); ok {
			t.Errorf("JSON cut at %d (%s): %+v, want no count", i, js[:i], got)
		}
	}
}

// shown is a token request in a test's message, a long folder by its length.
func shown(tr TokenRequest) string {
	if len(tr.FolderPath) > 40 {
		return fmt.Sprintf("{%d chunks, a %d-byte folder}", tr.ChunksNumber, len(tr.FolderPath))
	}
	return fmt.Sprintf("{%d chunks, folder %q}", tr.ChunksNumber, tr.FolderPath)
}

func TestParseTokenRequestLongFolder(t *testing.T) {
	folder := "/" + strings.Repeat("d", 5000)
	body, _ := json.Marshal(map[string]any{"chunks_number": 2, "folder_path": folder})
	got, ok := ParseTokenRequest("application/json", body)
	if !ok || got.ChunksNumber != 2 || got.FolderPath != folder[:4096] {
		t.Errorf("a %d-byte folder: %d chunks, %d-byte folder, %v; want 2 and the first 4096 bytes", len(folder), got.ChunksNumber, len(got.FolderPath), ok)
	}
	form, formType := formBody("chunks_number", "2", "folder_path", folder)
	got, ok = ParseTokenRequest(formType, form)
	if !ok || got.ChunksNumber != 2 || got.FolderPath != folder[:4096] {
		t.Errorf("a %d-byte folder in a form: %d chunks, %d-byte folder, %v; want 2 and the first 4096 bytes", len(folder), got.ChunksNumber, len(got.FolderPath), ok)
	}
}

func TestParseTokenAnswer(t *testing.T) {
	for _, tc := range []struct {
		body, want string
	}{
		{`{"message":"ok","token":"f3a9c2e1"}`, "f3a9c2e1"},
		{`{"token":"a-b_c.d~e"}`, "a-b_c.d~e"},
		{` {"token":"x","extra":{"token":"nested"}} `, "x"},
		{`{"token":"` + strings.Repeat("t", progress.MaxKeyLen) + `"}`, strings.Repeat("t", progress.MaxKeyLen)},
	} {
		if got, ok := ParseTokenAnswer([]byte(tc.body)); !ok || got != tc.want {
			t.Errorf("ParseTokenAnswer(%s) = %q, %v; want %q", tc.body, got, ok, tc.want)
		}
	}
	for _, body := range []string{
		``,
		`{"message":"ok"}`,
		`{"message":"ok","token":""}`,
		`{"token":null}`,
		`{"token":5}`,
		`{"token":["a"]}`,
		`{"token":"a\u0000b"}`,
		`{"token":"a\nb"}`,
		`{"token":"` + strings.Repeat("t", progress.MaxKeyLen+1) + `"}`,
		`{"message":"ok","tok`,
		`{"message":"ok","token":"abc"`,
		`"abc"`,
		`<html>502 Bad Gateway</html>`,
		`{"message":"chunks_number is required"}`,
	} {
		if got, ok := ParseTokenAnswer([]byte(body)); ok {
			t.Errorf("ParseTokenAnswer(%.60s) = %q, want no token", body, got)
		}
	}
}

// session is a snapshot of a dStor session the proxy holds: what the
// token request declared, the chunks accepted and their files, and what
// streams now.
func session(chunks int, folder string, received int64, st progress.SessionState) progress.Snapshot {
	return progress.Snapshot{Found: true, Key: "tok", Total: -1, Received: received, State: progress.Uploading,
		Detail: &upload{chunks: chunks, folder: folder}, Session: &st}
}

// files is n finished files of a chunk.
func files(n int) []mp.File {
	fs := make([]mp.File, n)
	for i := range fs {
		fs[i] = mp.File{FieldName: "file", FileName: fmt.Sprintf("f%d", i), Size: 1}
	}
	return fs
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStatusOf(t *testing.T) {
	// The documented example: 37 chunks in, two streaming.
	snap := session(100, "/photos", 812646400, progress.SessionState{
		Accepted: 37, Files: 3700,
		InFlight: []progress.StreamState{
			{Received: 1000, Size: -1, Files: &mp.Progress{Files: files(10)}},
			{Received: 2000, Size: -1, Files: &mp.Progress{Files: files(2), Current: &mp.File{FieldName: "file", FileName: "img_3713.jpg", Path: "2024/img_3713.jpg"}}},
		},
	})
	want := `{"status":"UPLOADING","chunksNumber":100,"chunksUploaded":37,"chunksInFlight":2,"bytesUploaded":812646400,"filesUploaded":3712,"currentFile":"2024/img_3713.jpg","folderPath":"/photos"}`
	if got := jsonOf(t, StatusOf(snap)); got != want {
		t.Errorf("StatusOf\n got  %s\n want %s", got, want)
	}

	// Right after the token: every count there, at zero.
	want = `{"status":"UPLOADING","chunksNumber":2,"chunksUploaded":0,"chunksInFlight":0,"bytesUploaded":0,"filesUploaded":0,"folderPath":"/photos"}`
	if got := jsonOf(t, StatusOf(session(2, "/photos", 0, progress.SessionState{}))); got != want {
		t.Errorf("StatusOf a new session\n got  %s\n want %s", got, want)
	}
	// Without a folder, and a file named without directories.
	snap = session(3, "", 10, progress.SessionState{InFlight: []progress.StreamState{{Received: 10, Files: &mp.Progress{Current: &mp.File{FileName: "a.txt"}}}}})
	want = `{"status":"UPLOADING","chunksNumber":3,"chunksUploaded":0,"chunksInFlight":1,"bytesUploaded":10,"filesUploaded":0,"currentFile":"a.txt"}`
	if got := jsonOf(t, StatusOf(snap)); got != want {
		t.Errorf("StatusOf without a folder\n got  %s\n want %s", got, want)
	}
}

func TestStatusOfError(t *testing.T) {
	// A rejected chunk: ERROR, with the counts still there.
	snap := session(4, "/photos", 300, progress.SessionState{Accepted: 1, Files: 2, Error: "chunk answered 500 Internal Server Error"})
	want := `{"status":"ERROR","errorExplanation":"chunk answered 500 Internal Server Error","errorAtStage":"UPLOADING","chunksNumber":4,"chunksUploaded":1,"chunksInFlight":0,"bytesUploaded":300,"filesUploaded":2,"folderPath":"/photos"}`
	if got := jsonOf(t, StatusOf(snap)); got != want {
		t.Errorf("StatusOf after a rejected chunk\n got  %s\n want %s", got, want)
	}

	// Ended without a word from the origin: the session's time ran out.
	snap = session(4, "/photos", 300, progress.SessionState{Accepted: 1, Files: 2})
	snap.State, snap.Error = progress.Expired, "no request for the session's idle time"
	want = `{"status":"ERROR","errorExplanation":"no request for the session's idle time","errorAtStage":"UPLOADING","chunksNumber":4,"chunksUploaded":1,"chunksInFlight":0,"bytesUploaded":300,"filesUploaded":2,"folderPath":"/photos"}`
	if got := jsonOf(t, StatusOf(snap)); got != want {
		t.Errorf("StatusOf an expired session\n got  %s\n want %s", got, want)
	}
}

func TestStatusOfNotFound(t *testing.T) {
	const want = `{"status":"ERROR","errorExplanation":"upload not found","errorAtStage":"UPLOADING"}`
	for name, snap := range map[string]progress.Snapshot{
		"no record":                  {Key: "tok"},
		"the record of one request":  {Found: true, Key: "tok", Detail: &upload{chunks: 1}},
		"a session of no token":      {Found: true, Key: "tok", Session: &progress.SessionState{}},
		"another protocol's session": {Found: true, Key: "tok", Session: &progress.SessionState{}, Detail: "tus metadata"},
	} {
		if got := jsonOf(t, StatusOf(snap)); got != want {
			t.Errorf("%s: StatusOf = %s, want %s", name, got, want)
		}
	}
	if got := jsonOf(t, notFound()); got != want {
		t.Errorf("notFound = %s, want %s", got, want)
	}
}

func TestAllIn(t *testing.T) {
	for _, tc := range []struct {
		accepted, inFlight int
		want               bool
	}{{0, 0, false}, {1, 1, false}, {2, 0, true}, {3, 0, true}} {
		snap := session(2, "/p", 0, progress.SessionState{Accepted: tc.accepted, InFlight: make([]progress.StreamState, tc.inFlight)})
		if got := allIn(snap); got != tc.want {
			t.Errorf("%d of 2 chunks in, %d streaming: allIn = %v, want %v", tc.accepted, tc.inFlight, got, tc.want)
		}
	}
	if allIn(progress.Snapshot{Key: "tok"}) {
		t.Error("allIn of no session")
	}
}

func TestWithCounts(t *testing.T) {
	snap := session(2, "/photos", 1234, progress.SessionState{Accepted: 2, Files: 3})
	const counts = `"chunksNumber":2,"chunksUploaded":2,"bytesUploaded":1234,"filesUploaded":3,"folderPath":"/photos"`
	for _, tc := range []struct{ name, obj, want string }{
		{"a stage", `{"status":"ADDING_TO_IPFS"}`, `{"status":"ADDING_TO_IPFS",` + counts + `}`},
		{"DONE with its data", `{"status":"DONE","data":{"folderPath":"/photos","files":[{"path":"2024/a.jpg","size":1,"cid":"bafk"}]}}`,
			`{"status":"DONE","data":{"folderPath":"/photos","files":[{"path":"2024/a.jpg","size":1,"cid":"bafk"}]},` + counts + `}`},
		{"ERROR", `{"status":"ERROR","errorExplanation":"/photos is not a directory","errorAtStage":"SAVING_DATA"}`,
			`{"status":"ERROR","errorExplanation":"/photos is not a directory","errorAtStage":"SAVING_DATA",` + counts + `}`},
		// What the origin sent stays as it sent it, wherever it is.
		{"the origin's own counts", `{"chunksNumber":5,"status":"SAVING_DATA","folderPath":"/elsewhere"}`,
			`{"chunksNumber":5,"status":"SAVING_DATA","folderPath":"/elsewhere","chunksUploaded":2,"bytesUploaded":1234,"filesUploaded":3}`},
		{"the origin's null", `{"status":"DONE","bytesUploaded":null}`,
			`{"status":"DONE","bytesUploaded":null,"chunksNumber":2,"chunksUploaded":2,"filesUploaded":3,"folderPath":"/photos"}`},
		{"a member named with an escape", `{"status":"DONE","chunks\u004eumber":9}`,
			`{"status":"DONE","chunks\u004eumber":9,"chunksUploaded":2,"bytesUploaded":1234,"filesUploaded":3,"folderPath":"/photos"}`},
		{"every member the origin's", `{"chunksNumber":1,"chunksUploaded":1,"bytesUploaded":1,"filesUploaded":1,"folderPath":"/"}`,
			`{"chunksNumber":1,"chunksUploaded":1,"bytesUploaded":1,"filesUploaded":1,"folderPath":"/"}`},
		{"empty object", `{}`, `{` + counts + `}`},
		{"empty object with space", "{ \n}", "{ \n" + counts + `}`},
		{"pretty-printed", "\n{\n  \"status\": \"DONE\"\n}\n", "{\n  \"status\": \"DONE\"\n," + counts + `}`},
	} {
		got := WithCounts([]byte(tc.obj), snap)
		if string(got) != tc.want {
			t.Errorf("%s: WithCounts(%s)\n got  %s\n want %s", tc.name, tc.obj, got, tc.want)
		}
		if !json.Valid(got) {
			t.Errorf("%s: WithCounts(%s) = %s, no JSON", tc.name, tc.obj, got)
		}
	}
}

func TestWithCountsFolderEscaped(t *testing.T) {
	snap := session(1, `/a "quoted" <b>\é`, 0, progress.SessionState{Accepted: 1})
	got := WithCounts([]byte(`{"status":"DONE"}`), snap)
	var v map[string]any
	if err := json.Unmarshal(got, &v); err != nil || v["folderPath"] != `/a "quoted" <b>\é` {
		t.Errorf("WithCounts = %s (%v), want the folder path as a JSON string", got, err)
	}
}

func TestWithCountsNoObject(t *testing.T) {
	snap := session(2, "/photos", 1234, progress.SessionState{Accepted: 2, Files: 3})
	for _, obj := range []string{``, ` `, `null`, `[]`, `[{"status":"DONE"}]`, `"DONE"`, `42`, `{`, `{"status":"DONE"`, `{"status":"DONE"}}`,
		`{"status":"DONE"} {}`, `<html>502</html>`, "\x1f\x8b\x08\x00gzip"} {
		if got := WithCounts([]byte(obj), snap); got != nil {
			t.Errorf("WithCounts(%q) = %s, want nil", obj, got)
		}
	}
	// Without the session the counts are of, nothing is added.
	if got := WithCounts([]byte(`{"status":"DONE"}`), progress.Snapshot{Key: "tok"}); got != nil {
		t.Errorf("WithCounts of no session = %s, want nil", got)
	}
}

func TestOriginState(t *testing.T) {
	for _, tc := range []struct {
		obj   string
		state progress.State
		why   string
		ends  bool
	}{
		{`{"status":"DONE","data":{"folderPath":"/photos","files":[]}}`, progress.Completed, "", true},
		{`{"status":"ERROR","errorExplanation":"/photos is not a directory","errorAtStage":"SAVING_DATA"}`, progress.Failed, "/photos is not a directory (at SAVING_DATA)", true},
		{`{"status":"ERROR","errorExplanation":"disk full"}`, progress.Failed, "disk full", true},
		{`{"status":"ERROR"}`, progress.Failed, "the origin answered ERROR", true},
		{`{"status":"ERROR","errorAtStage":"ADDING_TO_IPFS"}`, progress.Failed, "the origin answered ERROR (at ADDING_TO_IPFS)", true},
		{`{"status":"PENDING"}`, 0, "", false},
		{`{"status":"ADDING_TO_IPFS"}`, 0, "", false},
		{`{"status":"SAVING_DATA"}`, 0, "", false},
		{`{"status":"UPLOADING","chunksNumber":2}`, 0, "", false},
		{`{"status":"done"}`, 0, "", false},
		{`{"status":1}`, 0, "", false},
		{`{"data":{"status":"DONE"}}`, 0, "", false},
		{`{"status":"DONE","status":"SAVING_DATA"}`, 0, "", false},
		{`[{"status":"DONE"}]`, 0, "", false},
		{``, 0, "", false},
		{`DONE`, 0, "", false},
		// The start of a long DONE: its status is said before its files.
		{`{"status":"DONE","data":{"folderPath":"/photos","files":[{"path":"2024/img_1.jpg","si`, progress.Completed, "", true},
		{`{"data":{"files":[{"path":"a","cid":"b"}]},"status":"DO`, 0, "", false},
	} {
		state, why, ends := originState([]byte(tc.obj))
		if state != tc.state || why != tc.why || ends != tc.ends {
			t.Errorf("originState(%s) = %v %q %v, want %v %q %v", tc.obj, state, why, ends, tc.state, tc.why, tc.ends)
		}
	}
}

func TestMessage(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"message":"chunk 11 of 10: too many"}`, "chunk 11 of 10: too many"},
		{`{"message":"ok"}`, "ok"},
		{`{"status":"ERROR","errorExplanation":"upload not found","errorAtStage":"UPLOADING"}`, "upload not found"},
		{`{"message":"m","errorExplanation":"e"}`, "e"},
		{`{"error":"bad token"}`, "bad token"},
		{`{"error":{"code":7}}`, ""},
		{`{"message":""}`, ""},
		{``, ""},
		{`Internal Server Error`, ""},
		{`["message"]`, ""},
		{`{"message":"` + strings.Repeat("m", maxOrigin) + `"}`, ""},
	} {
		if got := message([]byte(tc.body)); got != tc.want {
			t.Errorf("message(%.60s) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

// TestReplyShapes: the objects the proxy writes itself, exactly.
func TestReplyShapes(t *testing.T) {
	d := new(Dstor)
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"not found", notFound(), `{"status":"ERROR","errorExplanation":"upload not found","errorAtStage":"UPLOADING"}`},
		{"no credential", second(d.Fail(&progress.Failure{Kind: progress.NoCredential, Message: "missing Authorization header"})),
			`{"status":"ERROR","errorExplanation":"missing Authorization header","errorAtStage":"UPLOADING"}`},
		{"a bad WebSocket request", second(d.Fail(progress.BadRequestf("missing %s header", HeaderToken))),
			`{"status":"ERROR","errorExplanation":"missing X-Dstor-Upload-Token header","errorAtStage":"UPLOADING"}`},
		{"the origin's, too long to keep", rawJSON(`{"status":"DONE"}`), `{"status":"DONE"}`},
	} {
		if got := jsonOf(t, tc.v); got != tc.want {
			t.Errorf("%s:\n got  %s\n want %s", tc.name, got, tc.want)
		}
	}
}

func second[A, B any](_ A, b B) B { return b }
