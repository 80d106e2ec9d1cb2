// Package caddymodule is the Caddy glue of caddy-upload-progress: the
// http.handlers.upload_progress module, its Caddyfile directive, metrics and
// logs. The logic lives in package progress; this package wires Caddy's
// requests, replacer and lifecycle to it.
package caddymodule

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler tracks the progress of uploads that stream through it to the
// next handler (usually reverse_proxy) and serves their progress to
// clients over REST and WebSocket, in the shape of the configured protocols.
//
// Uploads are never buffered, altered or failed by tracking: when a record
// cannot be kept (a limit, a missing key) the upload passes untracked.
type Handler struct {
	// The progress APIs to serve. Each decides which requests are tracked
	// uploads, what their key and owner are by default, and the shape of
	// status replies. Known: `shard` (the storage-node API: uploads with
	// `informProgress=true`, keyed by the `path` query parameter). Default: `["shard"]`.
	Protocols []string `json:"protocols,omitempty"`

	// The tracker to use. Every handler naming the same zone, in any site
	// or route, shares one tracker, which survives config reloads.
	// Default: `default`.
	Zone string `json:"zone,omitempty"`

	// How long a finished upload stays queryable. Default: 5m. When several
	// handlers share a zone, the last one loaded sets it.
	Retain caddy.Duration `json:"retain,omitempty"`

	// The most keys the zone tracks at once; past it, uploads pass
	// untracked. Default: 100000.
	MaxKeys int `json:"max_keys,omitempty"`

	// The key an upload is tracked under, with placeholders. Default: the
	// protocol's (for shard: `{http.request.uri.query.path}`). An unknown
	// placeholder is a configuration error; an upload whose key comes out
	// empty passes untracked.
	Key string `json:"key,omitempty"`

	// The credential uploads and status requests are bound to, with
	// placeholders. Default: the protocol's (for shard:
	// `{http.request.header.x-user-api-key}`). A record is visible only to
	// requests that carry the same credential; only an HMAC of it is kept.
	Owner string `json:"owner,omitempty"`

	// Turns the owner check off: any client can see any upload by its key.
	DisableOwnerCheck bool `json:"disable_owner_check,omitempty"`

	// The path of the REST status endpoint. Default: `/progress`.
	StatusPath string `json:"status_path,omitempty"`

	// The paths of the WebSocket status endpoint. Default:
	// `["/ws/progress", "/progress/ws"]`.
	WebSocketPaths []string `json:"websocket_paths,omitempty"`

	// Host patterns (as in path.Match) of cross-origin pages allowed to open
	// the WebSocket. Same-origin requests are always allowed. Default: none.
	OriginPatterns []string `json:"origin_patterns,omitempty"`

	// Asks the origin about keys the tracker does not know, so that a file
	// uploaded before (or past the retention) reports completed.
	ExistsProbe *ExistsProbe `json:"exists_probe,omitempty"`

	zone      *zone
	protocols []protocol
	logger    *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.upload_progress",
		New: func() caddy.Module { return new(Handler) },
	}
}

// ServeHTTP serves status requests itself, tracks the uploads that ask for
// it, and passes everything else on untouched.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if r.URL.Path == h.StatusPath {
		return h.serveStatus(w, r)
	}
	for _, p := range h.WebSocketPaths {
		if r.URL.Path == p {
			return h.serveWatch(w, r)
		}
	}
	for i := range h.protocols {
		if h.protocols[i].tracks(r) {
			return h.serveUpload(w, r, next, &h.protocols[i])
		}
	}
	return next.ServeHTTP(w, r)
}

// tracker is the zone's tracker.
func (h *Handler) tracker() progress.Tracker { return h.zone.tracker }

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
