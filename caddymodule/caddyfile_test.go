package caddymodule

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

// updateGolden rewrites the golden files under testdata from the current
// output: go test ./caddymodule/ -run Golden -update
var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestUnmarshalCaddyfile(t *testing.T) {
	dur := func(d time.Duration) caddy.Duration { return caddy.Duration(d) }
	tests := []struct {
		name  string
		input string
		want  Handler
	}{
		{
			name:  "bare directive",
			input: `upload_progress`,
			want:  Handler{},
		},
		{
			name:  "empty block",
			input: "upload_progress {\n}",
			want:  Handler{},
		},
		{
			name: "one protocol",
			input: `upload_progress {
				protocol shard
			}`,
			want: Handler{ProtocolsRaw: protos(t, `{"name":"shard"}`)},
		},
		{
			name: "protocol list keeps its order",
			input: `upload_progress {
				protocol nginx shard
			}`,
			want: Handler{ProtocolsRaw: protos(t, `{"name":"nginx"}`, `{"name":"shard"}`)},
		},
		{
			name: "protocols spelled plural and repeated lines append",
			input: `upload_progress {
				protocols nginx
				protocol shard
			}`,
			want: Handler{ProtocolsRaw: protos(t, `{"name":"nginx"}`, `{"name":"shard"}`)},
		},
		{
			name: "protocol block with every option",
			input: `upload_progress {
				protocol shard {
					key            {http.request.uri.query.file}
					owner          {http.request.header.Authorization}
					status_path    /api/progress
					websocket_path /api/ws /api/progress/ws
				}
			}`,
			want: Handler{ProtocolsRaw: protos(t, `{"name":"shard","key":"{http.request.uri.query.file}",
				"owner":"{http.request.header.Authorization}","status_path":"/api/progress",
				"websocket_paths":["/api/ws","/api/progress/ws"]}`)},
		},
		{
			name: "protocol block: owner off, websocket_paths twice appends",
			input: `upload_progress {
				protocol nginx {
					owner off
					websocket_paths /a
					websocket_path /b
				}
			}`,
			want: Handler{ProtocolsRaw: protos(t, `{"name":"nginx","disable_owner_check":true,"websocket_paths":["/a","/b"]}`)},
		},
		{
			name: "protocol block then another protocol line",
			input: `upload_progress {
				protocol nginx {
					status_path /nginx_progress
				}
				protocol shard
			}`,
			want: Handler{ProtocolsRaw: protos(t, `{"name":"nginx","status_path":"/nginx_progress"}`, `{"name":"shard"}`)},
		},
		{
			name: "zone retain max_keys",
			input: `upload_progress {
				zone uploads
				retain 90s
				max_keys 42
			}`,
			want: Handler{Zone: "uploads", Retain: dur(90 * time.Second), MaxKeys: 42},
		},
		{
			name: "retain in days",
			input: `upload_progress {
				retain 1d
			}`,
			want: Handler{Retain: dur(24 * time.Hour)},
		},
		{
			name: "key and owner",
			input: `upload_progress {
				key   {http.request.header.X-Upload-Id}
				owner {http.request.header.X-Api-Key}
			}`,
			want: Handler{Key: "{http.request.header.X-Upload-Id}", Owner: "{http.request.header.X-Api-Key}"},
		},
		{
			name: "owner off",
			input: `upload_progress {
				owner off
			}`,
			want: Handler{DisableOwnerCheck: true},
		},
		{
			name: "origin_patterns on several lines append",
			input: `upload_progress {
				origin_patterns app.example.com *.example.org
				origin_patterns localhost:*
			}`,
			want: Handler{OriginPatterns: []string{"app.example.com", "*.example.org", "localhost:*"}},
		},
		{
			name: "WebSocket timings",
			input: `upload_progress {
				update_interval 250ms
				ping_interval 15s
				watcher_timeout 5s
				watch_token_ttl 2m
			}`,
			want: Handler{UpdateInterval: dur(250 * time.Millisecond), PingInterval: dur(15 * time.Second), WatcherTimeout: dur(5 * time.Second), WatchTokenTTL: dur(2 * time.Minute)},
		},
		{
			name: "update_interval off",
			input: `upload_progress {
				update_interval off
			}`,
			want: Handler{UpdateInterval: -1},
		},
		{
			name: "key_updates_per_second",
			input: `upload_progress {
				key_updates_per_second 1000
			}`,
			want: Handler{KeyUpdatesPerSecond: 1000},
		},
		{
			name: "max_file_details",
			input: `upload_progress {
				max_file_details 16MiB
			}`,
			want: Handler{MaxFileDetails: 16 << 20},
		},
		{
			name: "key_updates_per_second off",
			input: `upload_progress {
				key_updates_per_second off
			}`,
			want: Handler{KeyUpdatesPerSecond: -1},
		},
		{
			name: "exists_probe with a URL only",
			input: `upload_progress {
				protocol shard {
					exists_probe http://127.0.0.1:9000/fso?path={key}
				}
			}`,
			want: Handler{ProtocolsRaw: protos(t, `{"name":"shard","exists_probe":{"url":"http://127.0.0.1:9000/fso?path={key}"}}`)},
		},
		{
			name: "exists_probe with a method",
			input: `upload_progress {
				protocol shard {
					exists_probe GET http://127.0.0.1:9000/files{key}
				}
			}`,
			want: Handler{ProtocolsRaw: protos(t, `{"name":"shard","exists_probe":{"method":"GET","url":"http://127.0.0.1:9000/files{key}"}}`)},
		},
		{
			name: "exists_probe with its block",
			input: `upload_progress {
				protocol shard {
					exists_probe HEAD http://127.0.0.1:9000/fso?path={key} {
						forward_headers x-user-api-key Authorization
						cache_for 10s
						timeout 2s
					}
				}
			}`,
			want: Handler{ProtocolsRaw: protos(t, `{"name":"shard","exists_probe":{"method":"HEAD",
				"url":"http://127.0.0.1:9000/fso?path={key}","forward_headers":["x-user-api-key","Authorization"],
				"cache_for":10000000000,"timeout":2000000000}}`)},
		},
		{
			name: "every option",
			input: `upload_progress {
				protocol nginx {
					owner off
				}
				protocol shard {
					key {http.request.uri.query.path}
					status_path /progress
					websocket_path /ws/progress
					exists_probe http://origin/fso?path={key} {
						timeout 1s
					}
				}
				zone site-a
				retain 10m
				max_keys 1000
				key {http.request.uri.query.path}
				owner {http.request.header.x-user-api-key}
				origin_patterns *.example.com
			}`,
			want: Handler{
				ProtocolsRaw: protos(t, `{"name":"nginx","disable_owner_check":true}`,
					`{"name":"shard","key":"{http.request.uri.query.path}","status_path":"/progress","websocket_paths":["/ws/progress"],
					"exists_probe":{"url":"http://origin/fso?path={key}","timeout":1000000000}}`),
				Zone:           "site-a",
				Retain:         dur(10 * time.Minute),
				MaxKeys:        1000,
				Key:            "{http.request.uri.query.path}",
				Owner:          "{http.request.header.x-user-api-key}",
				OriginPatterns: []string{"*.example.com"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Handler
			if err := got.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input)); err != nil {
				t.Fatalf("UnmarshalCaddyfile: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("handler mismatch\n got: %s\nwant: %s", jsonOf(t, got), jsonOf(t, tt.want))
			}
		})
	}
}

func TestUnmarshalCaddyfileErrors(t *testing.T) {
	tests := []struct {
		name  string
		input string
		// every fragment must be in the error message
		want []string
	}{
		{
			name:  "args after the directive name",
			input: `upload_progress shard`,
			want:  []string{"wrong argument count", "Testfile:1"},
		},
		{
			name: "unknown option",
			input: `upload_progress {
				zones default
			}`,
			want: []string{`unknown upload_progress option "zones"`, "Testfile:2"},
		},
		{
			name: "protocol without a name",
			input: `upload_progress {
				protocol
			}`,
			want: []string{"wrong argument count", "protocol", "Testfile:2"},
		},
		{
			name: "zone without a name",
			input: `upload_progress {
				zone
			}`,
			want: []string{"wrong argument count", "zone"},
		},
		{
			name: "zone with two names",
			input: `upload_progress {
				zone a b
			}`,
			want: []string{"wrong argument count"},
		},
		{
			name: "key without a template",
			input: `upload_progress {
				key
			}`,
			want: []string{"wrong argument count", "key"},
		},
		{
			name: "owner with two values",
			input: `upload_progress {
				owner off now
			}`,
			want: []string{"wrong argument count"},
		},
		{
			name: "origin_patterns without a pattern",
			input: `upload_progress {
				origin_patterns
			}`,
			want: []string{"wrong argument count", "origin_patterns"},
		},
		{
			name: "retain without a value",
			input: `upload_progress {
				retain
			}`,
			want: []string{"wrong argument count", "retain"},
		},
		{
			name: "update_interval without a value",
			input: `upload_progress {
				update_interval
			}`,
			want: []string{"wrong argument count", "update_interval"},
		},
		{
			name: "max_file_details not a size",
			input: `upload_progress {
				max_file_details lots
			}`,
			want: []string{"max_file_details must be a size such as 64MiB", `"lots"`},
		},
		{
			name: "key_updates_per_second zero",
			input: `upload_progress {
				key_updates_per_second 0
			}`,
			want: []string{"key_updates_per_second must be a positive whole number or off", `"0"`},
		},
		{
			name: "key_updates_per_second without a value",
			input: `upload_progress {
				key_updates_per_second
			}`,
			want: []string{"wrong argument count", "key_updates_per_second"},
		},
		{
			name: "bad ping_interval",
			input: `upload_progress {
				ping_interval often
			}`,
			want: []string{`bad duration "often"`, "Testfile:2"},
		},
		{
			name: "bad retain duration",
			input: `upload_progress {
				retain five
			}`,
			want: []string{`bad duration "five"`, "Testfile:2"},
		},
		{
			name: "max_keys not a number",
			input: `upload_progress {
				max_keys lots
			}`,
			want: []string{`max_keys must be a positive whole number, not "lots"`, "Testfile:2"},
		},
		{
			name: "max_keys zero",
			input: `upload_progress {
				max_keys 0
			}`,
			want: []string{`max_keys must be a positive whole number, not "0"`},
		},
		{
			name: "max_keys negative",
			input: `upload_progress {
				max_keys -5
			}`,
			want: []string{`max_keys must be a positive whole number, not "-5"`},
		},
		{
			name: "block on a multi-name protocol line",
			input: `upload_progress {
				protocol nginx shard {
					status_path /p
				}
			}`,
			want: []string{"a protocol block configures one protocol", "protocol nginx { … }", "Testfile:2"},
		},
		{
			name: "unknown protocol option",
			input: `upload_progress {
				protocol shard {
					path /p
				}
			}`,
			want: []string{`unknown option "path" for protocol shard`, "Testfile:3"},
		},
		{
			name: "protocol status_path without a path",
			input: `upload_progress {
				protocol shard {
					status_path
				}
			}`,
			want: []string{"wrong argument count", "status_path"},
		},
		{
			name: "protocol status_path with two paths",
			input: `upload_progress {
				protocol shard {
					status_path /a /b
				}
			}`,
			want: []string{"wrong argument count"},
		},
		{
			name: "protocol websocket_path without a path",
			input: `upload_progress {
				protocol shard {
					websocket_path
				}
			}`,
			want: []string{"wrong argument count", "websocket_path"},
		},
		{
			name: "protocol key without a template",
			input: `upload_progress {
				protocol shard {
					key
				}
			}`,
			want: []string{"wrong argument count"},
		},
		{
			name: "exists_probe without a URL",
			input: `upload_progress {
				protocol shard {
					exists_probe
				}
			}`,
			want: []string{"wrong argument count", "exists_probe"},
		},
		{
			name: "exists_probe with three args",
			input: `upload_progress {
				protocol shard {
					exists_probe HEAD http://o/{key} extra
				}
			}`,
			want: []string{"wrong argument count"},
		},
		{
			name: "exists_probe unknown option",
			input: `upload_progress {
				protocol shard {
					exists_probe http://o/{key} {
						retries 3
					}
				}
			}`,
			want: []string{`unknown exists_probe option "retries"`, "Testfile:4"},
		},
		{
			name: "exists_probe bad timeout",
			input: `upload_progress {
				protocol shard {
					exists_probe http://o/{key} {
						timeout soon
					}
				}
			}`,
			want: []string{`bad duration "soon"`},
		},
		{
			name: "exists_probe bad cache_for",
			input: `upload_progress {
				protocol shard {
					exists_probe http://o/{key} {
						cache_for 5 s
					}
				}
			}`,
			want: []string{"wrong argument count", "Testfile:4"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if err == nil {
				t.Fatalf("UnmarshalCaddyfile accepted it: %s", jsonOf(t, h))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// adaptCaddyfile adapts a whole Caddyfile to JSON with Caddy's own adapter,
// as `caddy adapt` does, and fails the test on errors or warnings.
func adaptCaddyfile(t *testing.T, src string) map[string]any {
	t.Helper()
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		t.Fatal("no caddyfile adapter registered")
	}
	out, warnings, err := adapter.Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("adapt: %v", err)
	}
	for _, w := range warnings {
		t.Errorf("adapt warning: %s", w.String())
	}
	var cfg map[string]any
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("adapted config is not JSON: %v\n%s", err, out)
	}
	return cfg
}

// serverRoutes returns the routes of the only HTTP server of an adapted config.
func serverRoutes(t *testing.T, cfg map[string]any) []any {
	t.Helper()
	servers, _ := dig(cfg, "apps", "http", "servers").(map[string]any)
	if len(servers) != 1 {
		t.Fatalf("want one server, got %d: %s", len(servers), jsonOf(t, cfg))
	}
	for _, srv := range servers {
		routes, _ := srv.(map[string]any)["routes"].([]any)
		return routes
	}
	return nil
}

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

// handlersInOrder lists the handlers of routes depth first, in the order a
// request meets them; subroutes are entered and not listed themselves.
func handlersInOrder(routes []any) []map[string]any {
	var out []map[string]any
	for _, r := range routes {
		hs, _ := dig(r, "handle").([]any)
		for _, h := range hs {
			hm, _ := h.(map[string]any)
			if hm["handler"] == "subroute" {
				sub, _ := hm["routes"].([]any)
				out = append(out, handlersInOrder(sub)...)
				continue
			}
			out = append(out, hm)
		}
	}
	return out
}

func handlerNames(hs []map[string]any) []string {
	names := make([]string, len(hs))
	for i, h := range hs {
		names[i], _ = h["handler"].(string)
		if names[i] == "static_response" {
			if body, ok := h["body"].(string); ok {
				names[i] += ":" + body
			}
		}
	}
	return names
}

// fullCaddyfile uses every option of the directive, with a matcher.
const fullCaddyfile = `{
	admin off
}

example.com {
	upload_progress /api/* {
		protocol nginx {
			owner off
			status_path /api/nginx_progress
		}
		protocol shard {
			key {http.request.uri.query.path}
			owner {http.request.header.x-user-api-key}
			status_path /api/progress
			websocket_path /api/ws/progress /api/progress/ws
			exists_probe GET http://127.0.0.1:9000/fso?path={key} {
				forward_headers x-user-api-key Authorization
				cache_for 30s
				timeout 3s
			}
		}
		protocol pcloud {
			upload_path /api/uploadfile
			status_path /api/uploadprogress
			websocket_path /api/uploadprogress/ws
		}
		zone golden
		retain 10m
		max_keys 5000
		max_watchers 2000
		max_watchers_per_key 100
		max_file_details 32MiB
		idle_timeout 2m
		update_interval 250ms
		key_updates_per_second 500
		ping_interval 20s
		watcher_timeout 5s
		watch_token_ttl 15m
		key {http.request.uri.query.file}
		owner {http.request.header.Authorization}
		origin_patterns app.example.com *.example.org
	}
	reverse_proxy 127.0.0.1:9000
}
`

// TestCaddyfileGolden adapts a Caddyfile using every option and compares the
// upload_progress handler's JSON with testdata/caddyfile_full.json. Run with
// -update to rewrite the golden file, then review it.
func TestCaddyfileGolden(t *testing.T) {
	cfg := adaptCaddyfile(t, fullCaddyfile)
	var found []map[string]any
	for _, h := range handlersInOrder(serverRoutes(t, cfg)) {
		if h["handler"] == "upload_progress" {
			found = append(found, h)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one upload_progress handler, got %d in %s", len(found), jsonOf(t, cfg))
	}
	got, err := json.MarshalIndent(found[0], "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')

	golden := filepath.Join("testdata", "caddyfile_full.json")
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("adapted handler differs from %s (run with -update if the change is intended)\n got:\n%s\nwant:\n%s", golden, got, want)
	}

	// The golden JSON is what Caddy loads: it must decode back into the
	// handler the Caddyfile describes, and provision.
	var h Handler
	dec := json.NewDecoder(bytes.NewReader(want))
	if err := dec.Decode(&h); err != nil {
		t.Fatalf("golden JSON does not decode into Handler: %v", err)
	}
	if names, err := protocolNames(h.ProtocolsRaw); err != nil || !slices.Equal(names, []string{"nginx", "shard", "pcloud"}) || h.Zone != "golden" {
		t.Errorf("golden JSON decodes to an unexpected handler (%v): %s", err, jsonOf(t, h))
	}
	h.Zone = uniqueZone(t)
	provisionForTest(t, &h)
	if err := h.Validate(); err != nil {
		t.Errorf("golden config does not validate: %v", err)
	}
}

// TestCaddyfileMatcher checks the directive's matcher ends up on its route.
func TestCaddyfileMatcher(t *testing.T) {
	cfg := adaptCaddyfile(t, fullCaddyfile)
	var walk func(routes []any) any
	walk = func(routes []any) any {
		for _, r := range routes {
			hs, _ := dig(r, "handle").([]any)
			for _, h := range hs {
				hm, _ := h.(map[string]any)
				if hm["handler"] == "upload_progress" {
					return dig(r, "match")
				}
				if sub, ok := hm["routes"].([]any); ok {
					if m := walk(sub); m != nil {
						return m
					}
				}
			}
		}
		return nil
	}
	got := walk(serverRoutes(t, cfg))
	want := []any{map[string]any{"path": []any{"/api/*"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("upload_progress route matcher = %s, want %s", jsonOf(t, got), jsonOf(t, want))
	}
}

// TestCaddyfileDirectiveOrder checks the directive orders itself: written
// after reverse_proxy and a handle block, it still runs before both, and
// after basic_auth.
func TestCaddyfileDirectiveOrder(t *testing.T) {
	cfg := adaptCaddyfile(t, `{
	admin off
}

example.com {
	reverse_proxy 127.0.0.1:9000
	handle /health {
		respond "ok"
	}
	encode gzip
	basic_auth /private/* {
		alice $2a$14$Zkx19XLiW6VYouLHR5NmfOFU0z2GTNmpkT/5qqR7hx4IjWJPDhjvG
	}
	upload_progress {
		protocol shard
	}
}
`)
	routes := serverRoutes(t, cfg)
	names := handlerNames(handlersInOrder(routes))
	want := []string{"authentication", "upload_progress", "encode", "static_response:ok", "reverse_proxy"}
	if !slices.Equal(names, want) {
		t.Fatalf("handlers in order = %q, want %q", names, want)
	}

	// The first route of the site is upload_progress's, with no matcher:
	// it sees every request of the site before handle and reverse_proxy.
	site, _ := dig(routes[0], "handle").([]any)
	if len(site) != 1 {
		t.Fatalf("site route: %s", jsonOf(t, routes[0]))
	}
	sub, _ := dig(site[0], "routes").([]any)
	for i, r := range sub {
		hs, _ := dig(r, "handle").([]any)
		if len(hs) > 0 && dig(hs[0], "handler") == "upload_progress" {
			if dig(r, "match") != nil {
				t.Errorf("upload_progress route has a matcher: %s", jsonOf(t, r))
			}
			for _, before := range sub[:i] {
				for _, h := range handlerNames(handlersInOrder([]any{before})) {
					if h != "authentication" {
						t.Errorf("%s runs before upload_progress", h)
					}
				}
			}
			return
		}
	}
	t.Errorf("no top-level upload_progress route in the site: %s", jsonOf(t, sub))
}

// TestCaddyfileDirectiveOrderFirst: with only reverse_proxy and a handle
// block written before it, upload_progress is the site's first handler.
func TestCaddyfileDirectiveOrderFirst(t *testing.T) {
	cfg := adaptCaddyfile(t, `{
	admin off
}

example.com {
	reverse_proxy 127.0.0.1:9000
	handle /health {
		respond "ok"
	}
	upload_progress
}
`)
	names := handlerNames(handlersInOrder(serverRoutes(t, cfg)))
	want := []string{"upload_progress", "static_response:ok", "reverse_proxy"}
	if !slices.Equal(names, want) {
		t.Fatalf("handlers in order = %q, want %q", names, want)
	}
}

// TestCaddyfileDirectiveOrderInRoute checks that inside a route block the
// written order holds, as the README says.
func TestCaddyfileDirectiveOrderInRoute(t *testing.T) {
	cfg := adaptCaddyfile(t, `{
	admin off
}

example.com {
	route /api/* {
		upload_progress
		reverse_proxy 127.0.0.1:9000
	}
}
`)
	names := handlerNames(handlersInOrder(serverRoutes(t, cfg)))
	want := []string{"upload_progress", "reverse_proxy"}
	if !slices.Equal(names, want) {
		t.Fatalf("handlers in order = %q, want %q", names, want)
	}
}

func TestCaddyfileAdaptErrors(t *testing.T) {
	adapter := caddyconfig.GetAdapter("caddyfile")
	_, _, err := adapter.Adapt([]byte("example.com {\n\tupload_progress {\n\t\tretain forever\n\t}\n}\n"), map[string]any{"filename": "Caddyfile"})
	if err == nil || !strings.Contains(err.Error(), `bad duration "forever"`) || !strings.Contains(err.Error(), "Caddyfile:3") {
		t.Errorf("adapt error = %v, want a bad duration at Caddyfile:3", err)
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return string(b)
}

// protos is the protocols of a handler as the Caddyfile adapts them: JSON
// objects with their keys in order, as caddyconfig.JSONModuleObject writes
// them.
func protos(t *testing.T, objs ...string) []json.RawMessage {
	t.Helper()
	raws := make([]json.RawMessage, len(objs))
	for i, o := range objs {
		var m map[string]any
		if err := json.Unmarshal([]byte(o), &m); err != nil {
			t.Fatalf("protos: %v in %s", err, o)
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		raws[i] = b
	}
	return raws
}
