package adapttest

import (
	"encoding/json"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// LoadError adapts a Caddyfile whose upload_progress has the protocol
// name with option in its block, and returns why Caddy does not load it;
// it fails the test if the Caddyfile does not adapt cleanly or loads.
func LoadError(t *testing.T, name, option string) error {
	t.Helper()
	src := ":8080 {\n\tupload_progress {\n\t\tprotocol " + name + " {\n\t\t\t" + option + "\n\t\t}\n\t}\n\treverse_proxy 127.0.0.1:9000\n}\n"
	cfg, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), nil)
	if err != nil {
		t.Fatalf("adapt: %v", err)
	}
	if len(warnings) > 0 {
		t.Errorf("warnings: %v", warnings)
	}
	var loaded caddy.Config
	if err := json.Unmarshal(cfg, &loaded); err != nil {
		t.Fatal(err)
	}
	err = caddy.Validate(&loaded)
	if err == nil {
		t.Fatalf("a %s protocol with %q loads", name, option)
	}
	return err
}
