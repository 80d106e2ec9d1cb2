package dstor

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

func provision(m *Dstor) error { return progresstest.Provision(m) }

// provisioned is a Dstor with its options provisioned, and cleaned up
// when the test ends.
func provisioned(t *testing.T, d *Dstor) *Dstor {
	t.Helper()
	if err := provision(d); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Cleanup() })
	return d
}

func TestDstorModule(t *testing.T) {
	m := progresstest.Registered(t, "dstor")
	if _, ok := m.(*Dstor); !ok {
		t.Fatalf("module New gives %T, want *Dstor", m)
	}
}

func TestDstorProvisionDefaults(t *testing.T) {
	d := provisioned(t, new(Dstor))
	if err := d.Validate(); err != nil {
		t.Fatalf("Validate after the defaults: %v", err)
	}
	c := d.Common()
	if d.Prefix != "/v1/upload" {
		t.Errorf("prefix %q, want /v1/upload", d.Prefix)
	}
	// get-status is an exchange under the prefix, not a status path.
	if c.StatusPath != "" {
		t.Errorf("status path %q, want none", c.StatusPath)
	}
	if want := []string{"/v1/upload/get-status/ws"}; !slices.Equal(c.WebSocketPaths, want) {
		t.Errorf("websocket paths %q, want %q", c.WebSocketPaths, want)
	}
	if time.Duration(d.SessionTimeout) != 24*time.Hour {
		t.Errorf("session timeout %v, want 24h", time.Duration(d.SessionTimeout))
	}
	if d.Origin != "" || d.AskedOrigin() != nil {
		t.Errorf("origin %q (%v), want none: the proxy asks the origin nothing unless told where it is", d.Origin, d.AskedOrigin())
	}
	if c.Key != "" || c.Owner != "" || c.DisableOwnerCheck {
		t.Errorf("common options %+v, want key and owner unset", *c)
	}
	// Uploads belong to the Authorization they were made with.
	var owned protocol.Owned = d
	r := dstorRequest("GET", "/v1/upload/get-status/", "Authorization", "Bearer k1", HeaderToken, "tok")
	if owned.Credential(r) != "Bearer k1" || owned.CredentialName() != "Authorization header" || d.Key(r) != "tok" {
		t.Errorf("credential %q (%s), key %q; want the Authorization header and the token",
			owned.Credential(r), owned.CredentialName(), d.Key(r))
	}
}

func TestDstorProvisionKeepsConfiguredOptions(t *testing.T) {
	d := provisioned(t, &Dstor{
		Config: protocol.Config{WebSocketPaths: []string{"/ws"}},
		SessionOptions: protocol.SessionOptions{
			Prefix:         "/api/upload/",
			Origin:         "https://dstor.example:8443",
			SessionTimeout: caddy.Duration(2 * time.Hour),
		},
	})
	// The prefix's trailing slash goes: routes add their own.
	if d.Prefix != "/api/upload" {
		t.Errorf("prefix %q, want /api/upload", d.Prefix)
	}
	if !slices.Equal(d.WebSocketPaths, []string{"/ws"}) {
		t.Errorf("websocket paths %q, want the configured /ws", d.WebSocketPaths)
	}
	if time.Duration(d.SessionTimeout) != 2*time.Hour {
		t.Errorf("session timeout %v, want 2h", time.Duration(d.SessionTimeout))
	}
	if d.AskedOrigin() == nil || d.AskedOrigin().URL() != "https://dstor.example:8443" {
		t.Errorf("origin %v, want the configured URL", d.AskedOrigin())
	}

	// The WebSocket follows a custom prefix.
	c := provisioned(t, &Dstor{SessionOptions: protocol.SessionOptions{Prefix: "/api/upload"}})
	if want := []string{"/api/upload/get-status/ws"}; !slices.Equal(c.WebSocketPaths, want) {
		t.Errorf("websocket paths %q, want %q", c.WebSocketPaths, want)
	}
}

func TestDstorProvisionOrigin(t *testing.T) {
	for _, origin := range []string{
		"127.0.0.1:1080", // no scheme: the host would be read as one
		"/v1/upload",
		"ftp://dstor.example",
		"http://",
		"http//dstor.example",
		"://x",
		"http://a b",
	} {
		d := &Dstor{SessionOptions: protocol.SessionOptions{Origin: origin}}
		err := provision(d)
		if err == nil || !strings.Contains(err.Error(), "must be an absolute http or https URL") {
			t.Errorf("origin %q: Provision = %v, want it refused", origin, err)
		}
	}
	// get-status is asked at the prefix's path: a base path, a query or
	// a user of the origin's URL would be dropped, so they are refused.
	for _, origin := range []string{
		"http://127.0.0.1:1080/api",
		"http://127.0.0.1:1080/v1/upload/",
		"http://127.0.0.1:1080?k=1",
		"http://127.0.0.1:1080/#x",
		"http://u:p@127.0.0.1:1080",
	} {
		d := &Dstor{SessionOptions: protocol.SessionOptions{Origin: origin}}
		err := provision(d)
		if err == nil || !strings.Contains(err.Error(), "must be a scheme and host only (the proxy asks /v1/upload/get-status/ on it)") {
			t.Errorf("origin %q: Provision = %v, want it refused", origin, err)
		}
	}
	for _, origin := range []string{"http://127.0.0.1:1080", "https://dstor.example", "http://[::1]:9000/"} {
		d := &Dstor{SessionOptions: protocol.SessionOptions{Origin: origin}}
		if err := provision(d); err != nil {
			t.Errorf("origin %q: Provision = %v", origin, err)
		}
		_ = d.Cleanup()
	}
}

func TestDstorValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    Dstor
		want string // "" when it must pass
	}{
		{"defaults", Dstor{}, ""},
		{"prefix with a trailing slash", Dstor{SessionOptions: protocol.SessionOptions{Prefix: "/api/"}}, ""},
		{"the API at the root", Dstor{SessionOptions: protocol.SessionOptions{Prefix: "/"}}, ""},
		{"zero timeout is the default", Dstor{SessionOptions: protocol.SessionOptions{SessionTimeout: 0}}, ""},
		{"websocket path set", Dstor{Config: protocol.Config{WebSocketPaths: []string{"/ws"}}}, ""},
		{"prefix without a leading slash", Dstor{SessionOptions: protocol.SessionOptions{Prefix: "v1/upload"}}, `prefix "v1/upload" must start with /`},
		{"prefix as a URL", Dstor{SessionOptions: protocol.SessionOptions{Prefix: "http://dstor/v1/upload"}}, "must start with /"},
		{"negative timeout", Dstor{SessionOptions: protocol.SessionOptions{SessionTimeout: caddy.Duration(-time.Second)}}, "session_timeout must not be negative"},
		{"status path set", Dstor{Config: protocol.Config{StatusPath: "/progress"}}, "status_path does not apply"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := provisioned(t, &tc.d)
			progresstest.WantError(t, "Validate", d.Validate(), tc.want)
		})
	}
}

// TestDstorStatusPathRefusedAtLoad: status_path is a common option the
// Caddyfile parser reads for every protocol, but dstor's status route is
// get-status under its prefix: a config that sets it does not load.
func TestDstorStatusPathRefusedAtLoad(t *testing.T) {
	if err := adapttest.LoadError(t, "dstor", "status_path /progress"); !strings.Contains(err.Error(), "status_path does not apply") {
		t.Fatalf("a dstor protocol with status_path: load error %v, want one saying status_path does not apply", err)
	}
}

func TestDstorUnmarshalCaddyfile(t *testing.T) {
	d := progresstest.Unmarshal[Dstor](t, `protocol dstor {
		owner {http.request.header.X-Api-Key}
		prefix /api/v2/upload
		origin http://127.0.0.1:1080
		session_timeout 90m
		websocket_path /api/v2/upload/get-status/ws /dstor/ws
	}`)
	want := Dstor{
		Config: protocol.Config{
			Owner:          "{http.request.header.X-Api-Key}",
			WebSocketPaths: []string{"/api/v2/upload/get-status/ws", "/dstor/ws"},
		},
		SessionOptions: protocol.SessionOptions{
			Prefix:         "/api/v2/upload",
			Origin:         "http://127.0.0.1:1080",
			SessionTimeout: caddy.Duration(90 * time.Minute),
		},
	}
	// The protocol's own options sit beside the common ones in its JSON.
	progresstest.SameJSON(t, d, want, `"prefix":"/api/v2/upload"`, `"origin":"http://127.0.0.1:1080"`, `"session_timeout":5400000000000`)

	off := progresstest.Unmarshal[Dstor](t, "protocol dstor {\n\towner off\n}")
	if !off.DisableOwnerCheck || off.Owner != "" {
		t.Errorf("owner off: disable_owner_check %v, owner %q", off.DisableOwnerCheck, off.Owner)
	}
}

func TestDstorUnmarshalCaddyfileErrors(t *testing.T) {
	for _, tc := range []struct {
		input, want string
	}{
		{"protocol dstor {\n\tbogus 1\n}", `unknown option "bogus" for protocol dstor`},
		// The other protocols' own options are not dstor's.
		{"protocol dstor {\n\tupload_path /files/\n}", `unknown option "upload_path" for protocol dstor`},
		{"protocol dstor {\n\tprefix\n}", "wrong argument count"},
		{"protocol dstor {\n\tprefix /a /b\n}", "wrong argument count"},
		{"protocol dstor {\n\torigin\n}", "wrong argument count"},
		{"protocol dstor {\n\torigin http://a http://b\n}", "wrong argument count"},
		{"protocol dstor {\n\tsession_timeout\n}", "wrong argument count"},
		{"protocol dstor {\n\tsession_timeout soon\n}", `bad duration "soon"`},
		{"protocol dstor pcloud {\n\tprefix /a\n}", "name it alone"},
	} {
		progresstest.WantCaddyfileError[Dstor](t, tc.input, tc.want)
	}
}

// dstorRequest is a request of a dStor client; header is name, value pairs.
func dstorRequest(method, target string, header ...string) *http.Request {
	return progresstest.Request(method, target, "", header...)
}

func TestDstorRoutes(t *testing.T) {
	d := provisioned(t, new(Dstor))
	tok := []string{HeaderToken, "tok-1"}
	for _, tc := range []struct {
		name  string
		r     *http.Request
		route int
	}{
		{"get-token", dstorRequest("POST", "/v1/upload/get-token"), routeToken},
		{"get-token with a slash", dstorRequest("POST", "/v1/upload/get-token/"), routeToken},
		{"get-token with a query", dstorRequest("POST", "/v1/upload/get-token?x=1"), routeToken},
		{"chunk at the prefix", dstorRequest("POST", "/v1/upload", tok...), routeChunk},
		{"chunk at the prefix with a slash", dstorRequest("POST", "/v1/upload/", tok...), routeChunk},
		// A chunk without its token is still one of the flow's requests:
		// it passes on, counted nowhere.
		{"chunk without a token", dstorRequest("POST", "/v1/upload/"), routeChunk},
		{"get-status", dstorRequest("GET", "/v1/upload/get-status", tok...), routeStatus},
		{"get-status with a slash", dstorRequest("GET", "/v1/upload/get-status/", tok...), routeStatus},
		{"get-status HEAD", dstorRequest("HEAD", "/v1/upload/get-status/", tok...), routeStatus},
		{"get-token GET", dstorRequest("GET", "/v1/upload/get-token"), routeNone},
		{"get-token PUT", dstorRequest("PUT", "/v1/upload/get-token"), routeNone},
		{"chunk PUT", dstorRequest("PUT", "/v1/upload/", tok...), routeNone},
		{"chunk GET", dstorRequest("GET", "/v1/upload/", tok...), routeNone},
		{"get-status POST", dstorRequest("POST", "/v1/upload/get-status/", tok...), routeNone},
		{"get-status DELETE", dstorRequest("DELETE", "/v1/upload/get-status/", tok...), routeNone},
		{"below get-status", dstorRequest("GET", "/v1/upload/get-status/x", tok...), routeNone},
		{"a file under the prefix", dstorRequest("POST", "/v1/upload/photos", tok...), routeNone},
		{"prefix without its slash", dstorRequest("POST", "/v1/uploadx", tok...), routeNone},
		{"get-token twice slashed", dstorRequest("POST", "/v1/upload/get-token//"), routeNone},
		{"another version", dstorRequest("POST", "/v2/upload/", tok...), routeNone},
		{"the root", dstorRequest("POST", "/", tok...), routeNone},
		// The WebSocket is the handler's, not an exchange.
		{"websocket", dstorRequest("GET", "/v1/upload/get-status/ws", tok...), routeNone},
	} {
		if got := d.routeOf(tc.r); got != tc.route {
			t.Errorf("%s: %s %s is route %d, want %d", tc.name, tc.r.Method, tc.r.URL.Path, got, tc.route)
		}
		if got := d.Tracks(tc.r); got != (tc.route != routeNone) {
			t.Errorf("%s: Tracks = %v", tc.name, got)
		}
		if _, ok := d.Exchange(tc.r); ok != (tc.route != routeNone) {
			t.Errorf("%s: Exchange reads it %v", tc.name, ok)
		}
	}
}

func TestDstorRoutesCustomPrefix(t *testing.T) {
	for _, prefix := range []string{"/api/v2/upload", "/api/v2/upload/"} {
		d := provisioned(t, &Dstor{SessionOptions: protocol.SessionOptions{Prefix: prefix}})
		for _, tc := range []struct {
			method, path string
			route        int
		}{
			{"POST", "/api/v2/upload/get-token", routeToken},
			{"POST", "/api/v2/upload", routeChunk},
			{"POST", "/api/v2/upload/", routeChunk},
			{"GET", "/api/v2/upload/get-status/", routeStatus},
			// The default prefix is no longer followed.
			{"POST", "/v1/upload/get-token", routeNone},
			{"POST", "/v1/upload/", routeNone},
			{"GET", "/v1/upload/get-status/", routeNone},
		} {
			if got := d.routeOf(dstorRequest(tc.method, tc.path)); got != tc.route {
				t.Errorf("prefix %s: %s %s is route %d, want %d", prefix, tc.method, tc.path, got, tc.route)
			}
		}
	}
}

func TestDstorRoutesAtTheRoot(t *testing.T) {
	d := provisioned(t, &Dstor{SessionOptions: protocol.SessionOptions{Prefix: "/"}})
	if err := d.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	for _, tc := range []struct {
		method, path string
		route        int
	}{
		{"POST", "/get-token", routeToken},
		{"POST", "/", routeChunk},
		{"GET", "/get-status/", routeStatus},
		{"POST", "/photos", routeNone},
	} {
		if got := d.routeOf(dstorRequest(tc.method, tc.path)); got != tc.route {
			t.Errorf("prefix /: %s %s is route %d, want %d", tc.method, tc.path, got, tc.route)
		}
	}
	if want := []string{"/get-status/ws"}; !slices.Equal(d.WebSocketPaths, want) {
		t.Errorf("websocket paths %q, want %q", d.WebSocketPaths, want)
	}
}

func TestDstorStatusEndpoints(t *testing.T) {
	d := provisioned(t, new(Dstor))
	sq, f := d.ParseStatus(dstorRequest("GET", "/v1/upload/get-status/ws", HeaderToken, "tok-1"))
	if f != nil || sq.Key != "tok-1" || sq.Step != 1 {
		t.Errorf("ParseStatus = %+v, %v; want key tok-1, step 1", sq, f)
	}
	if _, f := d.ParseStatus(dstorRequest("GET", "/v1/upload/get-status/ws")); f == nil || f.HTTPStatus() != http.StatusBadRequest || f.Message != "missing X-Dstor-Upload-Token header" {
		t.Errorf("ParseStatus without a token = %v, want 400 missing X-Dstor-Upload-Token header", f)
	}
	if _, f := d.ParseStatus(dstorRequest("GET", "/v1/upload/get-status/ws", HeaderToken, strings.Repeat("t", 10_000))); f == nil || f.HTTPStatus() != http.StatusBadRequest {
		t.Errorf("ParseStatus of an overlong token = %v, want 400", f)
	}
	code, body := d.Fail(progress.BadRequestf("why"))
	if st, ok := body.(Status); code != http.StatusBadRequest || !ok || st != (Status{Status: "ERROR", ErrorExplanation: "why", ErrorAtStage: "UPLOADING"}) {
		t.Errorf("Fail = %d %+v, want 400 ERROR why at UPLOADING", code, body)
	}
	if code := d.StatusCode(progress.Snapshot{Key: "tok-1"}); code != http.StatusNotFound {
		t.Errorf("StatusCode of an unknown token = %d, want 404", code)
	}
	if code := d.StatusCode(progress.Snapshot{Key: "tok-1", Found: true, Session: &progress.SessionState{}}); code != http.StatusOK {
		t.Errorf("StatusCode of a known token = %d, want 200", code)
	}
	if st, ok := d.Render(progress.Snapshot{Key: "tok-1"}).(Status); !ok || st != notFound() {
		t.Errorf("Render of an unknown token = %+v, want upload not found", st)
	}
}
