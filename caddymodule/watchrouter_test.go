package caddymodule

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// A protocol whose WebSocket endpoint lies under each session's URL and
// whose status route is the origin's (sandbox) has no fixed endpoint path.

func TestProvisionProtocolWithoutFixedPaths(t *testing.T) {
	// Beside others, and twice under two prefixes: no path of theirs
	// collides, for they have none.
	h := &Handler{Zone: uniqueZone(t), ProtocolsRaw: protos(t,
		`{"name":"sandbox"}`, `{"name":"sandbox","prefix":"/v2"}`, `{"name":"tus"}`, `{"name":"nginx"}`)}
	provisionForTest(t, h)

	for _, tc := range []struct {
		name   string
		r      *http.Request
		passes bool // on to next, rather than answered by the handler
	}{
		// A CONNECT has no path: it is no status request of a protocol
		// without a status path.
		{"CONNECT", &http.Request{Method: http.MethodConnect, URL: &url.URL{}, Host: "example.com:443", Header: http.Header{}}, true},
		{"the origin's status route", httptest.NewRequest(http.MethodGet, "/v1/sandboxes/sb/uploads/u", nil), true},
		{"a plain GET of a session's WebSocket", httptest.NewRequest(http.MethodGet, "/v1/sandboxes/sb/uploads/u/ws", nil), false},
		{"under the second prefix", httptest.NewRequest(http.MethodGet, "/v2/sandboxes/sb/uploads/u/ws", nil), false},
		{"tus's status path", httptest.NewRequest(http.MethodGet, "/tus/progress?upload=/files/x", nil), false},
	} {
		r := tc.r.WithContext(t.Context())
		r.Header.Set("Authorization", "Bearer t")
		caddyhttp.NewTestReplacer(r)
		passed := false
		next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			passed = true
			w.WriteHeader(http.StatusTeapot)
			return nil
		})
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, r, next); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if passed != tc.passes {
			t.Errorf("%s: passed on %v, want %v (answered %d %s)", tc.name, passed, tc.passes, w.Code, strings.TrimSpace(w.Body.String()))
		}
	}
}
