package nginx

import (
	"testing"

	_ "github.com/caddy-upload-progress/caddy-upload-progress/caddymodule"
	"github.com/caddy-upload-progress/caddy-upload-progress/internal/adapttest"
)

// TestAdapt: Caddyfiles with `protocol nginx` adapt to the JSON Caddy runs.
func TestAdapt(t *testing.T) { adapttest.Check(t) }

// TestAdaptCoversEveryOption: every JSON field of protocol nginx is set by a
// Caddyfile in testdata/adapt.
func TestAdaptCoversEveryOption(t *testing.T) {
	adapttest.Covers(t, new(Nginx), "nginx")
}
