package dstor

import (
	"testing"

	_ "github.com/caddy-upload-progress/caddy-upload-progress/caddymodule"
	"github.com/caddy-upload-progress/caddy-upload-progress/internal/adapttest"
	_ "github.com/caddy-upload-progress/caddy-upload-progress/protocols/pcloud"
)

// TestAdapt: Caddyfiles with `protocol dstor` adapt to the JSON Caddy runs.
func TestAdapt(t *testing.T) { adapttest.Check(t) }

// TestAdaptCoversEveryOption: every JSON field of protocol dstor is set by a
// Caddyfile in testdata/adapt, but those it refuses.
func TestAdaptCoversEveryOption(t *testing.T) {
	adapttest.Covers(t, new(Dstor), "dstor", "key", "status_path")
}
