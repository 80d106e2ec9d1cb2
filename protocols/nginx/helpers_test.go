package nginx

import (
	"encoding/json"
	"io"
	"testing"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// newTestTracker returns a MemoryTracker that is closed when the test ends.
func newTestTracker(t testing.TB, opts progress.Options) *progress.MemoryTracker {
	t.Helper()
	tr := progress.NewMemoryTracker(opts)
	t.Cleanup(tr.Close)
	return tr
}

// zeroReader is an endless source of zero bytes.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// zeroBody is a Body of rec that reads endless zero bytes.
func zeroBody(rec *progress.Record) *progress.Body {
	return progress.NewBody(io.NopCloser(zeroReader{}), rec)
}

// readBytes reads n bytes through body.
func readBytes(t *testing.T, body *progress.Body, n int) {
	t.Helper()
	if _, err := io.CopyN(io.Discard, body, int64(n)); err != nil {
		t.Fatalf("reading %d bytes: %v", n, err)
	}
}

// pcItoa formats an int for comparison with JSON numbers.
func pcItoa[T ~int | ~int64](n T) string {
	b, _ := json.Marshal(int64(n))
	return string(b)
}
