package sandbox

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/adapttest"
	"github.com/caddy-upload-progress/caddy-upload-progress/internal/progresstest"
	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
	"github.com/caddy-upload-progress/caddy-upload-progress/protocol"
)

func provision(m *Sandbox) error { return progresstest.Provision(m) }

// provisioned is a Sandbox with s's options, provisioned and valid.
func provisioned(t *testing.T, s Sandbox) *Sandbox {
	t.Helper()
	if err := provision(&s); err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Cleanup() })
	return &s
}

func TestSandboxModule(t *testing.T) {
	m := progresstest.Registered(t, "sandbox")
	if _, ok := m.(*Sandbox); !ok {
		t.Fatalf("module New gives %T, want *Sandbox", m)
	}
}

func TestSandboxProvisionDefaults(t *testing.T) {
	s := provisioned(t, Sandbox{})
	if s.Prefix != "/v1" {
		t.Errorf("prefix %q, want /v1", s.Prefix)
	}
	if time.Duration(s.SessionTimeout) != 24*time.Hour {
		t.Errorf("session timeout %v, want 24h", time.Duration(s.SessionTimeout))
	}
	// Its status route is the origin's and its WebSocket lies under each
	// session: no fixed path of its own.
	c := s.Common()
	if c.StatusPath != "" || len(c.WebSocketPaths) != 0 {
		t.Errorf("paths %q %q, want none", c.StatusPath, c.WebSocketPaths)
	}
	if s.Origin != "" || s.AskedOrigin() != nil {
		t.Errorf("origin %q (%v), want none: watchers learn only from requests that pass", s.Origin, s.AskedOrigin())
	}
	// Sessions are bound to the bearer token.
	if got := s.Credential(sandboxRequest("GET", "/v1/sandboxes/sb/uploads/u", "Authorization", "Bearer alice")); got != "Bearer alice" {
		t.Errorf("credential %q, want the Authorization header", got)
	}
	if s.CredentialName() != "Authorization bearer token" {
		t.Errorf("credential name %q", s.CredentialName())
	}
}

func TestSandboxProvisionKeepsConfiguredOptions(t *testing.T) {
	s := provisioned(t, Sandbox{SessionOptions: protocol.SessionOptions{Prefix: "/api/v2/", Origin: "https://sandbox.example:8443", SessionTimeout: caddy.Duration(2 * time.Hour)}})
	// The trailing slash goes: routes are built on the prefix.
	if s.Prefix != "/api/v2" {
		t.Errorf("prefix %q, want /api/v2", s.Prefix)
	}
	if time.Duration(s.SessionTimeout) != 2*time.Hour {
		t.Errorf("session timeout %v, want 2h", time.Duration(s.SessionTimeout))
	}
	if s.AskedOrigin() == nil || s.AskedOrigin().URL() != "https://sandbox.example:8443" {
		t.Errorf("origin %v, want the configured URL", s.AskedOrigin())
	}
}

func TestSandboxProvisionRefusesOrigin(t *testing.T) {
	for _, origin := range []string{
		"sandbox.example",          // no scheme
		"ftp://sandbox.example",    // not HTTP
		"http://",                  // no host
		"/v1",                      // a path
		"http://sandbox.example:x", // no URL
		"http://[::1",              // no URL
	} {
		s := Sandbox{SessionOptions: protocol.SessionOptions{Origin: origin}}
		err := provision(&s)
		if err == nil || !strings.Contains(err.Error(), "must be an absolute http or https URL") {
			t.Errorf("origin %q: Provision = %v, want an error saying it must be an absolute http or https URL", origin, err)
		}
	}
}

func TestSandboxValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Sandbox
		want string // "" when it must pass
	}{
		{"defaults", Sandbox{}, ""},
		{"root prefix", Sandbox{SessionOptions: protocol.SessionOptions{Prefix: "/"}}, ""},
		{"deep prefix", Sandbox{SessionOptions: protocol.SessionOptions{Prefix: "/api/sandbox/v1"}}, ""},
		{"zero timeout is the default", Sandbox{SessionOptions: protocol.SessionOptions{SessionTimeout: 0}}, ""},
		{"origin", Sandbox{SessionOptions: protocol.SessionOptions{Origin: "http://127.0.0.1:9000"}}, ""},
		{"prefix without a slash", Sandbox{SessionOptions: protocol.SessionOptions{Prefix: "v1"}}, `prefix "v1" must start with /`},
		{"prefix as a URL", Sandbox{SessionOptions: protocol.SessionOptions{Prefix: "https://api.example/v1"}}, "must start with /"},
		{"negative timeout", Sandbox{SessionOptions: protocol.SessionOptions{SessionTimeout: caddy.Duration(-time.Second)}}, "session_timeout must not be negative"},
		{"status_path", Sandbox{Config: protocol.Config{StatusPath: "/progress"}}, "status_path and websocket_path do not apply"},
		{"websocket_path", Sandbox{Config: protocol.Config{WebSocketPaths: []string{"/ws"}}}, "status_path and websocket_path do not apply"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.s
			if err := provision(&s); err != nil {
				t.Fatal(err)
			}
			defer s.Cleanup()
			progresstest.WantError(t, "Validate", s.Validate(), tc.want)
		})
	}
}

func TestSandboxUnmarshalCaddyfile(t *testing.T) {
	s := progresstest.Unmarshal[Sandbox](t, `protocol sandbox {
		owner {http.request.header.X-Api-Key}
		prefix /api/v2
		origin http://127.0.0.1:9000
		session_timeout 90m
	}`)
	want := Sandbox{
		Config: protocol.Config{Owner: "{http.request.header.X-Api-Key}"},
		SessionOptions: protocol.SessionOptions{
			Prefix:         "/api/v2",
			Origin:         "http://127.0.0.1:9000",
			SessionTimeout: caddy.Duration(90 * time.Minute),
		},
	}
	progresstest.SameJSON(t, s, want, `"prefix":"/api/v2"`, `"origin":"http://127.0.0.1:9000"`, `"session_timeout":5400000000000`)

	// The bare protocol sets nothing: the defaults come at Provision.
	bare := progresstest.Unmarshal[Sandbox](t, "protocol sandbox")
	if b, _ := json.Marshal(bare); string(b) != "{}" {
		t.Errorf("bare protocol sandbox unmarshals to %s, want {}", b)
	}
}

func TestSandboxUnmarshalCaddyfileErrors(t *testing.T) {
	for _, tc := range []struct {
		input, want string
	}{
		{"protocol sandbox {\n\tbogus 1\n}", `unknown option "bogus" for protocol sandbox`},
		// tus's own option is not the sandbox's.
		{"protocol sandbox {\n\tupload_path /files/\n}", `unknown option "upload_path" for protocol sandbox`},
		{"protocol sandbox {\n\tprefix\n}", "wrong argument count"},
		{"protocol sandbox {\n\tprefix /a /b\n}", "wrong argument count"},
		{"protocol sandbox {\n\torigin\n}", "wrong argument count"},
		{"protocol sandbox {\n\torigin http://a http://b\n}", "wrong argument count"},
		{"protocol sandbox {\n\tsession_timeout\n}", "wrong argument count"},
		{"protocol sandbox {\n\tsession_timeout soon\n}", `bad duration "soon"`},
		{"protocol sandbox shard {\n\tprefix /a\n}", "name it alone"},
	} {
		progresstest.WantCaddyfileError[Sandbox](t, tc.input, tc.want)
	}
}

// TestSandboxOptionsRefusedAtLoad: the common options that make no sense
// for the sandbox are read by the Caddyfile parser but refused when Caddy
// loads the config, saying why.
func TestSandboxOptionsRefusedAtLoad(t *testing.T) {
	for _, tc := range []struct {
		block string
		says  []string
	}{
		{"status_path /progress", []string{"status_path and websocket_path do not apply", "…/ws"}},
		{"websocket_path /ws", []string{"status_path and websocket_path do not apply"}},
		{"key {http.request.header.X-Id}", []string{"protocol sandbox", "names its sessions itself", "remove the key option"}},
		{"origin sandbox.example", []string{`origin "sandbox.example" must be an absolute http or https URL`}},
		{"prefix v1", []string{`prefix "v1" must start with /`}},
	} {
		err := adapttest.LoadError(t, "sandbox", tc.block)
		for _, w := range tc.says {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: load error %q does not say %q", tc.block, err, w)
			}
		}
	}
}

// sandboxRequest is a request of a sandbox API client; header is name,
// value pairs.
func sandboxRequest(method, target string, header ...string) *http.Request {
	return progresstest.Request(method, target, "", header...)
}

func TestSandboxRoutes(t *testing.T) {
	s := provisioned(t, Sandbox{})
	const up = "/v1/sandboxes/sb_a1b2c3d4/uploads/up_9f8e"
	const k = "/sandboxes/sb_a1b2c3d4/uploads/up_9f8e"
	for _, tc := range []struct {
		name, method, path string
		// kind is the route; part its part number; key the session's key
		// ("" for a creation: only its answer names the session).
		kind routeKind
		part int
		key  string
	}{
		{"create", "POST", "/v1/sandboxes/sb_a1b2c3d4/uploads", routeCreate, 0, ""},
		{"status", "GET", up, routeStatus, 0, k},
		{"status with a query", "GET", up + "?verbose=1", routeStatus, 0, k},
		{"abort", "DELETE", up, routeAbort, 0, k},
		{"part 1", "PUT", up + "/parts/1", routePart, 1, k},
		{"part 4", "PUT", up + "/parts/4", routePart, 4, k},
		{"part 4294967295", "PUT", up + "/parts/4294967295", routePart, 4294967295, k},
		// Leading zeros name the part they read as: an origin reading the
		// number as an integer takes it for part 1 too.
		{"part 01", "PUT", up + "/parts/01", routePart, 1, k},
		{"complete", "POST", up + "/complete", routeComplete, 0, k},
		{"watch", "GET", up + "/ws", routeWatch, 0, k},
		// Any method is the WebSocket endpoint's: it refuses the others itself.
		{"watch by POST", "POST", up + "/ws", routeWatch, 0, k},

		// Malformed part numbers are no part: the request passes untracked.
		{"part 0", "PUT", up + "/parts/0", routeNone, 0, k},
		{"part 00", "PUT", up + "/parts/00", routeNone, 0, k},
		{"part -1", "PUT", up + "/parts/-1", routeNone, 0, k},
		{"part +1", "PUT", up + "/parts/+1", routeNone, 0, k},
		{"part 1.0", "PUT", up + "/parts/1.0", routeNone, 0, k},
		{"part 1e3", "PUT", up + "/parts/1e3", routeNone, 0, k},
		{"part x", "PUT", up + "/parts/x", routeNone, 0, k},
		{"part past int64", "PUT", up + "/parts/99999999999999999999", routeNone, 0, k},
		{"part without a number", "PUT", up + "/parts/", routeNone, 0, k},
		{"parts", "PUT", up + "/parts", routeNone, 0, k},
		{"part deeper", "PUT", up + "/parts/1/x", routeNone, 0, k},

		// The wrong methods.
		{"list", "GET", "/v1/sandboxes/sb_a1b2c3d4/uploads", routeNone, 0, ""},
		{"PUT the session", "PUT", up, routeNone, 0, k},
		{"POST the session", "POST", up, routeNone, 0, k},
		{"PATCH the session", "PATCH", up, routeNone, 0, k},
		{"HEAD the session", "HEAD", up, routeNone, 0, k},
		{"POST a part", "POST", up + "/parts/1", routeNone, 0, k},
		{"GET a part", "GET", up + "/parts/1", routeNone, 0, k},
		{"DELETE a part", "DELETE", up + "/parts/1", routeNone, 0, k},
		{"GET complete", "GET", up + "/complete", routeNone, 0, k},
		{"PUT complete", "PUT", up + "/complete", routeNone, 0, k},

		// Missing ids and other paths.
		{"no sandbox", "POST", "/v1/sandboxes//uploads", routeNone, 0, ""},
		{"no upload id", "GET", "/v1/sandboxes/sb/uploads/", routeNone, 0, ""},
		{"no upload id, a part", "PUT", "/v1/sandboxes/sb/uploads//parts/1", routeNone, 0, ""},
		{"create with a slash", "POST", "/v1/sandboxes/sb/uploads/", routeNone, 0, ""},
		{"status with a slash", "GET", up + "/", routeNone, 0, k},
		{"sandboxes", "GET", "/v1/sandboxes/sb", routeNone, 0, ""},
		{"not uploads", "POST", "/v1/sandboxes/sb/files", routeNone, 0, ""},
		{"other prefix", "POST", "/v2/sandboxes/sb/uploads", routeNone, 0, ""},
		{"no prefix", "POST", "/sandboxes/sb/uploads", routeNone, 0, ""},
		{"prefix without its slash", "POST", "/v1sandboxes/sb/uploads", routeNone, 0, ""},
		{"unknown action", "POST", up + "/cancel", routeNone, 0, k},
	} {
		r := sandboxRequest(tc.method, tc.path, "Authorization", "Bearer t")
		rt := s.routeOf(r)
		if rt.kind != tc.kind || rt.part != tc.part {
			t.Errorf("%s: %s %s is route %d part %d, want %d part %d", tc.name, tc.method, tc.path, rt.kind, rt.part, tc.kind, tc.part)
		}
		tracks := tc.kind != routeNone && tc.kind != routeWatch
		if got := s.Tracks(r); got != tracks {
			t.Errorf("%s: Tracks = %v, want %v", tc.name, got, tracks)
		}
		if got := s.Watches(r); got != (tc.kind == routeWatch) {
			t.Errorf("%s: Watches = %v, want %v", tc.name, got, tc.kind == routeWatch)
		}
		if tc.kind != routeNone {
			if got := s.Key(r); got != tc.key {
				t.Errorf("%s: Key = %q, want %q", tc.name, got, tc.key)
			}
		}
		ex, ok := s.Exchange(r)
		if ok != tracks {
			t.Errorf("%s: Exchange reads it %v, want %v", tc.name, ok, tracks)
			continue
		}
		if !ok {
			continue
		}
		// What the glue does with each: only a part streams, only the
		// status answer is held for the overlay.
		if ex.Key != tc.key || ex.Stream != (tc.kind == routePart) || ex.Part != tc.part || ex.Rewrite != (tc.kind == routeStatus) || ex.Open {
			t.Errorf("%s: exchange key %q stream %v part %d rewrite %v open %v", tc.name, ex.Key, ex.Stream, ex.Part, ex.Rewrite, ex.Open)
		}
		if ex.Stream && ex.From != -1 {
			t.Errorf("%s: a part says it starts at %d; its place in the upload is not the proxy's to guess", tc.name, ex.From)
		}
		if ex.Answer == nil {
			t.Errorf("%s: the answer is not read", tc.name)
		}
	}
}

func TestSandboxRoutesCustomPrefix(t *testing.T) {
	for _, prefix := range []string{"/api/v2", "/api/v2/"} {
		s := provisioned(t, Sandbox{SessionOptions: protocol.SessionOptions{Prefix: prefix}})
		for _, tc := range []struct {
			method, path string
			kind         routeKind
		}{
			{"POST", "/api/v2/sandboxes/sb/uploads", routeCreate},
			{"PUT", "/api/v2/sandboxes/sb/uploads/u/parts/2", routePart},
			{"GET", "/api/v2/sandboxes/sb/uploads/u/ws", routeWatch},
			// The default prefix is no longer followed.
			{"POST", "/v1/sandboxes/sb/uploads", routeNone},
			{"PUT", "/v1/sandboxes/sb/uploads/u/parts/2", routeNone},
			{"GET", "/v1/sandboxes/sb/uploads/u/ws", routeNone},
			{"PUT", "/api/v2sandboxes/sb/uploads/u/parts/2", routeNone},
		} {
			if got := s.routeOf(sandboxRequest(tc.method, tc.path)).kind; got != tc.kind {
				t.Errorf("prefix %s: %s %s is route %d, want %d", prefix, tc.method, tc.path, got, tc.kind)
			}
		}
	}
	// At the root, the API's paths start with /sandboxes.
	root := provisioned(t, Sandbox{SessionOptions: protocol.SessionOptions{Prefix: "/"}})
	if got := root.routeOf(sandboxRequest("PUT", "/sandboxes/sb/uploads/u/parts/1")); got.kind != routePart || got.part != 1 {
		t.Errorf("prefix /: a part is route %+v", got)
	}
	if got := root.Key(sandboxRequest("GET", "/sandboxes/sb/uploads/u")); got != "/sandboxes/sb/uploads/u" {
		t.Errorf("prefix /: key %q", got)
	}
}

func TestSandboxStatusEndpoint(t *testing.T) {
	s := provisioned(t, Sandbox{})
	sq, f := s.ParseStatus(sandboxRequest("GET", "/v1/sandboxes/sb/uploads/u1/ws"))
	if f != nil || sq.Key != "/sandboxes/sb/uploads/u1" || sq.Step != 1 {
		t.Errorf("ParseStatus = %+v, %v; want key /sandboxes/sb/uploads/u1, step 1", sq, f)
	}
	if _, f := s.ParseStatus(sandboxRequest("GET", "/v1/sandboxes/sb/uploads/u1")); f == nil || f.HTTPStatus() != http.StatusBadRequest {
		t.Errorf("ParseStatus of the status route = %v, want a 400", f)
	}
	if code := s.StatusCode(progress.Snapshot{Key: "/sandboxes/sb/uploads/u1"}); code != http.StatusNotFound {
		t.Errorf("StatusCode of an unknown session = %d, want 404", code)
	}
	// A one-request upload under the key is no session of the sandbox's.
	if code := s.StatusCode(progress.Snapshot{Found: true}); code != http.StatusNotFound {
		t.Errorf("StatusCode of a record that is no session = %d, want 404", code)
	}
	if code := s.StatusCode(progress.Snapshot{Found: true, Session: &progress.SessionState{}}); code != http.StatusOK {
		t.Errorf("StatusCode of a session = %d, want 200", code)
	}
	b, _ := json.Marshal(s.Render(progress.Snapshot{Key: "/sandboxes/sb/uploads/u1"}))
	if want := `{"error":{"code":"not_found","message":"upload session not found"}}`; string(b) != want {
		t.Errorf("Render of an unknown session = %s, want %s", b, want)
	}
	for _, tc := range []struct {
		f    *progress.Failure
		code int
		want string
	}{
		{&progress.Failure{Kind: progress.NoCredential, Message: "missing Authorization bearer token"}, http.StatusUnauthorized,
			`{"error":{"code":"unauthorized","message":"missing Authorization bearer token"}}`},
		{progress.BadRequestf("why"), http.StatusBadRequest, `{"error":{"code":"bad_request","message":"why"}}`},
		{&progress.Failure{Kind: progress.UpgradeRequired, Message: "a handshake"}, http.StatusUpgradeRequired,
			`{"error":{"code":"upgrade_required","message":"a handshake"}}`},
	} {
		code, body := s.Fail(tc.f)
		b, _ := json.Marshal(body)
		if code != tc.code || string(b) != tc.want {
			t.Errorf("Fail(%v) = %d %s, want %d %s", tc.f.Kind, code, b, tc.code, tc.want)
		}
	}
}
