// Package progresstest holds what the tests of protocol packages need of
// the core and of Caddy, written once.
package progresstest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
	"github.com/caddy-upload-progress/caddy-upload-progress/protocol"
)

// NewTracker returns a MemoryTracker that is closed when the test ends.
func NewTracker(t testing.TB, opts progress.Options) *progress.MemoryTracker {
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

// ZeroBody is a Body of rec that reads endless zero bytes.
func ZeroBody(rec *progress.Record) *progress.Body {
	return progress.NewBody(io.NopCloser(zeroReader{}), rec)
}

// ReadBytes reads n bytes through body.
func ReadBytes(t testing.TB, body *progress.Body, n int) {
	t.Helper()
	if _, err := io.CopyN(io.Discard, body, int64(n)); err != nil {
		t.Fatalf("reading %d bytes: %v", n, err)
	}
}

// Provision provisions a module as Caddy would, in a context of its own.
func Provision(m caddy.Provisioner) error {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	return m.Provision(ctx)
}

// Request makes a server request; header is name, value pairs.
func Request(method, target, body string, header ...string) *http.Request {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	return r
}

// StatusRequest makes a GET status request with raw as its query. The
// query is set after parsing the target, so that any string, even one
// that is no valid request line, reaches the parser under test.
func StatusRequest(path, raw string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.URL.RawQuery = raw
	return r
}

// Registered returns a new instance of the protocol module name, failing
// the test if Caddy does not know it.
func Registered(t testing.TB, name string) caddy.Module {
	t.Helper()
	mi, err := caddy.GetModule(protocol.Namespace + "." + name)
	if err != nil {
		t.Fatalf("the %s protocol is not registered: %v", name, err)
	}
	return mi.New()
}
