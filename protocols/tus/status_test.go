package tus

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/progresstest"
	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// replyOf is a reply as the handler sends it, without its newline.
func replyOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %+v: %v", v, err)
	}
	return string(b)
}

// statusOf is the reply to a status request for key, as the handler
// renders it: a key that shows nothing is named in the reply.
func statusOf(t *testing.T, tr *progress.MemoryTracker, owner progress.Owner, key string) string {
	t.Helper()
	s := tr.Lookup(owner, key)
	if !s.Found {
		s.Key = key
	}
	return replyOf(t, StatusOf(s))
}

// openUpload opens a tus upload of length bytes under key, as a creation
// answered 201 does.
func openUpload(t *testing.T, tr *progress.MemoryTracker, key string, length int64) *progress.Record {
	t.Helper()
	rec, created, err := tr.OpenSession(progress.Anyone, key, progress.SessionSpec{Total: length, Idle: time.Hour})
	if err != nil || !created {
		t.Fatalf("OpenSession(%s) = %v, created %v", key, err, created)
	}
	return rec
}

// streamBytes reads n bytes of a PATCH through its stream, as the proxy
// reads them on their way to the tus server.
func streamBytes(t *testing.T, st *progress.Stream, n int64) {
	t.Helper()
	var body progress.Body
	body.InitStream(io.NopCloser(strings.NewReader(strings.Repeat("x", int(n)))), st)
	if got, err := io.Copy(io.Discard, &body); got != n || err != nil {
		t.Fatalf("streamed %d of %d bytes: %v", got, n, err)
	}
}

func TestStatusLifecycle(t *testing.T) {
	tr := progresstest.NewTracker(t, progress.Options{})
	const key = "/files/24e533e0"
	rec := openUpload(t, tr, key, 100)
	md := Metadata{"filename": "video.mp4"}
	rec.SetDetail(md, md.size())

	want := `{"upload":"/files/24e533e0","length":100,"offset":0,"received":0,"status":"created","metadata":{"filename":"video.mp4"},"error":""}`
	if got := statusOf(t, tr, progress.Anyone, key); got != want {
		t.Errorf("created:\n got  %s\n want %s", got, want)
	}

	// A PATCH from offset 0 has brought 40 bytes so far.
	st := rec.StartStream(0, 0, 100)
	streamBytes(t, st, 40)
	want = `{"upload":"/files/24e533e0","length":100,"offset":0,"received":40,"status":"uploading","metadata":{"filename":"video.mp4"},"error":""}`
	if got := statusOf(t, tr, progress.Anyone, key); got != want {
		t.Errorf("uploading:\n got  %s\n want %s", got, want)
	}

	// The connection broke; the server holds 32 of them.
	rec.EndStream(st, false)
	rec.Acknowledge(32)
	rec.SetError("client disconnected after 40 bytes")
	want = `{"upload":"/files/24e533e0","length":100,"offset":32,"received":32,"status":"paused","metadata":{"filename":"video.mp4"},"error":"client disconnected after 40 bytes"}`
	if got := statusOf(t, tr, progress.Anyone, key); got != want {
		t.Errorf("paused:\n got  %s\n want %s", got, want)
	}

	// Resumed from 32: received counts from where the PATCH starts.
	st = rec.StartStream(0, 32, 68)
	streamBytes(t, st, 8)
	want = `{"upload":"/files/24e533e0","length":100,"offset":32,"received":40,"status":"uploading","metadata":{"filename":"video.mp4"},"error":"client disconnected after 40 bytes"}`
	if got := statusOf(t, tr, progress.Anyone, key); got != want {
		t.Errorf("resumed:\n got  %s\n want %s", got, want)
	}

	streamBytes(t, st, 60)
	rec.Acknowledge(100)
	rec.SetError("")
	rec.EndStream(st, true)
	tr.EndSession(rec, progress.SessionEnded(progress.Completed, "", http.StatusNoContent))
	want = `{"upload":"/files/24e533e0","length":100,"offset":100,"received":100,"status":"completed","metadata":{"filename":"video.mp4"},"error":""}`
	if got := statusOf(t, tr, progress.Anyone, key); got != want {
		t.Errorf("completed:\n got  %s\n want %s", got, want)
	}
}

func TestStatusWords(t *testing.T) {
	for _, tc := range []struct {
		name string
		// make brings the upload at /files/x where the case wants it.
		make func(tr *progress.MemoryTracker, rec *progress.Record)
		want string
	}{
		{"created", func(*progress.MemoryTracker, *progress.Record) {},
			`{"upload":"/files/x","length":10,"offset":0,"received":0,"status":"created","error":""}`},
		// A creation-with-upload: bytes acknowledged, no PATCH yet.
		{"paused after a creation with upload", func(_ *progress.MemoryTracker, rec *progress.Record) { rec.Acknowledge(4) },
			`{"upload":"/files/x","length":10,"offset":4,"received":4,"status":"paused","error":""}`},
		// A PATCH that brought nothing and was refused.
		{"paused after a refused PATCH", func(_ *progress.MemoryTracker, rec *progress.Record) {
			rec.EndStream(rec.StartStream(0, 3, 7), false)
			rec.SetError(refusal(http.StatusConflict, 3))
		}, `{"upload":"/files/x","length":10,"offset":0,"received":0,"status":"paused","error":"the tus server answered 409 Conflict: the PATCH at offset 3 is not where the upload stands"}`},
		{"uploading", func(_ *progress.MemoryTracker, rec *progress.Record) { rec.StartStream(0, 0, 10) },
			`{"upload":"/files/x","length":10,"offset":0,"received":0,"status":"uploading","error":""}`},
		{"completed", func(tr *progress.MemoryTracker, rec *progress.Record) {
			rec.Acknowledge(10)
			tr.EndSession(rec, progress.SessionEnded(progress.Completed, "", http.StatusNoContent))
		}, `{"upload":"/files/x","length":10,"offset":10,"received":10,"status":"completed","error":""}`},
		{"terminated", func(tr *progress.MemoryTracker, rec *progress.Record) {
			rec.Acknowledge(5)
			tr.EndSession(rec, progress.SessionEnded(progress.Aborted, "terminated by the client", http.StatusNoContent))
		}, `{"upload":"/files/x","length":10,"offset":5,"received":5,"status":"terminated","error":""}`},
		{"failed", func(tr *progress.MemoryTracker, rec *progress.Record) {
			rec.Acknowledge(5)
			tr.EndSession(rec, progress.SessionEnded(progress.Failed, goneError(http.StatusNotFound), http.StatusNotFound))
		}, `{"upload":"/files/x","length":10,"offset":5,"received":5,"status":"failed","error":"the tus server answered 404 Not Found: the upload is gone"}`},
		{"failed gone", func(tr *progress.MemoryTracker, rec *progress.Record) {
			tr.EndSession(rec, progress.SessionEnded(progress.Failed, goneError(http.StatusGone), http.StatusGone))
		}, `{"upload":"/files/x","length":10,"offset":0,"received":0,"status":"failed","error":"the tus server answered 410 Gone: the upload is gone"}`},
		// The origin said when it forgets the upload, and that time passed:
		// the next look ends it.
		{"expired", func(_ *progress.MemoryTracker, rec *progress.Record) {
			rec.Acknowledge(5)
			rec.ExpiresAt(time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC))
		}, `{"upload":"/files/x","length":10,"offset":5,"received":5,"status":"expired","expires_at":"2001-02-03T04:05:06Z","error":"the upload expired at the origin before it was complete"}`},
		{"deferred length", func(_ *progress.MemoryTracker, rec *progress.Record) { rec.SetTotal(-1) },
			`{"upload":"/files/x","length":-1,"offset":0,"received":0,"status":"created","error":""}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := progresstest.NewTracker(t, progress.Options{})
			rec := openUpload(t, tr, "/files/x", 10)
			tc.make(tr, rec)
			if got := statusOf(t, tr, progress.Anyone, "/files/x"); got != tc.want {
				t.Errorf("\n got  %s\n want %s", got, tc.want)
			}
		})
	}
}

func TestStatusExpiredByIdleTime(t *testing.T) {
	tr := progresstest.NewTracker(t, progress.Options{})
	rec, _, err := tr.OpenSession(progress.Anyone, "/files/idle", progress.SessionSpec{Total: 10, Idle: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rec.Acknowledge(3)
	want := `{"upload":"/files/idle","length":10,"offset":3,"received":3,"status":"expired","error":"no request for the session's idle time"}`
	var got string
	for deadline := time.Now().Add(5 * time.Second); got != want && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		got = statusOf(t, tr, progress.Anyone, "/files/idle")
	}
	if got != want {
		t.Errorf("after the idle time:\n got  %s\n want %s", got, want)
	}
}

func TestStatusNotExist(t *testing.T) {
	tr := progresstest.NewTracker(t, progress.Options{})
	want := `{"upload":"/files/nope","status":"not_exist"}`
	if got := statusOf(t, tr, progress.Anyone, "/files/nope"); got != want {
		t.Errorf("unknown upload:\n got  %s\n want %s", got, want)
	}

	// Another owner's upload does not exist for this one.
	alice, bob := tr.Owner("Bearer alice"), tr.Owner("Bearer bob")
	if _, _, err := tr.OpenSession(alice, "/files/a", progress.SessionSpec{Total: 1}); err != nil {
		t.Fatal(err)
	}
	if got := statusOf(t, tr, bob, "/files/a"); got != `{"upload":"/files/a","status":"not_exist"}` {
		t.Errorf("another owner's upload: %s", got)
	}
	if got := statusOf(t, tr, alice, "/files/a"); !strings.Contains(got, `"status":"created"`) {
		t.Errorf("the owner's upload: %s", got)
	}

	// A plain upload under the same key (another protocol's) is no tus upload.
	if _, err := tr.Begin(progress.Anyone, "/files/plain", 5); err != nil {
		t.Fatal(err)
	}
	if got := statusOf(t, tr, progress.Anyone, "/files/plain"); got != `{"upload":"/files/plain","status":"not_exist"}` {
		t.Errorf("a plain upload's key: %s", got)
	}
}

func TestStatusExpiresAt(t *testing.T) {
	tr := progresstest.NewTracker(t, progress.Options{})
	rec := openUpload(t, tr, "/files/e", 10)
	// Said in another zone, with a fraction: the reply has it in UTC, to
	// the second.
	at := time.Date(2099, 12, 7, 11, 0, 0, 123456789, time.FixedZone("CET", 3600))
	rec.ExpiresAt(at)
	want := `{"upload":"/files/e","length":10,"offset":0,"received":0,"status":"created","expires_at":"2099-12-07T10:00:00Z","error":""}`
	if got := statusOf(t, tr, progress.Anyone, "/files/e"); got != want {
		t.Errorf("\n got  %s\n want %s", got, want)
	}
}

func TestStatusMetadataIsJSONSafe(t *testing.T) {
	tr := progresstest.NewTracker(t, progress.Options{})
	rec := openUpload(t, tr, "/files/m", 1)
	md := ParseMetadata("filename " + b64("a\"b\\c\n<d>.txt") + ",bytes " + b64("\xff\xfe"))
	rec.SetDetail(md, md.size())
	got := statusOf(t, tr, progress.Anyone, "/files/m")
	var back Status
	if err := json.Unmarshal([]byte(got), &back); err != nil {
		t.Fatalf("reply %s does not parse back: %v", got, err)
	}
	if back.Metadata["filename"] != "a\"b\\c\n<d>.txt" {
		t.Errorf("filename round-trips to %q", back.Metadata["filename"])
	}
	// Bytes that are not UTF-8 are shown, replaced, rather than break the reply.
	if back.Metadata["bytes"] != "\ufffd\ufffd" {
		t.Errorf("non-UTF-8 value round-trips to %q", back.Metadata["bytes"])
	}
	if strings.Contains(got, "<") {
		t.Errorf("reply %s carries a raw <", got)
	}
}

func TestParseTusQuery(t *testing.T) {
	for _, tc := range []struct {
		name  string
		query string
		key   string // "" when it must fail
		msg   string // the failure's message
	}{
		{"path", "upload=/files/24e533e0", "/files/24e533e0", ""},
		{"full URL", "upload=http://tus.example/files/24e533e0", "/files/24e533e0", ""},
		{"full URL escaped", "upload=https%3A%2F%2Ftus.example%3A8443%2Ffiles%2Fabc%3Fx%3D1", "/files/abc", ""},
		{"escaped path", "upload=/files/a%2520b", "/files/a b", ""},
		{"other parameters", "x=1&upload=/files/abc&y=2", "/files/abc", ""},
		{"dot segments", "upload=/files/x/../abc", "/files/abc", ""},
		{"missing", "", "", "missing query parameter upload (the upload URL or its path)"},
		{"empty", "upload=", "", "missing query parameter upload (the upload URL or its path)"},
		{"other case", "Upload=/files/abc", "", "missing query parameter upload (the upload URL or its path)"},
		{"twice", "upload=/files/a&upload=/files/b", "", "query parameter upload is given more than once"},
		{"twice the same", "upload=/files/a&upload=/files/a", "", "query parameter upload is given more than once"},
		{"relative", "upload=abc", "", "query parameter upload is not an upload URL or path"},
		{"root", "upload=/", "", "query parameter upload is not an upload URL or path"},
		{"host only", "upload=http://tus.example", "", "query parameter upload is not an upload URL or path"},
		{"bad escape", "upload=/files/%25zz", "", "query parameter upload is not an upload URL or path"},
		{"control character", "upload=/files/a%00b", "", "query parameter upload is not an upload URL or path"},
		{"too long", "upload=/" + strings.Repeat("a", maxUploadURL), "", "query parameter upload is not an upload URL or path"},
		// What UploadPath takes but a key cannot hold.
		{"escaped control character", "upload=/files/a%2500b", "", "query parameter upload: contains a control character"},
		{"not UTF-8", "upload=/files/%25FF", "", "query parameter upload: is not valid UTF-8"},
	} {
		sq, f := ParseQuery(progresstest.StatusRequest("/tus/progress", tc.query))
		if tc.key == "" {
			if f == nil || f.Kind != progress.BadRequest || f.Message != tc.msg {
				t.Errorf("%s: ParseQuery(%.40q) = %+v, %+v; want BadRequest %q", tc.name, tc.query, sq, f, tc.msg)
			}
			if sq != (progress.StatusQuery{}) {
				t.Errorf("%s: a failure came with a query %+v", tc.name, sq)
			}
			continue
		}
		if f != nil || sq.Key != tc.key || sq.Step != 1 {
			t.Errorf("%s: ParseQuery(%.40q) = %+v, %+v; want key %q, step 1", tc.name, tc.query, sq, f, tc.key)
		}
	}
}

func TestFailureReply(t *testing.T) {
	for _, tc := range []struct {
		kind progress.FailureKind
		code int
	}{
		{progress.BadRequest, http.StatusBadRequest},
		{progress.NoCredential, http.StatusUnauthorized},
		{progress.BadCredential, http.StatusUnauthorized},
		{progress.MethodNotAllowed, http.StatusMethodNotAllowed},
		{progress.Unavailable, http.StatusServiceUnavailable},
		{progress.UpgradeRequired, http.StatusUpgradeRequired},
		{progress.Forbidden, http.StatusForbidden},
	} {
		code, body := FailureReply(&progress.Failure{Kind: tc.kind, Message: `why "it" failed`})
		if code != tc.code {
			t.Errorf("kind %d: HTTP %d, want %d", tc.kind, code, tc.code)
		}
		if got, want := replyOf(t, body), `{"error":"why \"it\" failed"}`; got != want {
			t.Errorf("kind %d: reply %s, want %s", tc.kind, got, want)
		}
	}
}
