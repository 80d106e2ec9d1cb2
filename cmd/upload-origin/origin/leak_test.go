package origin

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the package if its tests leave goroutines behind. tusd
// keeps a goroutine per request for tusGrace after the request ended, by
// design, so leaks are looked for until that time has surely passed.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(tusGrace + 2*time.Second)
		for {
			err := goleak.Find()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintf(os.Stderr, "goroutines left behind: %v\n", err)
				code = 1
				break
			}
		}
	}
	os.Exit(code)
}
