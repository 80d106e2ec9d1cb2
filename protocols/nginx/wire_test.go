package nginx

import (
	"encoding/json"
	"github.com/caddy-upload-progress/caddy-upload-progress/internal/progresstest"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// ngxJSON marshals an nginx reply as the handler does without a callback.
func ngxJSON(t *testing.T, st Status) string {
	t.Helper()
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatalf("marshal %+v: %v", st, err)
	}
	return string(b)
}

func TestNginxStatusOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    progress.Snapshot
		want string
	}{
		{"unknown id", progress.Snapshot{}, `{"state":"starting"}`},
		{"uploading", progress.Snapshot{Found: true, State: progress.Uploading, Total: 1000, Received: 250}, `{"state":"uploading","received":250,"size":1000}`},
		{"nothing received yet", progress.Snapshot{Found: true, State: progress.Uploading, Total: 1000}, `{"state":"uploading","received":0,"size":1000}`},
		{"chunked", progress.Snapshot{Found: true, State: progress.Uploading, Total: -1, Received: 77}, `{"state":"uploading","received":77,"size":-1}`},
		{"done", progress.Snapshot{Found: true, State: progress.Completed, Total: 1000, Received: 1000, HTTPStatus: 200}, `{"state":"done"}`},
		{"done after redirect", progress.Snapshot{Found: true, State: progress.Completed, HTTPStatus: 303}, `{"state":"done"}`},
		{"origin error", progress.Snapshot{Found: true, State: progress.Failed, HTTPStatus: 500, Error: "origin responded 500"}, `{"state":"error","status":500}`},
		{"too large", progress.Snapshot{Found: true, State: progress.Failed, HTTPStatus: 413, Error: "too large"}, `{"state":"error","status":413}`},
	} {
		if got := ngxJSON(t, StatusOf(tc.s)); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestNginxStatusOfTrackedUpload(t *testing.T) {
	tr := progresstest.NewTracker(t, progress.Options{})
	const id = "0123456789abcdef"
	if got := ngxJSON(t, StatusOf(tr.Lookup(progress.Anyone, id))); got != `{"state":"starting"}` {
		t.Fatalf("before the upload: %s", got)
	}

	// A chunked upload: size -1, a true received count.
	rec, err := tr.Begin(progress.Anyone, id, -1)
	if err != nil {
		t.Fatal(err)
	}
	progresstest.ReadBytes(t, progresstest.ZeroBody(rec), 4096)
	if got, want := ngxJSON(t, StatusOf(tr.Lookup(progress.Anyone, id))), `{"state":"uploading","received":4096,"size":-1}`; got != want {
		t.Fatalf("uploading: %s, want %s", got, want)
	}
	tr.Finish(rec, progress.Judge(progress.Event{Status: http.StatusCreated, Received: 4096}))
	if got := ngxJSON(t, StatusOf(tr.Lookup(progress.Anyone, id))); got != `{"state":"done"}` {
		t.Fatalf("done: %s", got)
	}

	// A re-upload under the same id starts over, and fails at the origin.
	rec, err = tr.Begin(progress.Anyone, id, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ngxJSON(t, StatusOf(tr.Lookup(progress.Anyone, id))), `{"state":"uploading","received":0,"size":10}`; got != want {
		t.Fatalf("re-upload: %s, want %s", got, want)
	}
	tr.Finish(rec, progress.Judge(progress.Event{Status: http.StatusRequestEntityTooLarge}))
	if got, want := ngxJSON(t, StatusOf(tr.Lookup(progress.Anyone, id))), `{"state":"error","status":413}`; got != want {
		t.Fatalf("failed: %s, want %s", got, want)
	}

	// A body over the proxy's own limit.
	rec, err = tr.Begin(progress.Anyone, id, 10)
	if err != nil {
		t.Fatal(err)
	}
	tr.Finish(rec, progress.Judge(progress.Event{ReadErr: &http.MaxBytesError{Limit: 5}, Received: 5}))
	if got, want := ngxJSON(t, StatusOf(tr.Lookup(progress.Anyone, id))), `{"state":"error","status":413}`; got != want {
		t.Fatalf("over the limit: %s, want %s", got, want)
	}
}

func TestNginxID(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    *http.Request
		want string
	}{
		{"query", progresstest.Request("POST", "/upload?X-Progress-ID=q1", "x"), "q1"},
		{"header", progresstest.Request("POST", "/upload", "x", "X-Progress-ID", "h1"), "h1"},
		{"header any case", progresstest.Request("POST", "/upload", "x", "x-progress-id", "h1"), "h1"},
		{"query before header", progresstest.Request("POST", "/upload?X-Progress-ID=q1", "x", "X-Progress-ID", "h1"), "q1"},
		{"empty query falls back to header", progresstest.Request("POST", "/upload?X-Progress-ID=", "x", "X-Progress-ID", "h1"), "h1"},
		{"escaped query", progresstest.Request("GET", "/progress?X-Progress-ID=a%20b", ""), "a b"},
		{"none", progresstest.Request("POST", "/upload?id=q1", "x"), ""},
	} {
		if got := id(tc.r); got != tc.want {
			t.Errorf("%s: id = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestNginxTracks(t *testing.T) {
	chunked := progresstest.Request("POST", "/upload?X-Progress-ID=a", "data")
	chunked.ContentLength = -1
	noBody := progresstest.Request("POST", "/upload?X-Progress-ID=a", "")
	noBody.Body = http.NoBody
	for _, tc := range []struct {
		name string
		r    *http.Request
		want bool
	}{
		{"query id", progresstest.Request("POST", "/upload?X-Progress-ID=a", "data"), true},
		{"header id", progresstest.Request("POST", "/any/path", "data", "X-Progress-ID", "a"), true},
		{"chunked", chunked, true},
		{"PUT", progresstest.Request("PUT", "/upload", "data", "X-Progress-ID", "a"), true},
		{"no id", progresstest.Request("POST", "/upload", "data"), false},
		{"empty id", progresstest.Request("POST", "/upload?X-Progress-ID=", "data"), false},
		{"no body", progresstest.Request("GET", "/upload?X-Progress-ID=a", ""), false},
		{"NoBody", noBody, false},
		// The id of a status request is not an upload.
		{"status request", progresstest.Request("GET", "/progress", "", "X-Progress-ID", "a"), false},
	} {
		if got := tracks(tc.r); got != tc.want {
			t.Errorf("%s: tracks = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestNginxClaims(t *testing.T) {
	if !claims(progresstest.Request("GET", "/progress?X-Progress-ID=a", "")) {
		t.Error("a status request with a query id is not claimed")
	}
	if !claims(progresstest.Request("GET", "/progress", "", "X-Progress-ID", "a")) {
		t.Error("a status request with a header id is not claimed")
	}
	if claims(progresstest.Request("GET", "/progress?path=/a", "")) {
		t.Error("a storage-node status request is claimed")
	}
}

func TestParseNginxQuery(t *testing.T) {
	long := strings.Repeat("i", progress.MaxKeyLen)
	for _, tc := range []struct {
		name   string
		r      *http.Request
		key    string // "" when it must fail
		reason string // a word of the failure message
	}{
		{"query id", progresstest.Request("GET", "/progress?X-Progress-ID=abc", ""), "abc", ""},
		{"header id", progresstest.Request("GET", "/progress", "", "X-Progress-ID", "abc"), "abc", ""},
		{"query before header", progresstest.Request("GET", "/progress?X-Progress-ID=q", "", "X-Progress-ID", "h"), "q", ""},
		{"with callback", progresstest.Request("GET", "/progress?X-Progress-ID=abc&callback=jQuery123_456", ""), "abc", ""},
		{"with empty callback", progresstest.Request("GET", "/progress?X-Progress-ID=abc&callback=", ""), "abc", ""},
		{"longest id", progresstest.Request("GET", "/progress?X-Progress-ID="+long, ""), long, ""},
		{"missing id", progresstest.Request("GET", "/progress", ""), "", "missing"},
		{"empty id", progresstest.Request("GET", "/progress?X-Progress-ID=", ""), "", "missing"},
		{"other parameter", progresstest.Request("GET", "/progress?id=abc", ""), "", "missing"},
		{"duplicate id", progresstest.Request("GET", "/progress?X-Progress-ID=a&X-Progress-ID=b", ""), "", "more than once"},
		{"duplicate id with header", progresstest.Request("GET", "/progress?X-Progress-ID=a&X-Progress-ID=a", "", "X-Progress-ID", "a"), "", "more than once"},
		{"control character", progresstest.Request("GET", "/progress?X-Progress-ID=a%0Ab", ""), "", "control"},
		{"control character in header", progresstest.Request("GET", "/progress", "", "X-Progress-ID", "a\x01b"), "", "control"},
		{"invalid UTF-8", progresstest.Request("GET", "/progress?X-Progress-ID=%FF", ""), "", "UTF-8"},
		{"too long", progresstest.Request("GET", "/progress?X-Progress-ID="+long+"i", ""), "", "longer"},
		{"bad callback", progresstest.Request("GET", "/progress?X-Progress-ID=abc&callback=alert(1)", ""), "", "callback"},
		{"script callback", progresstest.Request("GET", "/progress?X-Progress-ID=abc&callback=%3Cscript%3E", ""), "", "callback"},
		{"duplicate callback", progresstest.Request("GET", "/progress?X-Progress-ID=abc&callback=a&callback=b", ""), "", "callback"},
		{"long callback", progresstest.Request("GET", "/progress?X-Progress-ID=abc&callback="+strings.Repeat("c", 129), ""), "", "callback"},
	} {
		sq, f := ParseQuery(tc.r)
		if tc.key == "" {
			if f == nil {
				t.Errorf("%s: accepted %+v, want a failure", tc.name, sq)
				continue
			}
			if f.Kind != progress.BadRequest || !strings.Contains(f.Message, tc.reason) {
				t.Errorf("%s: failure %+v, want BadRequest mentioning %q", tc.name, f, tc.reason)
			}
			continue
		}
		if f != nil {
			t.Errorf("%s: %+v", tc.name, f)
			continue
		}
		if sq.Key != tc.key || sq.Step != 1 {
			t.Errorf("%s: %+v, want key %.40q step 1", tc.name, sq, tc.key)
		}
	}
}

func TestNginxFailure(t *testing.T) {
	for _, tc := range []struct {
		kind progress.FailureKind
		code int
	}{
		{progress.BadRequest, http.StatusBadRequest},
		{progress.NoCredential, http.StatusUnauthorized},
		{progress.BadCredential, http.StatusUnauthorized},
		{progress.MethodNotAllowed, http.StatusMethodNotAllowed},
		{progress.Unavailable, http.StatusServiceUnavailable},
	} {
		code, body := FailureReply(&progress.Failure{Kind: tc.kind, Message: "m"})
		st, ok := body.(Status)
		if code != tc.code || !ok {
			t.Errorf("kind %d: %d %T, want %d Status", tc.kind, code, body, tc.code)
			continue
		}
		// An error state, as nginx clients know it, with the HTTP status.
		want := `{"state":"error","status":` + pcItoa(tc.code) + `,"error":"m"}`
		if got := ngxJSON(t, st); got != want {
			t.Errorf("kind %d: %s, want %s", tc.kind, got, want)
		}
	}
}

func TestJSONPCallback(t *testing.T) {
	for _, cb := range []string{
		"cb", "jQuery123_456", "a.b.c", "$x", "$", "_", "x1", "jQuery1710_1334584873016",
		"window.uploadProgress", "angular.callbacks._0", "__jp0", "A$_.9",
		strings.Repeat("c", 128),
	} {
		got, f := JSONPCallback(url.Values{"callback": {cb}})
		if f != nil || got != cb {
			t.Errorf("JSONPCallback(%.40q) = %q, %+v; want it accepted", cb, got, f)
		}
	}
	for _, cb := range []string{
		"1abc", "9", "alert(1)", "a-b", "<script>", "</script><script>alert(1)</script>",
		"a b", " cb", "cb ", " ", "  ", "\t", "\n", "\r\n", "\x00", "\u00a0", "\u2028",
		"a;b", "a=b", "a[0]", "a,b", "a/b", "a\\b", "a'b", `a"b`, "a+b", "é", "a\x00",
		"(function(){})", "a//", "/*x*/a",
		strings.Repeat("c", 129), "$" + strings.Repeat("c", 128),
	} {
		got, f := JSONPCallback(url.Values{"callback": {cb}})
		if f == nil {
			t.Errorf("JSONPCallback(%.40q) = %q, accepted; want a failure", cb, got)
			continue
		}
		if f.Kind != progress.BadRequest || f.Message == "" || got != "" {
			t.Errorf("JSONPCallback(%.40q) = %q, %+v; want \"\" and a BadRequest", cb, got, f)
		}
	}

	// No callback, or an empty one, is plain JSON.
	for _, q := range []url.Values{nil, {}, {"callback": {""}}, {"jsonp": {"cb"}}} {
		if got, f := JSONPCallback(q); got != "" || f != nil {
			t.Errorf("JSONPCallback(%v) = %q, %+v; want no callback", q, got, f)
		}
	}
	// Given twice, it is ambiguous.
	if got, f := JSONPCallback(url.Values{"callback": {"a", "b"}}); f == nil || f.Kind != progress.BadRequest || got != "" {
		t.Errorf("a callback given twice: %q, %+v; want a BadRequest", got, f)
	}
	if got, f := JSONPCallback(url.Values{"callback": {"", "a"}}); f == nil {
		t.Errorf("a callback given twice, first empty: %q accepted", got)
	}
}

func TestEncodeJSONP(t *testing.T) {
	st := StatusOf(progress.Snapshot{Found: true, State: progress.Uploading, Total: 100, Received: 5})
	for _, tc := range []struct {
		cb    string
		v     any
		body  string
		ctype string
	}{
		{"", st, `{"state":"uploading","received":5,"size":100}` + "\n", "application/json"},
		{"cb", st, `cb({"state":"uploading","received":5,"size":100});` + "\n", "application/javascript"},
		{"jQuery123_456", Status{State: "done"}, `jQuery123_456({"state":"done"});` + "\n", "application/javascript"},
		{"a.b.c", Status{State: "starting"}, `a.b.c({"state":"starting"});` + "\n", "application/javascript"},
		// A reply that carries markup cannot close the script it is in.
		{"cb", Status{State: "error", Status: 400, Error: "</script><script>alert(1)</script>"},
			`cb({"state":"error","status":400,"error":"\u003c/script\u003e\u003cscript\u003ealert(1)\u003c/script\u003e"});` + "\n",
			"application/javascript"},
		// Line separators are escaped, so the reply is valid JavaScript too.
		{"cb", Status{State: "error", Error: "a\u2028b"}, `cb({"state":"error","error":"a\u2028b"});` + "\n", "application/javascript"},
	} {
		body, ctype, err := EncodeJSONP(tc.cb, tc.v)
		if err != nil {
			t.Errorf("EncodeJSONP(%q, %+v): %v", tc.cb, tc.v, err)
			continue
		}
		if string(body) != tc.body || ctype != tc.ctype {
			t.Errorf("EncodeJSONP(%q, %+v) = %q, %q; want %q, %q", tc.cb, tc.v, body, ctype, tc.body, tc.ctype)
		}
	}
	if body, ctype, err := EncodeJSONP("cb", make(chan int)); err == nil || body != nil || ctype != "" {
		t.Errorf("EncodeJSONP of an unencodable value = %q, %q, %v; want an error", body, ctype, err)
	}
}

func TestNginxHeaders(t *testing.T) {
	h := http.Header{}
	h.Set("Cache-Control", "max-age=3600")
	h.Add("Expires", "Fri, 01 Jan 2100 00:00:00 GMT")
	setHeaders(h)
	if got := h.Values("Cache-Control"); len(got) != 1 || got[0] != "no-cache" {
		t.Errorf("Cache-Control = %q, want [no-cache]", got)
	}
	if got := h.Values("Expires"); len(got) != 1 || got[0] != "Thu, 01 Jan 1970 00:00:01 GMT" {
		t.Errorf("Expires = %q, want [Thu, 01 Jan 1970 00:00:01 GMT]", got)
	}
	if _, err := http.ParseTime(h.Get("Expires")); err != nil {
		t.Errorf("Expires %q is not an HTTP date: %v", h.Get("Expires"), err)
	}
}

// nginx's error state always carries the HTTP status, and the package
// documents its replies as {"state":"error","status":S} (nginx.go). Every
// failed outcome must therefore have a status, also where the client got
// no answer: a client gone or timed out mid-body (bodyFailed), a stalled
// upload (progress.Stalled), a panic before any answer. (Found failing: those
// outcomes kept HTTPStatus 0, which omitempty rendered as
// {"state":"error"}.)
func TestNginxErrorStateAlwaysHasStatus(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    progress.Outcome
	}{
		{"client disconnected mid-body", progress.Judge(progress.Event{HandlerFailed: true, HandlerStatus: 502, ReadErr: io.ErrUnexpectedEOF, ClientGone: true, Received: 300})},
		{"client timed out mid-body", progress.Judge(progress.Event{HandlerFailed: true, ReadErr: timeoutErr{}, Received: 300})},
		{"panic before any answer", progress.Judge(progress.Event{Panicked: true, Received: 300})},
		{"stalled", progress.Stalled(time.Minute, 300)},
	} {
		tr := progresstest.NewTracker(t, progress.Options{})
		rec, err := tr.Begin(progress.Anyone, "id", 1000)
		if err != nil {
			t.Fatal(err)
		}
		progresstest.ReadBytes(t, progresstest.ZeroBody(rec), 300)
		tr.Finish(rec, tc.o)
		reply := ngxJSON(t, StatusOf(tr.Lookup(progress.Anyone, "id")))
		var got struct {
			State  string `json:"state"`
			Status *int   `json:"status"`
		}
		if err := json.Unmarshal([]byte(reply), &got); err != nil {
			t.Fatal(err)
		}
		if got.State != "error" || got.Status == nil || *got.Status < 400 {
			t.Errorf("%s: reply %s, want {\"state\":\"error\",\"status\":S} with an error status S", tc.name, reply)
		}
	}
}

// timeoutErr is a network timeout reading the body.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }
