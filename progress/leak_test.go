package progress

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if its tests leave goroutines behind:
// trackers' janitors, watchers parked in Next, readers of bodies. goleak
// already passes over the goroutines of Go's testing and fuzzing engine
// (os/signal's loop among them), so the documented fuzz commands pass.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
