package dstor

import (
	"testing"

	_ "github.com/caddy-upload-progress/caddy-upload-progress/caddymodule"
	"github.com/caddy-upload-progress/caddy-upload-progress/internal/adapttest"
	_ "github.com/caddy-upload-progress/caddy-upload-progress/protocols/pcloud"
)

// TestAdapt: Caddyfiles with `protocol dstor` adapt to the JSON Caddy runs.
func TestAdapt(t *testing.T) { adapttest.Check(t) }
