package tus

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/adapttest"
	"github.com/caddy-upload-progress/caddy-upload-progress/internal/progresstest"
	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
	"github.com/caddy-upload-progress/caddy-upload-progress/protocol"
)

func provision(m *Tus) error { return progresstest.Provision(m) }

func TestTusModule(t *testing.T) {
	m := progresstest.Registered(t, "tus")
	if _, ok := m.(*Tus); !ok {
		t.Fatalf("module New gives %T, want *Tus", m)
	}
}

func TestTusProvisionDefaults(t *testing.T) {
	tu := new(Tus)
	if err := provision(tu); err != nil {
		t.Fatal(err)
	}
	if err := tu.Validate(); err != nil {
		t.Fatalf("Validate after the defaults: %v", err)
	}
	c := tu.Common()
	if c.StatusPath != "/tus/progress" {
		t.Errorf("status path %q, want /tus/progress", c.StatusPath)
	}
	if want := []string{"/tus/progress/ws"}; !slices.Equal(c.WebSocketPaths, want) {
		t.Errorf("websocket paths %q, want %q", c.WebSocketPaths, want)
	}
	if tu.UploadPath != "/files/" {
		t.Errorf("upload path %q, want /files/", tu.UploadPath)
	}
	if time.Duration(tu.SessionTimeout) != 24*time.Hour {
		t.Errorf("session timeout %v, want 24h", time.Duration(tu.SessionTimeout))
	}
	if c.Key != "" || c.Owner != "" || c.DisableOwnerCheck {
		t.Errorf("common options %+v, want key and owner unset", *c)
	}
	// A tus upload URL is a capability: uploads are ownerless unless an
	// owner template binds them.
	if _, owned := any(tu).(protocol.Owned); owned {
		t.Error("tus is an Owned protocol; its uploads have no owner of its own")
	}
}

func TestTusProvisionKeepsConfiguredOptions(t *testing.T) {
	tu := &Tus{
		Config:         protocol.Config{StatusPath: "/p", WebSocketPaths: []string{"/p/ws"}},
		UploadPath:     "/uploads/",
		SessionTimeout: caddy.Duration(2 * time.Hour),
	}
	if err := provision(tu); err != nil {
		t.Fatal(err)
	}
	if tu.StatusPath != "/p" || !slices.Equal(tu.WebSocketPaths, []string{"/p/ws"}) {
		t.Errorf("paths %q %q, want the configured /p [/p/ws]", tu.StatusPath, tu.WebSocketPaths)
	}
	if tu.UploadPath != "/uploads/" || time.Duration(tu.SessionTimeout) != 2*time.Hour {
		t.Errorf("upload path %q, session timeout %v; want the configured /uploads/ and 2h",
			tu.UploadPath, time.Duration(tu.SessionTimeout))
	}
}

func TestTusValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		tu   Tus
		want string // "" when it must pass
	}{
		{"defaults", Tus{}, ""},
		{"upload path without a trailing slash", Tus{UploadPath: "/files"}, ""},
		{"root upload path", Tus{UploadPath: "/"}, ""},
		{"zero timeout is the default", Tus{SessionTimeout: 0}, ""},
		{"upload path without a leading slash", Tus{UploadPath: "files/"}, `upload_path "files/" must start with /`},
		{"upload path as a URL", Tus{UploadPath: "http://origin/files/"}, "must start with /"},
		{"negative timeout", Tus{SessionTimeout: caddy.Duration(-time.Second)}, "session_timeout must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tu := tc.tu
			if err := provision(&tu); err != nil {
				t.Fatal(err)
			}
			progresstest.WantError(t, "Validate", tu.Validate(), tc.want)
		})
	}
}

func TestTusUnmarshalCaddyfile(t *testing.T) {
	tu := progresstest.Unmarshal[Tus](t, `protocol tus {
		owner {http.request.header.Authorization}
		status_path /api/tus/progress
		websocket_path /api/tus/ws /api/tus/progress/ws
		upload_path /uploads/
		session_timeout 90m
	}`)
	want := Tus{
		Config: protocol.Config{
			Owner:          "{http.request.header.Authorization}",
			StatusPath:     "/api/tus/progress",
			WebSocketPaths: []string{"/api/tus/ws", "/api/tus/progress/ws"},
		},
		UploadPath:     "/uploads/",
		SessionTimeout: caddy.Duration(90 * time.Minute),
	}
	// The protocol's own options sit beside the common ones in its JSON.
	progresstest.SameJSON(t, tu, want, `"upload_path":"/uploads/"`, `"session_timeout":5400000000000`, `"status_path":"/api/tus/progress"`)

	// owner off turns the owner check off.
	off := progresstest.Unmarshal[Tus](t, "protocol tus {\n\towner off\n}")
	if !off.DisableOwnerCheck || off.Owner != "" {
		t.Errorf("owner off: disable_owner_check %v, owner %q", off.DisableOwnerCheck, off.Owner)
	}
}

func TestTusUnmarshalCaddyfileErrors(t *testing.T) {
	for _, tc := range []struct {
		input, want string
	}{
		{"protocol tus {\n\tbogus 1\n}", `unknown option "bogus" for protocol tus`},
		// The other protocols' own options are not tus's.
		{"protocol tus {\n\texists_probe http://o/{key}\n}", `unknown option "exists_probe" for protocol tus`},
		{"protocol tus {\n\tupload_path\n}", "wrong argument count"},
		{"protocol tus {\n\tupload_path /a /b\n}", "wrong argument count"},
		{"protocol tus {\n\tsession_timeout\n}", "wrong argument count"},
		{"protocol tus {\n\tsession_timeout soon\n}", `bad duration "soon"`},
		{"protocol tus shard {\n\tupload_path /a\n}", "name it alone"},
	} {
		progresstest.WantCaddyfileError[Tus](t, tc.input, tc.want)
	}
}

// TestTusKeyOptionRefusedAtLoad: `key` is a common option the Caddyfile
// parser reads for every protocol, but tus names its uploads by their URLs:
// a config that sets it does not load, and says why.
func TestTusKeyOptionRefusedAtLoad(t *testing.T) {
	tu := progresstest.Unmarshal[Tus](t, "protocol tus {\n\tkey {http.request.header.X-Id}\n}")
	if tu.Config.Key != "{http.request.header.X-Id}" {
		t.Fatalf("key %q, want the template", tu.Config.Key)
	}

	err := adapttest.LoadError(t, "tus", "key {http.request.header.X-Id}")
	for _, w := range []string{"protocol tus", "key", "remove the key option"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("load error %q does not say %q", err, w)
		}
	}
}

// tusRequest is a request of a tus client; header is name, value pairs.
func tusRequest(method, target string, header ...string) *http.Request {
	return progresstest.Request(method, target, "", header...)
}

func TestTusTracksAndKey(t *testing.T) {
	tu := new(Tus)
	if err := provision(tu); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		r    *http.Request
		// tracks is what Tracks says; key what Key gives, "" for a creation
		// (its upload URL is only known from the answer).
		tracks bool
		key    string
	}{
		{"creation", tusRequest("POST", "/files"), true, ""},
		{"creation with a slash", tusRequest("POST", "/files/"), true, ""},
		{"PATCH", tusRequest("PATCH", "/files/24e533e0"), true, "/files/24e533e0"},
		{"HEAD", tusRequest("HEAD", "/files/24e533e0"), true, "/files/24e533e0"},
		{"DELETE", tusRequest("DELETE", "/files/24e533e0"), true, "/files/24e533e0"},
		{"PATCH deeper", tusRequest("PATCH", "/files/a/b"), true, "/files/a/b"},
		{"PATCH with a query", tusRequest("PATCH", "/files/abc?x=1"), true, "/files/abc"},
		{"method override PATCH", tusRequest("POST", "/files/abc", "X-HTTP-Method-Override", "PATCH"), true, "/files/abc"},
		{"method override DELETE", tusRequest("POST", "/files/abc", "X-HTTP-Method-Override", "DELETE"), true, "/files/abc"},
		{"method override GET", tusRequest("POST", "/files/abc", "X-HTTP-Method-Override", "GET"), false, ""},
		// Only a POST's override counts.
		{"override on a GET", tusRequest("GET", "/files/abc", "X-HTTP-Method-Override", "PATCH"), false, ""},
		{"GET of an upload", tusRequest("GET", "/files/abc"), false, ""},
		{"OPTIONS", tusRequest("OPTIONS", "/files/"), false, ""},
		{"PUT", tusRequest("PUT", "/files/abc"), false, ""},
		{"POST to an upload", tusRequest("POST", "/files/abc"), false, ""},
		{"PATCH of the endpoint", tusRequest("PATCH", "/files/"), false, ""},
		{"PATCH of the endpoint without slash", tusRequest("PATCH", "/files"), false, ""},
		{"POST elsewhere", tusRequest("POST", "/upload"), false, ""},
		{"PATCH elsewhere", tusRequest("PATCH", "/other/abc"), false, ""},
		{"prefix without a slash", tusRequest("PATCH", "/filesabc"), false, ""},
		{"POST to a prefix", tusRequest("POST", "/filesx"), false, ""},
		{"status path", tusRequest("GET", "/tus/progress?upload=/files/abc"), false, ""},
	} {
		if got := tu.Tracks(tc.r); got != tc.tracks {
			t.Errorf("%s: Tracks = %v, want %v", tc.name, got, tc.tracks)
		}
		if got := tu.Key(tc.r); got != tc.key {
			t.Errorf("%s: Key = %q, want %q", tc.name, got, tc.key)
		}
		if _, ok := tu.Exchange(tc.r); ok != tc.tracks {
			t.Errorf("%s: Exchange reads it %v, want %v", tc.name, ok, tc.tracks)
		}
	}
}

func TestTusTracksCustomUploadPath(t *testing.T) {
	for _, path := range []string{"/api/uploads/", "/api/uploads"} {
		tu := &Tus{UploadPath: path}
		if err := provision(tu); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			r      *http.Request
			tracks bool
		}{
			{tusRequest("POST", "/api/uploads"), true},
			{tusRequest("POST", "/api/uploads/"), true},
			{tusRequest("PATCH", "/api/uploads/abc"), true},
			{tusRequest("HEAD", "/api/uploads/abc"), true},
			{tusRequest("DELETE", "/api/uploads/abc"), true},
			// The default endpoint is no longer followed.
			{tusRequest("POST", "/files/"), false},
			{tusRequest("PATCH", "/files/abc"), false},
			{tusRequest("PATCH", "/api/uploadsabc"), false},
		} {
			if got := tu.Tracks(tc.r); got != tc.tracks {
				t.Errorf("upload_path %s: %s %s tracked %v, want %v", path, tc.r.Method, tc.r.URL.Path, got, tc.tracks)
			}
		}
	}
	// At the root, every upload URL is under the endpoint.
	root := &Tus{UploadPath: "/"}
	if err := provision(root); err != nil {
		t.Fatal(err)
	}
	if !root.Tracks(tusRequest("POST", "/")) || !root.Tracks(tusRequest("PATCH", "/abc")) || root.Tracks(tusRequest("PATCH", "/")) {
		t.Error("upload_path /: a creation at / and a PATCH of /abc are tracked, a PATCH of / is not")
	}
}

func TestTusStatusEndpoints(t *testing.T) {
	tu := new(Tus)
	if err := provision(tu); err != nil {
		t.Fatal(err)
	}
	sq, f := tu.ParseStatus(tusRequest("GET", "/tus/progress?upload=/files/abc"))
	if f != nil || sq.Key != "/files/abc" || sq.Step != 1 {
		t.Errorf("ParseStatus = %+v, %v; want key /files/abc, step 1", sq, f)
	}
	code, body := tu.Fail(progress.BadRequestf("why"))
	if er, ok := body.(ErrorReply); code != http.StatusBadRequest || !ok || er.Error != "why" {
		t.Errorf("Fail = %d %+v, want 400 {error: why}", code, body)
	}
	if code := tu.StatusCode(progress.Snapshot{Key: "/files/abc"}); code != http.StatusNotFound {
		t.Errorf("StatusCode of an unknown upload = %d, want 404", code)
	}
	if code := tu.StatusCode(progress.Snapshot{Key: "/files/abc", Found: true, Session: &progress.SessionState{}}); code != http.StatusOK {
		t.Errorf("StatusCode of a known upload = %d, want 200", code)
	}
	if st, ok := tu.Render(progress.Snapshot{Key: "/files/abc"}).(Status); !ok || st.Status != "not_exist" {
		t.Errorf("Render of an unknown upload = %+v, want a Status not_exist", st)
	}
}
