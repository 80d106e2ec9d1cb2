// Package adapttest checks golden Caddyfile adaptations: each
// testdata/adapt/<case>.caddyfile of a package adapts to the JSON in
// testdata/adapt/<case>.json, as `caddy adapt` would print it, indented,
// and the result loads; and, with LoadError, that a protocol option
// Caddy must refuse keeps a Caddyfile from loading.
// `go test -run Adapt -update` rewrites the JSON files.
package adapttest

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile" // the Caddyfile adapter
	_ "github.com/caddyserver/caddy/v2/modules/standard"          // reverse_proxy and the rest
)

var update = flag.Bool("update", false, "rewrite the golden adaptations in testdata/adapt")

// Update is the -update flag, for a package's other golden files.
var Update = update

// Check adapts every testdata/adapt/*.caddyfile and compares the result
// with its .json file.
func Check(t *testing.T) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "adapt", "*.caddyfile"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/adapt/*.caddyfile (%v)", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".caddyfile")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			cfg, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, map[string]any{"filename": file})
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			for _, w := range warnings {
				t.Errorf("warning: %s", w)
			}
			// What it adapts to is what Caddy loads: it must provision.
			var loaded caddy.Config
			if err := json.Unmarshal(cfg, &loaded); err != nil {
				t.Fatal(err)
			}
			if err := caddy.Validate(&loaded); err != nil {
				t.Errorf("the adapted config does not load: %v", err)
			}
			var got bytes.Buffer
			if err := json.Indent(&got, cfg, "", "\t"); err != nil {
				t.Fatal(err)
			}
			got.WriteByte('\n')
			golden := strings.TrimSuffix(file, ".caddyfile") + ".json"
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("%s adapts to\n%s\nwant (%s)\n%s", file, got.Bytes(), golden, want)
			}
		})
	}
}
