package multinode

import (
	"net/http"
	"testing"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/ssetest"
)

// openSSE opens an event stream at path on n as an EventSource does
// (Accept: text/event-stream, hdr added), failing the test unless it is
// one; its waits are bounded by within. It is closed, and its reader
// ended, when the test ends.
func openSSE(t *testing.T, n *caddyNode, path string, hdr http.Header) *ssetest.Stream {
	t.Helper()
	s := ssetest.Open(t, http.DefaultClient, n.url+path, hdr)
	s.Within = within
	return s
}
