package shard

import (
	"encoding/json"
	"github.com/caddy-upload-progress/caddy-upload-progress/internal/progresstest"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
	"github.com/caddy-upload-progress/caddy-upload-progress/protocol"
)

func provisioned(t *testing.T, s *Shard) error {
	t.Helper()
	err := progresstest.Provision(s)
	if err == nil {
		t.Cleanup(func() { s.Cleanup() })
	}
	return err
}

func TestShardModule(t *testing.T) {
	m := progresstest.Registered(t, "shard")
	if _, ok := m.(*Shard); !ok {
		t.Fatalf("module New gives %T, want *Shard", m)
	}
}

func TestShardProvisionDefaults(t *testing.T) {
	s := new(Shard)
	if err := provisioned(t, s); err != nil {
		t.Fatal(err)
	}
	c := s.Common()
	if c.StatusPath != "/progress" {
		t.Errorf("status path %q, want /progress", c.StatusPath)
	}
	if want := []string{"/ws/progress", "/progress/ws"}; !slices.Equal(c.WebSocketPaths, want) {
		t.Errorf("websocket paths %q, want %q", c.WebSocketPaths, want)
	}
	if c.Key != "" || c.Owner != "" || c.DisableOwnerCheck {
		t.Errorf("common options %+v, want key and owner unset", *c)
	}
	if s.ExistsProbe != nil {
		t.Errorf("exists probe %+v, want none by default", s.ExistsProbe)
	}
	r := httptest.NewRequest(http.MethodGet, "/progress?path=/a", nil)
	if snap, ok := s.Probe(r, progress.Anyone, "/a"); ok || snap.Found {
		t.Errorf("Probe without an exists probe = %+v, %v; want not found, false", snap, ok)
	}
	// What the module answers is the wire logic's.
	up := httptest.NewRequest(http.MethodPost, "/fso?path=/a&informProgress=true", strings.NewReader("x"))
	up.Header.Set(APIKeyHeader, "k1")
	if !s.Tracks(up) || s.Key(up) != "/a" || s.Credential(up) != "k1" {
		t.Errorf("upload: tracks %v, key %q, credential %q", s.Tracks(up), s.Key(up), s.Credential(up))
	}
	if sq, f := s.ParseStatus(r); f != nil || sq.Key != "/a" || sq.Step != MB {
		t.Errorf("ParseStatus = %+v, %v", sq, f)
	}
}

func TestShardProvisionKeepsConfiguredPaths(t *testing.T) {
	s := &Shard{Config: protocol.Config{StatusPath: "/p", WebSocketPaths: []string{"/w"}}}
	if err := provisioned(t, s); err != nil {
		t.Fatal(err)
	}
	if s.StatusPath != "/p" || !slices.Equal(s.WebSocketPaths, []string{"/w"}) {
		t.Errorf("paths %q %q, want the configured /p [/w]", s.StatusPath, s.WebSocketPaths)
	}
}

func TestShardProvisionExistsProbe(t *testing.T) {
	var s Shard
	if err := json.Unmarshal([]byte(`{"exists_probe":{"url":"http://127.0.0.1:9000/fso?path={key}"}}`), &s); err != nil {
		t.Fatal(err)
	}
	if err := provisioned(t, &s); err != nil {
		t.Fatal(err)
	}
	p := s.ExistsProbe
	if p.Method != http.MethodHead || !slices.Equal(p.ForwardHeaders, []string{APIKeyHeader}) ||
		time.Duration(p.CacheFor) != 5*time.Second || time.Duration(p.Timeout) != 5*time.Second {
		t.Errorf("probe defaults %+v, want HEAD, [%s], 5s, 5s", p, APIKeyHeader)
	}

	for _, u := range []string{"", "http://127.0.0.1/fso", "/fso?path={key}", "ftp://h/{key}"} {
		s := &Shard{ExistsProbe: &ExistsProbe{URL: u}}
		err := provisioned(t, s)
		if err == nil || !strings.HasPrefix(err.Error(), "exists_probe: ") {
			t.Errorf("exists probe URL %q: Provision = %v, want an exists_probe error", u, err)
		}
	}
}

func TestShardUnmarshalCaddyfile(t *testing.T) {
	var s Shard
	d := caddyfile.NewTestDispenser(`protocol shard {
		key {query.path}
		owner off
		status_path /p
		websocket_path /ws1 /ws2
		exists_probe GET http://127.0.0.1:9000/fso?path={key} {
			forward_headers x-user-api-key authorization
			cache_for 10s
			timeout 2s
		}
	}`)
	if err := s.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	want := Shard{
		Config: protocol.Config{
			Key:               "{query.path}",
			DisableOwnerCheck: true,
			StatusPath:        "/p",
			WebSocketPaths:    []string{"/ws1", "/ws2"},
		},
		ExistsProbe: &ExistsProbe{
			Method:         "GET",
			URL:            "http://127.0.0.1:9000/fso?path={key}",
			ForwardHeaders: []string{"x-user-api-key", "authorization"},
			CacheFor:       caddy.Duration(10 * time.Second),
			Timeout:        caddy.Duration(2 * time.Second),
		},
	}
	got, _ := json.Marshal(s)
	wantJSON, _ := json.Marshal(want)
	if string(got) != string(wantJSON) {
		t.Errorf("unmarshalled\n got  %s\n want %s", got, wantJSON)
	}

	// The URL alone takes the default method.
	s = Shard{}
	if err := s.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`protocol shard {
		exists_probe http://o/fso?path={key}
	}`)); err != nil {
		t.Fatal(err)
	}
	if p := s.ExistsProbe; p == nil || p.Method != "" || p.URL != "http://o/fso?path={key}" {
		t.Errorf("exists_probe <url> = %+v", p)
	}
}

func TestShardUnmarshalCaddyfileErrors(t *testing.T) {
	for _, tc := range []struct {
		input, want string
	}{
		{"protocol shard {\n\tbogus 1\n}", `unknown option "bogus" for protocol shard`},
		{"protocol shard {\n\texists_probe http://o/{key} {\n\t\tbogus 1\n\t}\n}", `unknown exists_probe option "bogus"`},
		{"protocol shard {\n\texists_probe\n}", "wrong argument count"},
		{"protocol shard {\n\texists_probe GET http://o/{key} extra\n}", "wrong argument count"},
		{"protocol shard {\n\texists_probe http://o/{key} {\n\t\tcache_for soon\n\t}\n}", `bad duration "soon"`},
		{"protocol shard {\n\tstatus_path\n}", "wrong argument count"},
		{"protocol shard pcloud {\n\tkey k\n}", "name it alone"},
	} {
		var s Shard
		err := s.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one saying %q", tc.input, err, tc.want)
		}
	}
}

// What a Caddyfile means must survive its adaptation to JSON, which is
// what Caddy runs: `forward_headers` with no names is refused (an empty
// list would vanish in the JSON, omitempty, and the probe would forward
// x-user-api-key, which the Caddyfile did not ask for), and the names
// given are the names forwarded, as parsed and once adapted.
func TestExistsProbeForwardHeadersSurviveAdaptation(t *testing.T) {
	var s Shard
	err := s.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`protocol shard {
		exists_probe http://127.0.0.1:9000/fso?path={key} {
			forward_headers
		}
	}`))
	if err == nil || !strings.Contains(err.Error(), "wrong argument count") || !strings.Contains(err.Error(), "Testfile:3") {
		t.Errorf("`forward_headers` with no names: %v, want a wrong argument count at Testfile:3", err)
	}

	s = Shard{}
	if err := s.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`protocol shard {
		exists_probe http://127.0.0.1:9000/fso?path={key} {
			forward_headers X-Api-Key Authorization
		}
	}`)); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(&s)
	if err != nil {
		t.Fatal(err)
	}
	var loaded Shard
	if err := json.Unmarshal(b, &loaded); err != nil {
		t.Fatal(err)
	}
	if err := progresstest.Provision(&loaded); err != nil {
		t.Fatal(err)
	}
	defer loaded.Cleanup()
	want := []string{"X-Api-Key", "Authorization"}
	if got := loaded.ExistsProbe.ForwardHeaders; !slices.Equal(got, want) {
		t.Errorf("forward_headers once adapted to JSON (%s) = %q, want %q", b, got, want)
	}
}
