package pcloud

import (
	"testing"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// MB is a mebibyte: pCloud's watchers get an update per MB.
const MB = 1 << 20

// newTestTracker returns a MemoryTracker that is closed when the test ends.
func newTestTracker(t testing.TB, opts progress.Options) *progress.MemoryTracker {
	t.Helper()
	tr := progress.NewMemoryTracker(opts)
	t.Cleanup(tr.Close)
	return tr
}
