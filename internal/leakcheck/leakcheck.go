// Package leakcheck fails a test binary that leaves goroutines behind: the
// equivalent of goleak for this project's tests, without a dependency.
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

// Wait is how long Main waits for goroutines that are on their way out.
const Wait = 10 * time.Second

// Main runs the tests and, if they passed, fails the binary unless the
// goroutine count falls back to what it was before them within Wait.
// Call it from TestMain: os.Exit(leakcheck.Main(m)).
func Main(m *testing.M) int {
	before := runtime.NumGoroutine()
	code := m.Run()
	if code != 0 {
		return code
	}
	if left := Left(before, Wait); left != "" {
		fmt.Fprintf(os.Stderr, "goroutines left behind by the tests (%d before them):\n%s", before, left)
		return 1
	}
	return 0
}

// Left waits up to wait for the goroutine count to fall back to before;
// if it does not, it returns a dump of every goroutine, else "".
func Left(before int, wait time.Duration) string {
	deadline := time.Now().Add(wait)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			var b strings.Builder
			pprof.Lookup("goroutine").WriteTo(&b, 1)
			return b.String()
		}
		time.Sleep(10 * time.Millisecond)
	}
	return ""
}
