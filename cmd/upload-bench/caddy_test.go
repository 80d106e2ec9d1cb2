package main

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-upload-progress/caddy-upload-progress/caddymodule"
	_ "github.com/caddy-upload-progress/caddy-upload-progress/protocols/sandbox"
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
	withTus := baseSpec
	withTus.tusd, withTus.tusPlainPort, withTus.tusTrackedPort = "127.0.0.1:4", 5, 6
	checkPairSites(t, withTus, "tus", "127.0.0.1:4", "127.0.0.1:5", "127.0.0.1:6")
}

// TestW8Sites checks W8's A/B pair the same way: TRACKED-sandbox runs the
// handler as `upload_progress { protocol sandbox }` configures it, then a
// reverse_proxy to the reference origin, and PLAIN-sandbox that
// reverse_proxy alone.
func TestW8Sites(t *testing.T) {
	withSandbox := baseSpec
	withSandbox.sandbox, withSandbox.sandboxPlainPort, withSandbox.sandboxTrackedPort = "127.0.0.1:7", 8, 9
	checkPairSites(t, withSandbox, "sandbox", "127.0.0.1:7", "127.0.0.1:8", "127.0.0.1:9")
}

// baseSpec is the config of W1-W6 alone.
var baseSpec = caddySpec{plainPort: 1, trackedPort: 2, origin: "127.0.0.1:3", respondBody: "{}"}

// benchServer is what the pair tests read of a server.
type benchServer struct {
	Listen []string `json:"listen"`
	Routes []struct {
		Handle []map[string]any `json:"handle"`
	} `json:"routes"`
}

// benchServers returns the servers of s's config, by name.
func benchServers(t *testing.T, s caddySpec) map[string]benchServer {
	t.Helper()
	raw, err := caddyConfig(s)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]benchServer `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg.Apps.HTTP.Servers
}

// checkPairSites checks that spec, baseSpec with the pair of protocol
// proto set, adds exactly the servers plain-<proto> on plainAddr
// (reverse_proxy to upstream) and tracked-<proto> on trackedAddr (the
// handler as `upload_progress { protocol <proto> }` configures it, then
// the same reverse_proxy), W1-W6's servers unchanged.
func checkPairSites(t *testing.T, spec caddySpec, proto, upstream, plainAddr, trackedAddr string) {
	t.Helper()
	base := benchServers(t, baseSpec)
	if got := slices.Sorted(maps.Keys(base)); !slices.Equal(got, []string{"plain", "tracked"}) {
		t.Fatalf("without the pairs, servers %v, want plain and tracked only", got)
	}
	got := benchServers(t, spec)
	if want := []string{"plain", "plain-" + proto, "tracked", "tracked-" + proto}; !slices.Equal(slices.Sorted(maps.Keys(got)), want) {
		t.Errorf("servers %v, want %v", slices.Sorted(maps.Keys(got)), want)
	}
	if !reflect.DeepEqual(got["plain"], base["plain"]) || !reflect.DeepEqual(got["tracked"], base["tracked"]) {
		t.Errorf("the %s pair changed W1-W6's sites", proto)
	}

	var h caddymodule.Handler
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("upload_progress {\n\tprotocol " + proto + "\n}")); err != nil {
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
	proxy := map[string]any{"handler": "reverse_proxy", "upstreams": []any{map[string]any{"dial": upstream}}}

	for name, want := range map[string]struct {
		port   string
		handle []map[string]any
	}{
		"plain-" + proto:   {plainAddr, []map[string]any{proxy}},
		"tracked-" + proto: {trackedAddr, []map[string]any{caddyfileHandler, proxy}},
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
