package main

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-upload-progress/caddy-upload-progress/caddymodule"
	_ "github.com/caddy-upload-progress/caddy-upload-progress/protocols/tus"
)

// TestUploadLogLevelRoutesTheModulesLogger checks what -upload-log-level
// is for: the module's logger, and only it, is taken out of Caddy's default
// log and written at the level asked for; without the flag Caddy's logging
// is left as it is.
func TestUploadLogLevelRoutesTheModulesLogger(t *testing.T) {
	logger := string(caddymodule.Handler{}.CaddyModule().ID) // Caddy names a module's logger by its ID
	type log struct {
		Level   string   `json:"level"`
		Include []string `json:"include"`
		Exclude []string `json:"exclude"`
	}
	var cfg struct {
		Logging *struct {
			Logs map[string]log `json:"logs"`
		} `json:"logging"`
	}

	raw, err := caddyConfig(caddySpec{plainPort: 1, trackedPort: 2, origin: "127.0.0.1:3", respondBody: "{}"})
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Logging != nil {
		t.Fatalf("without the flag, logging = %+v, want Caddy's default", *cfg.Logging)
	}

	raw, err = caddyConfig(caddySpec{plainPort: 1, trackedPort: 2, origin: "127.0.0.1:3", respondBody: "{}", logLevel: "warn"})
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Logging == nil {
		t.Fatal("with -upload-log-level warn, no logging config")
	}
	def := cfg.Logging.Logs["default"]
	if !slices.Equal(def.Exclude, []string{logger}) || len(def.Include) != 0 || def.Level != "" {
		t.Errorf("default log = %+v, want it to exclude only %s", def, logger)
	}
	var mine []log
	for name, l := range cfg.Logging.Logs {
		if name != "default" {
			mine = append(mine, l)
		}
	}
	if len(mine) != 1 || !slices.Equal(mine[0].Include, []string{logger}) || mine[0].Level != "WARN" {
		t.Errorf("other logs = %+v, want one with %s at WARN", mine, logger)
	}
}

func TestUploadLogLevelFlag(t *testing.T) {
	for _, level := range []string{"", "warn", "INFO", "debug", "Error"} {
		if _, err := parseFlags([]string{"-upload-log-level", level}); err != nil {
			t.Errorf("-upload-log-level %q: %v", level, err)
		}
	}
	for _, level := range []string{"quiet", "warning", "5"} {
		if _, err := parseFlags([]string{"-upload-log-level", level}); err == nil {
			t.Errorf("-upload-log-level %q accepted, want an error before Caddy starts", level)
		}
	}
}

// TestW7Sites checks W7's A/B pair: with tusd, TRACKED-tus runs the handler
// exactly as `upload_progress { protocol tus }` configures it, then a
// reverse_proxy to tusd, and PLAIN-tus the same reverse_proxy alone; W1-W6's
// sites stay as they are, and without tusd they are the only ones.
func TestW7Sites(t *testing.T) {
	type server struct {
		Listen []string `json:"listen"`
		Routes []struct {
			Handle []map[string]any `json:"handle"`
		} `json:"routes"`
	}
	servers := func(s caddySpec) map[string]server {
		t.Helper()
		raw, err := caddyConfig(s)
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			Apps struct {
				HTTP struct {
					Servers map[string]server `json:"servers"`
				} `json:"http"`
			} `json:"apps"`
		}
		if err := json.Unmarshal(raw, &cfg); err != nil {
			t.Fatal(err)
		}
		return cfg.Apps.HTTP.Servers
	}

	base := caddySpec{plainPort: 1, trackedPort: 2, origin: "127.0.0.1:3", respondBody: "{}"}
	if got := slices.Sorted(maps.Keys(servers(base))); !slices.Equal(got, []string{"plain", "tracked"}) {
		t.Fatalf("without tusd, servers %v, want plain and tracked only", got)
	}

	withTus := base
	withTus.tusd, withTus.tusPlainPort, withTus.tusTrackedPort = "127.0.0.1:4", 5, 6
	got := servers(withTus)
	if !reflect.DeepEqual(got["plain"], servers(base)["plain"]) || !reflect.DeepEqual(got["tracked"], servers(base)["tracked"]) {
		t.Errorf("tusd changed W1-W6's sites")
	}

	var h caddymodule.Handler
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("upload_progress {\n\tprotocol tus\n}")); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var caddyfileHandler map[string]any
	if err := json.Unmarshal(b, &caddyfileHandler); err != nil {
		t.Fatal(err)
	}
	caddyfileHandler["handler"] = "upload_progress"
	proxy := map[string]any{"handler": "reverse_proxy", "upstreams": []any{map[string]any{"dial": "127.0.0.1:4"}}}

	for name, want := range map[string]struct {
		port   string
		handle []map[string]any
	}{
		"plain-tus":   {"127.0.0.1:5", []map[string]any{proxy}},
		"tracked-tus": {"127.0.0.1:6", []map[string]any{caddyfileHandler, proxy}},
	} {
		s, ok := got[name]
		if !ok {
			t.Errorf("no %s server", name)
			continue
		}
		if !slices.Equal(s.Listen, []string{want.port}) || len(s.Routes) != 1 || !reflect.DeepEqual(s.Routes[0].Handle, want.handle) {
			t.Errorf("%s = %+v, want on %s the handlers %v", name, s, want.port, want.handle)
		}
	}
}
