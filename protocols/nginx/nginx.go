// Package nginx serves nginx's upload progress protocol: a drop-in for nginx's upload progress module and the
// JavaScript clients written for it. Uploads carry an X-Progress-ID header
// or query parameter; `GET /progress?X-Progress-ID=…` answers one of
//
//	{"state":"starting"}
//	{"state":"uploading","received":N,"size":M}
//	{"state":"done"}
//	{"state":"error","status":S}
//
// as JSONP when a callback parameter is given. Unlike nginx, a reused id
// never fails the upload, and a chunked upload reports size -1 with a true
// received count.
package nginx

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
	"github.com/caddy-upload-progress/caddy-upload-progress/protocol"
)

func init() {
	caddy.RegisterModule(Nginx{})
}

// Nginx is nginx's upload progress protocol. An upload is tracked when it
// carries an X-Progress-ID query parameter or header, under that id;
// records have no owner (nginx's have none). Status endpoint: `/progress`,
// answering the requests that name an X-Progress-ID, so that it can share
// the path with shard; no WebSocket.
type Nginx struct {
	protocol.Config
}

// CaddyModule returns the Caddy module information.
func (Nginx) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  protocol.Namespace + ".nginx",
		New: func() caddy.Module { return new(Nginx) },
	}
}

// Provision sets the defaults.
func (n *Nginx) Provision(caddy.Context) error {
	n.SetDefaults("/progress")
	return nil
}

// Tracks implements protocol.Protocol.
func (*Nginx) Tracks(r *http.Request) bool { return tracks(r) }

// Key implements protocol.Protocol.
func (*Nginx) Key(r *http.Request) string { return id(r) }

// Claims implements protocol.Claimer.
func (*Nginx) Claims(r *http.Request) bool { return claims(r) }

// ParseStatus implements protocol.Protocol.
func (*Nginx) ParseStatus(r *http.Request) (progress.StatusQuery, *progress.Failure) {
	return ParseQuery(r)
}

// Render implements protocol.Protocol.
func (*Nginx) Render(s progress.Snapshot) any { return StatusOf(s) }

// Fail implements protocol.Protocol.
func (*Nginx) Fail(f *progress.Failure) (int, any) { return FailureReply(f) }

// Encode implements protocol.Encoder: JSONP when a callback is given.
func (*Nginx) Encode(r *http.Request, v any) ([]byte, string, error) {
	cb, _ := JSONPCallback(r.URL.Query())
	return EncodeJSONP(cb, v)
}

// SetHeaders implements protocol.HeaderSetter.
func (*Nginx) SetHeaders(h http.Header) { setHeaders(h) }

// UnmarshalCaddyfile sets up the protocol from Caddyfile tokens:
//
//	protocol nginx {
//		key            <template>
//		owner          <template> | off
//		status_path    <path>
//		websocket_path <path...>
//	}
func (n *Nginx) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return n.UnmarshalBlock(d, "nginx", nil)
}

// Interface guards
var (
	_ protocol.Protocol     = (*Nginx)(nil)
	_ protocol.Claimer      = (*Nginx)(nil)
	_ protocol.Encoder      = (*Nginx)(nil)
	_ protocol.HeaderSetter = (*Nginx)(nil)
	_ caddy.Provisioner     = (*Nginx)(nil)
	_ caddyfile.Unmarshaler = (*Nginx)(nil)
)
