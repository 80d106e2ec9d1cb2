package demo

import (
	"encoding/json"
	"strings"
	"testing"
)

// The demo's flags move every address of Caddyfile.example: the site, the
// admin endpoint, reverse_proxy's upstream, and the origin of protocols
// sandbox and dstor, which the proxy itself asks about watched uploads.
func TestDemoConfigFollowsTheFlags(t *testing.T) {
	cfg, err := Config("127.0.0.1:18001", "127.0.0.1:18002", "127.0.0.1:18003")
	if err != nil {
		t.Fatal(err)
	}
	for _, old := range []string{Listen, Origin, Admin} {
		if strings.Contains(string(cfg), `"`+old+`"`) || strings.Contains(string(cfg), "//"+old) {
			t.Errorf("the config still names %s: %s", old, cfg)
		}
	}
	var v any
	if err := json.Unmarshal(cfg, &v); err != nil {
		t.Fatal(err)
	}
	origins := map[string][]any{}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if name, ok := v["name"].(string); ok && (name == "sandbox" || name == "dstor") {
				origins[name] = append(origins[name], v["origin"])
			}
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(v)
	for _, name := range []string{"sandbox", "dstor"} {
		if got := origins[name]; len(got) != 1 || got[0] != "http://127.0.0.1:18002" {
			t.Errorf("protocol %s's origin: %v, want [http://127.0.0.1:18002]", name, got)
		}
	}
}
