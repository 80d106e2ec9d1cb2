// Package tus tracks tus 1.0 uploads (what tusd, Uppy and tus-js-client
// speak) as they pass to a tus server, and serves their progress. A tus
// upload is a session: a creation POST, then PATCHes, resumed after HEADs
// when a connection drops, perhaps terminated by a DELETE. Its record is
// keyed by the upload URL's path and learns only from the requests and
// answers that pass through the proxy: the proxy never asks the tus server
// anything of its own (tusd answers a HEAD by interrupting the PATCH that
// holds the upload's lock). tus has no progress API, so the reply is ours:
//
//	{"upload":"/files/24e533e0","length":52428800,"offset":10485760,"received":12582912,"status":"uploading","metadata":{"filename":"video.mp4"},"expires_at":"2026-12-07T10:00:00Z","error":""}
package tus

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
	"github.com/caddy-upload-progress/caddy-upload-progress/protocol"
)

func init() {
	caddy.RegisterModule(Tus{})
}

// Tus is the tus 1.0 resumable upload protocol: creation (with upload and
// deferred length), PATCHes, termination, concatenation, expiration and
// checksum answers. Uploads are ownerless by default, as a tus upload URL
// is an unguessable capability; owner binds them to a credential. Status
// endpoints: `/tus/progress?upload=<upload URL or its path>` (REST) and
// `/tus/progress/ws?upload=…` (WebSocket).
type Tus struct {
	protocol.Config

	// The path of the tus endpoint: creations are POSTed to it, and upload
	// URLs lie under it. Default: `/files/`.
	UploadPath string `json:"upload_path,omitempty"`

	// How long an unfinished upload may see no request before the proxy
	// reports it expired and, after the handler's retain, forgets it. An
	// upload for which the tus server sent Upload-Expires expires then.
	// Default: 24h.
	SessionTimeout caddy.Duration `json:"session_timeout,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Tus) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  protocol.Namespace + ".tus",
		New: func() caddy.Module { return new(Tus) },
	}
}

// Provision sets the defaults.
func (t *Tus) Provision(caddy.Context) error {
	t.SetDefaults("/tus/progress", "/tus/progress/ws")
	if t.UploadPath == "" {
		t.UploadPath = "/files/"
	}
	if t.SessionTimeout == 0 {
		t.SessionTimeout = caddy.Duration(progress.DefaultSessionIdle)
	}
	return nil
}

// Validate checks the options.
func (t *Tus) Validate() error {
	if !strings.HasPrefix(t.UploadPath, "/") {
		return fmt.Errorf("upload_path %q must start with /", t.UploadPath)
	}
	if t.SessionTimeout < 0 {
		return fmt.Errorf("session_timeout must not be negative")
	}
	return nil
}

// Tracks implements protocol.Protocol: the creations, PATCHes, HEADs and
// DELETEs of the tus endpoint.
func (t *Tus) Tracks(r *http.Request) bool {
	_, ok := t.route(r)
	return ok
}

// Key implements protocol.Protocol: the upload URL's path.
func (t *Tus) Key(r *http.Request) string {
	if m, ok := t.route(r); ok && m != http.MethodPost {
		return r.URL.Path
	}
	return ""
}

// Exchange implements protocol.Sessions.
func (t *Tus) Exchange(r *http.Request) (*protocol.Exchange, bool) {
	m, ok := t.route(r)
	if !ok {
		return nil, false
	}
	idle := time.Duration(t.SessionTimeout)
	switch m {
	case http.MethodPost:
		return creation(r, idle), true
	case http.MethodPatch:
		return patch(r, idle), true
	case http.MethodHead:
		return head(r, idle), true
	default:
		return termination(r), true
	}
}

// route returns the tus method of a request of the endpoint (a client may
// send it in X-HTTP-Method-Override), and whether it is one to follow.
func (t *Tus) route(r *http.Request) (string, bool) {
	m := r.Method
	if o := r.Header.Get("X-HTTP-Method-Override"); o != "" && r.Method == http.MethodPost {
		m = o
	}
	base := strings.TrimSuffix(t.UploadPath, "/")
	switch m {
	case http.MethodPost:
		return m, r.URL.Path == base || r.URL.Path == base+"/"
	case http.MethodPatch, http.MethodHead, http.MethodDelete:
		return m, len(r.URL.Path) > len(base)+1 && strings.HasPrefix(r.URL.Path, base+"/")
	}
	return m, false
}

// ParseStatus implements protocol.Protocol.
func (*Tus) ParseStatus(r *http.Request) (progress.StatusQuery, *progress.Failure) {
	return ParseQuery(r)
}

// Render implements protocol.Protocol.
func (*Tus) Render(s progress.Snapshot) any { return StatusOf(s) }

// StatusCode implements protocol.StatusCoder: 404 for an unknown upload.
func (*Tus) StatusCode(s progress.Snapshot) int {
	if !s.Found {
		return http.StatusNotFound
	}
	return http.StatusOK
}

// Fail implements protocol.Protocol.
func (*Tus) Fail(f *progress.Failure) (int, any) { return FailureReply(f) }

// UnmarshalCaddyfile sets up the protocol from Caddyfile tokens:
//
//	protocol tus {
//		owner           <template> | off
//		status_path     <path>
//		websocket_path  <path...>
//		upload_path     <path>
//		session_timeout <duration>
//	}
func (t *Tus) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return t.UnmarshalBlock(d, "tus", func(d *caddyfile.Dispenser) (bool, error) {
		switch d.Val() {
		case "upload_path":
			return true, protocol.OneArg(d, &t.UploadPath)
		case "session_timeout":
			return true, protocol.DurationArg(d, &t.SessionTimeout)
		}
		return false, nil
	})
}

// Interface guards
var (
	_ protocol.Protocol     = (*Tus)(nil)
	_ protocol.Sessions     = (*Tus)(nil)
	_ protocol.StatusCoder  = (*Tus)(nil)
	_ caddy.Provisioner     = (*Tus)(nil)
	_ caddy.Validator       = (*Tus)(nil)
	_ caddyfile.Unmarshaler = (*Tus)(nil)
)
