package caddymodule

import (
	"os"
	"testing"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/leakcheck"
)

// TestMain fails the package if its tests leave goroutines behind: zones
// not closed at Cleanup, watchers, probes.
func TestMain(m *testing.M) { os.Exit(leakcheck.Main(m)) }
