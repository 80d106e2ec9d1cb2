package shard

import (
	"encoding/json"
	"github.com/caddy-upload-progress/caddy-upload-progress/internal/progresstest"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

func TestParseShardQueryErrors(t *testing.T) {
	long := "/" + strings.Repeat("a", progress.MaxKeyLen) // MaxKeyLen+1 bytes
	tests := []struct {
		name string
		q    url.Values
	}{
		{"no path", url.Values{}},
		{"empty path", url.Values{"path": {""}}},
		{"relative path", url.Values{"path": {"files/a.bin"}}},
		{"dot path", url.Values{"path": {"./a"}}},
		{"path given twice", url.Values{"path": {"/a", "/a"}}},
		{"path given twice, differently", url.Values{"path": {"/a", "/b"}}},
		{"NUL in path", url.Values{"path": {"/a\x00b"}}},
		{"newline in path", url.Values{"path": {"/a\nb"}}},
		{"CR in path", url.Values{"path": {"/a\rb"}}},
		{"tab in path", url.Values{"path": {"/a\tb"}}},
		{"ESC in path", url.Values{"path": {"/a\x1b[31m"}}},
		{"DEL in path", url.Values{"path": {"/a\x7f"}}},
		{"C1 control in path", url.Values{"path": {"/a\u0085b"}}},
		{"invalid UTF-8", url.Values{"path": {"/a\xffb"}}},
		{"truncated UTF-8", url.Values{"path": {"/a\xe2\x82"}}},
		{"overlong UTF-8", url.Values{"path": {"/\xc0\xaf"}}},
		{"too long", url.Values{"path": {long}}},
		{"rate 0", url.Values{"path": {"/a"}, "updatingRate": {"0"}}},
		{"rate -1", url.Values{"path": {"/a"}, "updatingRate": {"-1"}}},
		{"rate 1.5", url.Values{"path": {"/a"}, "updatingRate": {"1.5"}}},
		{"rate abc", url.Values{"path": {"/a"}, "updatingRate": {"abc"}}},
		{"rate with space", url.Values{"path": {"/a"}, "updatingRate": {" 1"}}},
		{"rate 1e3", url.Values{"path": {"/a"}, "updatingRate": {"1e3"}}},
		{"rate huge", url.Values{"path": {"/a"}, "updatingRate": {"99999999999999999999999"}}},
		{"rate max uint64", url.Values{"path": {"/a"}, "updatingRate": {"18446744073709551615"}}},
		{"rate that would overflow GB", url.Values{"path": {"/a"}, "updatingRate": {"9000000000"}, "unitOfMeasurement": {"GB"}}},
		{"rate just past the max", url.Values{"path": {"/a"}, "updatingRate": {"1048577"}}},
		{"rate given twice", url.Values{"path": {"/a"}, "updatingRate": {"1", "2"}}},
		{"unit KB", url.Values{"path": {"/a"}, "unitOfMeasurement": {"KB"}}},
		{"unit bytes", url.Values{"path": {"/a"}, "unitOfMeasurement": {"B"}}},
		{"unit TB", url.Values{"path": {"/a"}, "unitOfMeasurement": {"TB"}}},
		{"unit MiB", url.Values{"path": {"/a"}, "unitOfMeasurement": {"MiB"}}},
		{"unit with space", url.Values{"path": {"/a"}, "unitOfMeasurement": {"MB "}}},
		{"unit given twice", url.Values{"path": {"/a"}, "unitOfMeasurement": {"MB", "MB"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, f := ParseQuery(tt.q)
			if f == nil {
				t.Fatalf("ParseQuery(%q) = %+v, want a failure", tt.q, q)
			}
			if f.Kind != progress.BadRequest || f.Message == "" || f.Error() != f.Message {
				t.Fatalf("failure = %+v, want a BadRequest with a message", f)
			}
			// The storage node answers it as a 400 with {"error": message}.
			code, body := FailureReply(f)
			b, err := json.Marshal(body)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := json.Marshal(map[string]string{"error": f.Message})
			if code != http.StatusBadRequest || string(b) != string(want) {
				t.Fatalf("FailureReply = %d %s, want 400 %s", code, b, want)
			}
		})
	}
}

func TestParseShardQuery(t *testing.T) {
	maxPath := "/" + strings.Repeat("b", progress.MaxKeyLen-1)
	tests := []struct {
		raw  string
		want progress.StatusQuery
	}{
		{"path=/a", progress.StatusQuery{Key: "/a", Step: 1 << 20}},
		{"path=%2Ffiles%2Fa.bin", progress.StatusQuery{Key: "/files/a.bin", Step: MB}},
		{"path=/a&updatingRate=1", progress.StatusQuery{Key: "/a", Step: MB}},
		{"path=/a&updatingRate=", progress.StatusQuery{Key: "/a", Step: MB}},
		{"path=/a&updatingRate=5", progress.StatusQuery{Key: "/a", Step: 5 << 20}},
		{"path=/a&updatingRate=5&unitOfMeasurement=MB", progress.StatusQuery{Key: "/a", Step: 5 << 20}},
		{"path=/a&updatingRate=3&unitOfMeasurement=GB", progress.StatusQuery{Key: "/a", Step: 3 << 30}},
		{"path=/a&updatingRate=3&unitOfMeasurement=gb", progress.StatusQuery{Key: "/a", Step: 3 << 30}},
		{"path=/a&updatingRate=3&unitOfMeasurement=Gb", progress.StatusQuery{Key: "/a", Step: 3 << 30}},
		{"path=/a&updatingRate=2&unitOfMeasurement=mb", progress.StatusQuery{Key: "/a", Step: 2 << 20}},
		{"path=/a&unitOfMeasurement=", progress.StatusQuery{Key: "/a", Step: MB}},
		{"path=/a&unitOfMeasurement=GB", progress.StatusQuery{Key: "/a", Step: GB}},
		{"path=/a&updatingRate=1048576&unitOfMeasurement=GB", progress.StatusQuery{Key: "/a", Step: 1 << 50}},
		{"path=/a&updatingRate=007", progress.StatusQuery{Key: "/a", Step: 7 << 20}},
		{"path=/a&informProgress=true&other=x", progress.StatusQuery{Key: "/a", Step: MB}},
		{"path=/%E6%96%87%E4%BB%B6/a%20b.txt", progress.StatusQuery{Key: "/文件/a b.txt", Step: MB}},
		{"path=" + maxPath, progress.StatusQuery{Key: maxPath, Step: MB}},
	}
	for _, tt := range tests {
		q, err := url.ParseQuery(tt.raw)
		if err != nil {
			t.Fatal(err)
		}
		got, f := ParseQuery(q)
		if f != nil {
			t.Errorf("ParseQuery(%.60q): %v", tt.raw, f)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseQuery(%.60q) = %+v, want %+v", tt.raw, got, tt.want)
		}
	}
	if MB != 1<<20 || GB != 1<<30 {
		t.Errorf("MB = %d, GB = %d: units must be binary", MB, GB)
	}
}

func shardJSON(t *testing.T, s progress.Snapshot) string {
	t.Helper()
	b, err := json.Marshal(StatusOf(s))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestShardStatusOf(t *testing.T) {
	tests := []struct {
		name string
		s    progress.Snapshot
		want string
	}{
		{"not found", progress.Snapshot{},
			`{"total_size":0,"uploaded":0,"status":"not_exist","error":""}`},
		{"not found never leaks fields", progress.Snapshot{Found: false, ID: 9, Key: "/k", Total: 5, Received: 3, State: progress.Failed, Error: "secret"},
			`{"total_size":0,"uploaded":0,"status":"not_exist","error":""}`},
		{"uploading", progress.Snapshot{Found: true, ID: 1, Key: "/a", Total: 1000, Received: 400, State: progress.Uploading},
			`{"total_size":1000,"uploaded":400,"status":"uploading","error":""}`},
		{"uploading, no length", progress.Snapshot{Found: true, Total: -1, Received: 400, State: progress.Uploading},
			`{"total_size":-1,"uploaded":400,"status":"uploading","error":""}`},
		{"completed", progress.Snapshot{Found: true, Total: 1000, Received: 1000, State: progress.Completed, HTTPStatus: 201},
			`{"total_size":1000,"uploaded":1000,"status":"completed","error":""}`},
		{"failed", progress.Snapshot{Found: true, Total: 1000, Received: 10, State: progress.Failed, HTTPStatus: 409, Error: "origin responded 409 Conflict"},
			`{"total_size":1000,"uploaded":10,"status":"failed","error":"origin responded 409 Conflict"}`},
		{"failed, error needing escapes", progress.Snapshot{Found: true, Total: 1, State: progress.Failed, Error: `say "<no>" & go`},
			`{"total_size":1,"uploaded":0,"status":"failed","error":"say \"\u003cno\u003e\" \u0026 go"}`},
	}
	for _, tt := range tests {
		if got := shardJSON(t, tt.s); got != tt.want {
			t.Errorf("%s:\n got  %s\n want %s", tt.name, got, tt.want)
		}
	}
}

func TestShardStatusFromTracker(t *testing.T) {
	tr := progresstest.NewTracker(t, progress.Options{})
	if got, want := shardJSON(t, tr.Lookup(progress.Anyone, "/x")), `{"total_size":0,"uploaded":0,"status":"not_exist","error":""}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	rec, _ := tr.Begin(progress.Anyone, "/x", 300)
	progresstest.ReadBytes(t, progresstest.ZeroBody(rec), 120)
	if got, want := shardJSON(t, tr.Lookup(progress.Anyone, "/x")), `{"total_size":300,"uploaded":120,"status":"uploading","error":""}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	tr.Finish(rec, progress.Judge(progress.Event{ClientGone: true, Received: rec.Received()}))
	if got, want := shardJSON(t, tr.Lookup(progress.Anyone, "/x")), `{"total_size":300,"uploaded":120,"status":"failed","error":"client disconnected after 120 bytes"}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestShardTracks(t *testing.T) {
	post := func(target string, body io.Reader) *http.Request {
		return httptest.NewRequest(http.MethodPost, target, body)
	}
	chunked := func(target string) *http.Request {
		r := post(target, strings.NewReader("some data"))
		r.ContentLength = -1
		return r
	}
	zeroLen := func(target string) *http.Request {
		r := post(target, strings.NewReader(""))
		r.ContentLength = 0
		return r
	}
	nilBody := func(target string) *http.Request {
		r := post(target, strings.NewReader("x"))
		r.Body = nil
		return r
	}
	noBody := func(target string) *http.Request {
		r := post(target, nil)
		r.Body = http.NoBody
		r.ContentLength = -1 // even with an unknown length, NoBody is no body
		return r
	}
	const on = "/fso?path=/a&informProgress=true"
	tests := []struct {
		name string
		r    *http.Request
		want bool
	}{
		{"POST with body and informProgress=true", post(on, strings.NewReader("hello")), true},
		{"informProgress=1", post("/fso?path=/a&informProgress=1", strings.NewReader("hello")), true},
		{"informProgress=TRUE", post("/fso?path=/a&informProgress=TRUE", strings.NewReader("hello")), true},
		{"chunked", chunked(on), true},
		{"PUT with body", httptest.NewRequest(http.MethodPut, on, strings.NewReader("x")), true},
		{"without informProgress", post("/fso?path=/a", strings.NewReader("hello")), false},
		{"informProgress=false", post("/fso?path=/a&informProgress=false", strings.NewReader("hello")), false},
		{"informProgress empty", post("/fso?path=/a&informProgress=", strings.NewReader("hello")), false},
		{"informProgress=yes", post("/fso?path=/a&informProgress=yes", strings.NewReader("hello")), false},
		{"empty body, ContentLength 0", zeroLen(on), false},
		{"no body at all", post(on, nil), false},
		{"http.NoBody", noBody(on), false},
		{"nil Body", nilBody(on), false},
		{"GET without body", httptest.NewRequest(http.MethodGet, on, nil), false},
	}
	for _, tt := range tests {
		if got := tracks(tt.r); got != tt.want {
			t.Errorf("%s: tracks = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestShardTracksServerRequests(t *testing.T) {
	// What net/http actually hands a handler for each kind of upload.
	got := make(chan bool, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- tracks(r)
		io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()

	do := func(t *testing.T, body io.Reader, length int64, query string) bool {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/fso?"+query, body)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = length
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return <-got
	}
	const on = "path=/a&informProgress=true"
	if !do(t, strings.NewReader("hello"), 5, on) {
		t.Error("sized upload not tracked")
	}
	// A reader of unknown size is sent chunked.
	if !do(t, io.MultiReader(strings.NewReader("he"), strings.NewReader("llo")), -1, on) {
		t.Error("chunked upload not tracked")
	}
	if do(t, nil, 0, on) {
		t.Error("empty POST tracked")
	}
	if do(t, strings.NewReader("hello"), 5, "path=/a") {
		t.Error("upload without informProgress tracked")
	}
}

func TestShardFailureStatus(t *testing.T) {
	tests := []struct {
		kind progress.FailureKind
		code int
	}{
		{progress.BadRequest, http.StatusBadRequest},
		{progress.NoCredential, http.StatusUnauthorized},
		{progress.BadCredential, http.StatusUnauthorized},
		{progress.MethodNotAllowed, http.StatusMethodNotAllowed},
		{progress.Unavailable, http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		code, body := FailureReply(&progress.Failure{Kind: tt.kind, Message: "why"})
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		if code != tt.code || string(b) != `{"error":"why"}` {
			t.Errorf("FailureReply(kind %d) = %d %s, want %d {\"error\":\"why\"}", tt.kind, code, b, tt.code)
		}
	}
}
