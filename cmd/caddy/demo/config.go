// Package demo is what `caddy demo` runs besides the reference origin: its
// Caddy configuration (Caddyfile.example moved to the demo's addresses) and
// the web page it serves at /, which uploads files through Caddy and shows
// each upload's progress as the proxy counts it.
package demo

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	// Caddyfile.example uses standard directives (reverse_proxy, metrics).
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	uploadprogress "github.com/caddy-upload-progress/caddy-upload-progress"
)

// The addresses of Caddyfile.example, which Config replaces.
const (
	Listen = ":8080"          // the site
	Origin = "127.0.0.1:9000" // the origin behind it
	Admin  = "localhost:2019" // Caddy's admin endpoint, with /metrics
)

// originURL is the origin's base URL in Caddyfile.example (the origin
// option of protocols sandbox and dstor).
const originURL = "http://" + Origin

// Config is Caddyfile.example as JSON, served on listen in front of the
// origin on origin, with its admin endpoint on admin, and the demo page
// (PagePaths) in front of it all.
func Config(listen, origin, admin string) ([]byte, error) {
	adapted, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(uploadprogress.ExampleCaddyfile,
		map[string]any{"filename": "Caddyfile.example"})
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		fmt.Fprintln(os.Stderr, w.String())
	}
	var cfg any
	if err := json.Unmarshal(adapted, &cfg); err != nil {
		return nil, err
	}
	to := map[string]string{Listen: listen, Origin: origin, Admin: admin}
	found := map[string]bool{}
	rewriteAddrs(cfg, "", to, found)
	// Each address, and the origin's base URL too: protocol sandbox asks
	// the origin itself how a watched session stands, so its origin
	// option must follow the origin as reverse_proxy's upstream does.
	for _, from := range []string{Listen, Origin, Admin, originURL} {
		if !found[from] {
			return nil, fmt.Errorf("the example Caddyfile does not use %s, which the demo expects", from)
		}
	}
	if err := addPageRoute(cfg, listen); err != nil {
		return nil, err
	}
	return json.Marshal(cfg)
}

// addPageRoute puts the page's route first in the server that listens on
// listen: it answers PagePaths only, and everything else goes on to
// upload_progress and the origin.
func addPageRoute(cfg any, listen string) error {
	servers, _ := dig(cfg, "apps", "http", "servers").(map[string]any)
	for _, s := range servers {
		srv, _ := s.(map[string]any)
		ls, _ := srv["listen"].([]any)
		if len(ls) != 1 || ls[0] != listen {
			continue
		}
		routes, _ := srv["routes"].([]any)
		page := map[string]any{
			"match":    []any{map[string]any{"path": PagePaths}},
			"handle":   []any{map[string]any{"handler": "upload_progress_demo_page"}},
			"terminal": true,
		}
		srv["routes"] = append([]any{page}, routes...)
		return nil
	}
	return fmt.Errorf("the example Caddyfile has no site on %s for the demo page", Listen)
}

// dig is the value at the path of keys in nested JSON objects, or nil.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// rewriteAddrs replaces, in a JSON config, the listen and dial addresses
// that to maps, and the http base URLs of those addresses in an origin
// option (a protocol's own requests to the origin), and notes which it
// found.
func rewriteAddrs(v any, key string, to map[string]string, found map[string]bool) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = rewriteAddrs(e, k, to, found)
		}
	case []any:
		for i, e := range v {
			v[i] = rewriteAddrs(e, key, to, found)
		}
	case string:
		if r, ok := to[v]; ok && (key == "listen" || key == "dial") {
			found[v] = true
			return r
		}
		if host, ok := strings.CutPrefix(v, "http://"); ok && key == "origin" {
			if r, ok := to[host]; ok {
				found[v] = true
				return "http://" + r
			}
		}
	}
	return v
}
