// Package sandbox tracks the resumable, multi-part upload sessions of a
// sandbox API (seed 002): a session is created, its parts are PUT (in
// parallel, perhaps again), then it is completed or aborted. The origin
// knows only the parts it has accepted, so its accepted_bytes jumps a part
// at a time; the proxy sees every part go by and lays the live view over
// the origin's own status answer:
//
//	GET {prefix}/sandboxes/{id}/uploads/{upload_id}
//	{…the origin's session object…, "status":"uploading", "received_bytes":…, "parts_in_flight":[{"part_number":3,"received":…,"size":…}]}
//
// and streams the same object over WebSocket at …/{upload_id}/ws.
package sandbox

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
	"github.com/caddy-upload-progress/caddy-upload-progress/protocol"
)

func init() {
	caddy.RegisterModule(Sandbox{})
}

// Sandbox is the sandbox API's resumable upload sessions. Sessions are
// bound to the Authorization header's bearer token. The status route's
// answers get the live view laid over them; the WebSocket endpoint lies
// under each session's URL, at `…/uploads/{upload_id}/ws`.
type Sandbox struct {
	protocol.Config

	// prefix (default `/v1`), origin (the origin is asked how a watched
	// session stands: completing to completed, expiry), session_timeout.
	protocol.SessionOptions
}

// CaddyModule returns the Caddy module information.
func (Sandbox) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  protocol.Namespace + ".sandbox",
		New: func() caddy.Module { return new(Sandbox) },
	}
}

// Provision sets the defaults.
func (s *Sandbox) Provision(caddy.Context) error {
	// The WebSocket endpoint lies under each session's URL (Watches); the
	// status route is the origin's, overlaid. Neither is a fixed path.
	s.SetDefaults("")
	return s.ProvisionSessions("/v1", "/sandboxes/…")
}

// Validate checks the options.
func (s *Sandbox) Validate() error {
	if err := s.ValidateSessions(); err != nil {
		return err
	}
	if s.StatusPath != "" || len(s.WebSocketPaths) > 0 {
		return fmt.Errorf("status_path and websocket_path do not apply: the status route is the origin's ({prefix}/sandboxes/{id}/uploads/{upload_id}, overlaid) and the WebSocket lies under it (…/ws)")
	}
	return nil
}

// Cleanup lets go of the origin's idle connections.
func (s *Sandbox) Cleanup() error {
	s.CleanupSessions()
	return nil
}

// route is what a request of the sandbox API is.
type route struct {
	kind     routeKind
	sandbox  string
	uploadID string
	part     int
}

type routeKind uint8

const (
	routeNone routeKind = iota
	routeCreate
	routeStatus
	routeAbort
	routePart
	routeComplete
	routeWatch
)

// routeOf reads a request's route:
//
//	POST   {prefix}/sandboxes/{id}/uploads
//	GET    {prefix}/sandboxes/{id}/uploads/{upload_id}
//	DELETE {prefix}/sandboxes/{id}/uploads/{upload_id}
//	PUT    {prefix}/sandboxes/{id}/uploads/{upload_id}/parts/{n}
//	POST   {prefix}/sandboxes/{id}/uploads/{upload_id}/complete
//	GET    {prefix}/sandboxes/{id}/uploads/{upload_id}/ws
func (s *Sandbox) routeOf(r *http.Request) route {
	rest, ok := strings.CutPrefix(r.URL.Path, s.Prefix+"/sandboxes/")
	if !ok {
		return route{}
	}
	seg := strings.Split(rest, "/")
	if len(seg) < 2 || seg[0] == "" || seg[1] != "uploads" {
		return route{}
	}
	rt := route{sandbox: seg[0]}
	if len(seg) == 2 {
		if r.Method == http.MethodPost {
			rt.kind = routeCreate
		}
		return rt
	}
	if rt.uploadID = seg[2]; rt.uploadID == "" {
		return route{}
	}
	switch {
	case len(seg) == 3 && r.Method == http.MethodGet:
		rt.kind = routeStatus
	case len(seg) == 3 && r.Method == http.MethodDelete:
		rt.kind = routeAbort
	case len(seg) == 5 && seg[3] == "parts" && r.Method == http.MethodPut:
		n, err := strconv.Atoi(seg[4])
		if err != nil || n < 1 || strings.TrimLeft(seg[4], "0123456789") != "" {
			return route{}
		}
		rt.kind, rt.part = routePart, n
	case len(seg) == 4 && seg[3] == "complete" && r.Method == http.MethodPost:
		rt.kind = routeComplete
	case len(seg) == 4 && seg[3] == "ws":
		rt.kind = routeWatch
	}
	return rt
}

// key is a session's key: its path without the prefix.
func key(sandbox, uploadID string) string {
	return "/sandboxes/" + sandbox + "/uploads/" + uploadID
}

// Tracks implements protocol.Protocol: the requests of the upload flow.
func (s *Sandbox) Tracks(r *http.Request) bool {
	k := s.routeOf(r).kind
	return k != routeNone && k != routeWatch
}

// Key implements protocol.Protocol.
func (s *Sandbox) Key(r *http.Request) string {
	rt := s.routeOf(r)
	if rt.uploadID == "" {
		return ""
	}
	return key(rt.sandbox, rt.uploadID)
}

// Watches implements protocol.WatchRouter.
func (s *Sandbox) Watches(r *http.Request) bool { return s.routeOf(r).kind == routeWatch }

// Credential implements protocol.Owned: the Authorization header.
func (*Sandbox) Credential(r *http.Request) string { return r.Header.Get("Authorization") }

// CredentialName implements protocol.Owned.
func (*Sandbox) CredentialName() string { return "Authorization bearer token" }

// ParseStatus implements protocol.Protocol: the session of a WebSocket
// request's path.
func (s *Sandbox) ParseStatus(r *http.Request) (progress.StatusQuery, *progress.Failure) {
	rt := s.routeOf(r)
	if rt.kind != routeWatch {
		return progress.StatusQuery{}, progress.BadRequestf("not an upload session's WebSocket path")
	}
	k := key(rt.sandbox, rt.uploadID)
	if err := progress.CheckKey(k); err != nil {
		return progress.StatusQuery{}, progress.BadRequestf("upload session path: %v", err)
	}
	return progress.StatusQuery{Key: k, Step: 1}, nil
}

// Render implements protocol.Protocol: the origin's last session object
// with the live view laid over it.
func (*Sandbox) Render(snap progress.Snapshot) any { return Reply(snap) }

// StatusCode implements protocol.StatusCoder: a watcher of a session the
// proxy does not track under its credential is refused with 404.
func (*Sandbox) StatusCode(snap progress.Snapshot) int {
	if !snap.Found || snap.Session == nil {
		return http.StatusNotFound
	}
	return http.StatusOK
}

// Fail implements protocol.Protocol.
func (*Sandbox) Fail(f *progress.Failure) (int, any) { return FailureReply(f) }

// UnmarshalCaddyfile sets up the protocol from Caddyfile tokens:
//
//	protocol sandbox {
//		owner           <template> | off
//		prefix          <path>
//		origin          <base URL>
//		session_timeout <duration>
//	}
func (s *Sandbox) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return s.UnmarshalBlock(d, "sandbox", s.UnmarshalSessionOption)
}

// Interface guards
var (
	_ protocol.Protocol     = (*Sandbox)(nil)
	_ protocol.Owned        = (*Sandbox)(nil)
	_ protocol.Sessions     = (*Sandbox)(nil)
	_ protocol.StatusCoder  = (*Sandbox)(nil)
	_ protocol.WatchRouter  = (*Sandbox)(nil)
	_ protocol.Refresher    = (*Sandbox)(nil)
	_ caddy.Provisioner     = (*Sandbox)(nil)
	_ caddy.Validator       = (*Sandbox)(nil)
	_ caddy.CleanerUpper    = (*Sandbox)(nil)
	_ caddyfile.Unmarshaler = (*Sandbox)(nil)
)
