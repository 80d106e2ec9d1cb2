package caddymodule

import (
	"testing"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/adapttest"
)

// TestAdapt: each option of upload_progress, in a Caddyfile of its own in
// testdata/adapt, adapts to the JSON Caddy runs.
func TestAdapt(t *testing.T) { adapttest.Check(t) }

// TestAdaptCoversEveryOption: every JSON field of the handler is set by
// one of those Caddyfiles.
func TestAdaptCoversEveryOption(t *testing.T) { adapttest.Covers(t, new(Handler), "") }
