// Package protocoltest passes a session protocol's requests through the
// real upload_progress handler, as Caddy would, in front of an origin the
// test scripts, and watches its sessions over WebSocket: the harness the
// exchange tests of the tus, sandbox and dstor packages share. What each
// protocol sends and answers stays in its own tests.
package protocoltest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-upload-progress/caddy-upload-progress/caddymodule"
	"github.com/caddy-upload-progress/caddy-upload-progress/internal/progresstest"
)

var zoneSeq atomic.Int64

// Proxy is the upload_progress handler with one protocol, in a zone of
// its own: what a client sends passes through it, as in Caddy, to the
// next handler the test gives.
type Proxy struct {
	T *testing.T
	H *caddymodule.Handler
}

// New provisions a handler with the protocol object proto (JSON), tuned
// by tune before it is provisioned; it is cleaned up when the test ends.
func New(t *testing.T, proto string, tune ...func(*caddymodule.Handler)) *Proxy {
	t.Helper()
	h := &caddymodule.Handler{
		Zone:         fmt.Sprintf("protocoltest-%s-%d", t.Name(), zoneSeq.Add(1)),
		ProtocolsRaw: []json.RawMessage{json.RawMessage(proto)},
	}
	for _, f := range tune {
		f(h)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := h.Provision(ctx); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Cleanup(); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	})
	return &Proxy{T: t, H: h}
}

// Request is a client's request as Caddy hands it to handlers, with its
// replacer; header is name, value pairs, a later value of a name
// replacing an earlier one.
func Request(method, target, body string, header ...string) *http.Request {
	r := progresstest.Request(method, target, body)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	caddyhttp.NewTestReplacer(r)
	return r
}
