package sandbox

import (
	"testing"

	_ "github.com/caddy-upload-progress/caddy-upload-progress/caddymodule"
	"github.com/caddy-upload-progress/caddy-upload-progress/internal/adapttest"
	_ "github.com/caddy-upload-progress/caddy-upload-progress/protocols/shard"
)

// TestAdapt: Caddyfiles with `protocol sandbox` adapt to the JSON Caddy runs.
func TestAdapt(t *testing.T) { adapttest.Check(t) }
