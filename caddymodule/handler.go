// Package caddymodule is the Caddy glue of caddy-upload-progress: the
// http.handlers.upload_progress module, its Caddyfile directive, metrics and
// logs. The logic lives in package progress and the progress APIs in their
// protocol modules; this package wires Caddy's requests, replacer and
// lifecycle to them.
package caddymodule

import (
	"encoding/json"
	"net/http"
	"time"

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
	// The progress APIs to serve, in order: the first that tracks an
	// upload gets it. Each is a module in the namespace
	// http.handlers.upload_progress.protocols, named by "name" (shard,
	// pcloud, nginx, tus, sandbox, dstor), and decides which requests are tracked uploads, what
	// their key and owner are by default, where its status endpoints are
	// and the shape of its replies. Default: `[{"name": "shard"}]`.
	ProtocolsRaw []json.RawMessage `json:"protocols,omitempty" caddy:"namespace=http.handlers.upload_progress.protocols inline_key=name"`

	// The tracker to use. Every handler naming the same zone, in any site
	// or route, shares one tracker, which survives config reloads.
	// Default: `default`.
	Zone string `json:"zone,omitempty"`

	// Where the zone's records are kept: a module in the namespace
	// http.handlers.upload_progress.stores, named by "name" (redis), shared
	// by the proxies that serve the zone together behind a load balancer.
	// Every handler naming the zone must name the same store with the
	// same settings. Default: the proxy's memory.
	StoreRaw json.RawMessage `json:"store,omitempty" caddy:"namespace=http.handlers.upload_progress.stores inline_key=name"`

	// How long a finished upload stays queryable. Default: 5m. When several
	// handlers share a zone, the last one loaded sets it.
	Retain caddy.Duration `json:"retain,omitempty"`

	// The most keys the zone holds at once: records plus watched keys.
	// When it is full, the finished records closest to the end of their
	// retention are forgotten first; uploads pass untracked (and new
	// watchers get 503) only when uploads in flight and watched keys alone
	// fill it. Default: 100000.
	MaxKeys int `json:"max_keys,omitempty"`

	// The most watchers (WebSocket and event stream) the zone holds at
	// once; past it a watcher is refused with 503 in its protocol's shape.
	// Default: 10000.
	MaxWatchers int `json:"max_watchers,omitempty"`

	// The most watchers (WebSocket and event stream) of one key (one
	// upload) the zone holds at once; past it a watcher of that key is
	// refused with 503 in its protocol's shape. Default: 1024.
	MaxWatchersPerKey int `json:"max_watchers_per_key,omitempty"`

	// The most memory, in bytes, that the file details of the zone's
	// finished uploads may hold in all: the names and content types of
	// their files and the origin's description of the stored files, kept
	// for retain. An upload that finishes past it keeps its counts (bytes,
	// number of files) but not the names, and is counted in
	// file_details_dropped_total. Default: 64 MiB.
	MaxFileDetails int64 `json:"max_file_details,omitempty"`

	// How long an upload may send nothing, while its body is incomplete,
	// before it is reported failed (stalled). An upload whose body is
	// complete waits for its origin as long as the proxy does. Default: 10m.
	IdleTimeout caddy.Duration `json:"idle_timeout,omitempty"`

	// The key uploads are tracked under, with placeholders, for every
	// protocol that does not set its own, except those whose uploads span
	// many requests (tus, sandbox, dstor), which name their sessions
	// themselves. An unknown placeholder is a
	// configuration error; an upload whose key comes out empty passes
	// untracked. Default: each protocol's own.
	Key string `json:"key,omitempty"`

	// The credential records are bound to, with placeholders, for every
	// protocol that does not set its own. A record is visible only to
	// requests that carry the same credential; only an HMAC of it is kept.
	// Default: each protocol's own.
	Owner string `json:"owner,omitempty"`

	// Turns the owner check off for every protocol: any client can see any
	// upload by its key.
	DisableOwnerCheck bool `json:"disable_owner_check,omitempty"`

	// Host patterns (as in path.Match) of cross-origin pages allowed to open
	// the WebSocket. Same-origin requests are always allowed. Default: none.
	OriginPatterns []string `json:"origin_patterns,omitempty"`

	// The path at which the handler serves its JavaScript client
	// (upload-progress.js, an ES module built into Caddy) to GET and HEAD,
	// as text/javascript with an ETag, cached for five minutes, so that a
	// page can `import { watchUpload } from '/upload-progress.js'` from the
	// server it watches. Must start with / and differ from every protocol's
	// endpoints. Default: none (not served).
	ClientPath string `json:"client_path,omitempty"`

	// How often, at most, a watcher (WebSocket or event stream) gets a
	// progress update: updates go out on ticks every update_interval
	// shared by all watchers (never two to one watcher within half an interval). The bytes that
	// arrive in between are coalesced into the next update, so a fast
	// upload costs its watchers a few messages a second, not one per step.
	// An end (completed, failed) is sent at once; the start of an upload
	// goes out on the next tick, with its first bytes. Negative: every
	// step and every change at once, however fast the upload.
	// Default: 250ms, four updates a second, smooth for a progress bar; each
	// update is a write on the proxy and a read on the watcher.
	UpdateInterval caddy.Duration `json:"update_interval,omitempty"`

	// The most progress updates a second that the watchers (WebSocket and
	// event stream) of one key get between them: a key with more watchers than this times
	// update_interval paces each of them further apart (at 250, up to 62
	// watchers get an update every 250ms, 1,000 get one every 4 s). Each
	// update is a write for the proxy and a wake-up for the watcher's
	// client, so this bounds what a much-watched upload costs the machine.
	// Negative: no bound. Default: 250.
	KeyUpdatesPerSecond int `json:"key_updates_per_second,omitempty"`

	// How often WebSocket watchers are pinged, and event streams get a
	// heartbeat comment, which keeps idle connections open through proxies
	// and finds watchers that are gone. Default: 30s.
	PingInterval caddy.Duration `json:"ping_interval,omitempty"`

	// How long a watcher may take to answer a ping (WebSocket) or to take
	// a message or heartbeat. A WebSocket watcher that does not answer a
	// ping in time is closed with
	// 1008 (policy violation); one whose connection is so full that a
	// message cannot be written in time is disconnected, as no close frame
	// could reach it either. Default: 10s.
	WatcherTimeout caddy.Duration `json:"watcher_timeout,omitempty"`

	// How long a watch token stays good: a page that holds only the
	// token (a browser can set no header on a WebSocket or an
	// EventSource) can watch and poll the one upload it names for this
	// long, from when the status request that asked for it (with the
	// credential and watch_token=1) was answered. Default: 10m.
	WatchTokenTTL caddy.Duration `json:"watch_token_ttl,omitempty"`

	zone *zone
	// protocols in configuration order: the first that tracks an upload
	// gets it. endpoints holds the same, those that claim requests by
	// their parameters first, so that protocols can share a status path.
	protocols []*protocol
	endpoints []*protocol
	logger    *zap.Logger
	// warnings says what an operator must act on, a line now and then.
	warnings *warnings
	// refreshes shares the origin's status requests of watched sessions.
	refreshes *refreshes
	// The WebSocket timings, defaults applied.
	pace                                        progress.Pace
	pingInterval, watcherTimeout, watchTokenTTL time.Duration
	// pinger keeps the watchers alive (WebSocket pings, event stream
	// heartbeats); frames shares their messages among the watchers of a
	// key.
	pinger *pinger
	frames *frameCache
	// feeds drive the watchers of each key (feed.go).
	feeds *feeds
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
	if h.ClientPath != "" && r.URL.Path == h.ClientPath {
		return h.serveClient(w, r)
	}
	for _, p := range h.endpoints {
		if p.statusPath != "" && p.answers(r, p.statusPath) {
			return h.serveStatus(w, r, p)
		}
		if p.answers(r, p.webSocketPaths...) || p.router != nil && p.router.Watches(r) {
			if acceptsEventStream(r) {
				return h.serveEvents(w, r, p)
			}
			return h.serveWatch(w, r, p)
		}
	}
	for _, p := range h.protocols {
		if p.Tracks(r) {
			if p.sessions != nil {
				return h.serveExchange(w, r, next, p)
			}
			return h.serveUpload(w, r, next, p)
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
