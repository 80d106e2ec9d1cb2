package origin

import (
	"os"
	"testing"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/leakcheck"
)

// TestMain fails the package if its tests leave goroutines behind.
func TestMain(m *testing.M) { os.Exit(leakcheck.Main(m)) }
