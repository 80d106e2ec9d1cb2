package caddymodule

import (
	"net/http"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// protocol is one progress API as the handler serves it: which requests
// are its tracked uploads, and where their key and owner come from.
type protocol struct {
	name string
	// tracks reports whether a request is an upload to track.
	tracks func(*http.Request) bool
	// key and owner are placeholder templates; defaults come from the
	// protocol, the handler's Key and Owner override them.
	key, owner string
	// credential names the owner credential in error messages.
	credential string
}

// protocols are the progress APIs the handler knows, by name.
var protocols = map[string]protocol{
	"shard": {
		name:       "shard",
		tracks:     progress.ShardTracks,
		key:        "{http.request.uri.query.path}",
		owner:      "{http.request.header." + progress.ShardAPIKeyHeader + "}",
		credential: progress.ShardAPIKeyHeader + " header",
	},
}
