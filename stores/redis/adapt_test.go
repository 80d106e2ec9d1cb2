package redisstore

import (
	"testing"

	_ "github.com/caddy-upload-progress/caddy-upload-progress/caddymodule"
	"github.com/caddy-upload-progress/caddy-upload-progress/internal/adapttest"
	_ "github.com/caddy-upload-progress/caddy-upload-progress/protocols/shard"
)

// TestAdapt: each option of `store redis`, in a Caddyfile of its own in
// testdata/adapt, adapts to the JSON Caddy runs.
func TestAdapt(t *testing.T) { adapttest.Check(t) }

// TestAdaptCoversEveryOption: every JSON field of the redis store is set
// by one of those Caddyfiles.
func TestAdaptCoversEveryOption(t *testing.T) { adapttest.CoversStore(t, new(Redis), "redis") }
