package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// The demo's flags move every address of Caddyfile.example: the site, the
// admin endpoint, reverse_proxy's upstream, and protocol sandbox's origin,
// which the proxy itself asks about watched sessions.
func TestDemoConfigFollowsTheFlags(t *testing.T) {
	cfg, err := demoConfig("127.0.0.1:18001", "127.0.0.1:18002", "127.0.0.1:18003")
	if err != nil {
		t.Fatal(err)
	}
	for _, old := range []string{demoListen, demoOrigin, demoAdmin} {
		if strings.Contains(string(cfg), `"`+old+`"`) || strings.Contains(string(cfg), "//"+old) {
			t.Errorf("the config still names %s: %s", old, cfg)
		}
	}
	var v any
	if err := json.Unmarshal(cfg, &v); err != nil {
		t.Fatal(err)
	}
	var sandbox []any
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if v["name"] == "sandbox" {
				sandbox = append(sandbox, v["origin"])
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
	if len(sandbox) != 1 || sandbox[0] != "http://127.0.0.1:18002" {
		t.Errorf("protocol sandbox's origin: %v, want [http://127.0.0.1:18002]", sandbox)
	}
}
