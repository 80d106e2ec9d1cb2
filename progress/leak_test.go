package progress

import (
	"os"
	"testing"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/leakcheck"
)

// TestMain fails the package if its tests leave goroutines behind:
// trackers' janitors, watchers parked in Next, readers of bodies.
func TestMain(m *testing.M) { os.Exit(leakcheck.Main(m)) }
