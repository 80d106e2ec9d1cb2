package caddymodule

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if its tests leave goroutines behind: zones
// not closed at Cleanup, watchers, probes.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
