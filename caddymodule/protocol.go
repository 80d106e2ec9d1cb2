package caddymodule

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// ProtocolConfig enables one progress API and adjusts it.
type ProtocolConfig struct {
	// The API: `shard` (the storage-node API), `pcloud` (pCloud's
	// uploadprogress) or `nginx` (nginx's upload progress module).
	Name string `json:"name"`

	// The key uploads are tracked under, with placeholders. Default: the
	// handler's key, or else the protocol's own (shard: the `path` query
	// parameter; nginx: the X-Progress-ID query parameter or header).
	Key string `json:"key,omitempty"`

	// The credential records are bound to, with placeholders. Default: the
	// handler's owner, or else the protocol's own (shard: the
	// x-user-api-key header; nginx: none, ownership is off).
	Owner string `json:"owner,omitempty"`

	// Turns the owner check off for this protocol.
	DisableOwnerCheck bool `json:"disable_owner_check,omitempty"`

	// The path of the REST status endpoint. Default: the protocol's
	// (shard and nginx: `/progress`). Protocols may share a path: nginx
	// answers requests that name an X-Progress-ID, shard the others.
	StatusPath string `json:"status_path,omitempty"`

	// The paths of the WebSocket status endpoint. Default: the protocol's
	// (shard: `/ws/progress` and `/progress/ws`; pcloud:
	// `/uploadprogress/ws`; nginx: none).
	WebSocketPaths []string `json:"websocket_paths,omitempty"`

	// The path of the upload route, for protocols whose uploads go to one
	// (pcloud: `/uploadfile`).
	UploadPath string `json:"upload_path,omitempty"`
}

// protocolKind is what the handler knows of one progress API. Parsing and
// rendering live in package progress; this binds them to requests.
type protocolKind struct {
	name string
	// tracks reports whether a request is an upload to track.
	tracks func(p *protocol, r *http.Request) bool
	// uploadPath is the default upload route, for protocols that have one.
	uploadPath string
	// files is set for protocols whose replies describe the upload's files:
	// only their multipart bodies are scanned, as nobody reads the result
	// of the others'.
	files bool
	// fileName names the one file of a raw upload, when the protocol has a
	// parameter for it.
	fileName func(r *http.Request) string
	// key and credential extract the key and the owner's credential when
	// no template overrides them. A nil credential means ownerless by default.
	key        func(r *http.Request) string
	credential func(r *http.Request) string
	// credentialName names the credential in error messages.
	credentialName string
	statusPath     string
	webSocketPaths []string
	// claims reports whether a request at a shared status path is this
	// protocol's; nil claims every request at its paths.
	claims func(r *http.Request) bool
	// query parses a status request.
	query func(r *http.Request) (progress.StatusQuery, *progress.Failure)
	// render turns a snapshot into the reply body.
	render func(progress.Snapshot) any
	// fail renders a refused status request: HTTP status and body.
	fail func(*progress.Failure) (int, any)
	// encode writes a body; nil is plain JSON.
	encode func(r *http.Request, v any) ([]byte, string, error)
	// headers adds the protocol's own response headers, if any.
	headers func(http.Header)
	// originFiles, if set, reads the origin's description of the stored
	// files from the start of its answer; the record then ends once the
	// answer has been passed on, with that description.
	originFiles func(answer []byte) (json.RawMessage, bool)
	// prepare readies a status request before its credential and query
	// are read (pCloud reads POSTed form parameters).
	prepare func(r *http.Request) *progress.Failure
	// postStatus allows POST for REST status requests, besides GET and HEAD.
	postStatus bool
}

// protocolKinds are the progress APIs the handler knows, by name.
var protocolKinds = map[string]*protocolKind{
	"shard": {
		name:           "shard",
		tracks:         func(_ *protocol, r *http.Request) bool { return progress.ShardTracks(r) },
		key:            progress.ShardKey,
		credential:     func(r *http.Request) string { return r.Header.Get(progress.ShardAPIKeyHeader) },
		credentialName: progress.ShardAPIKeyHeader + " header",
		statusPath:     "/progress",
		webSocketPaths: []string{"/ws/progress", "/progress/ws"},
		query: func(r *http.Request) (progress.StatusQuery, *progress.Failure) {
			return progress.ParseShardQuery(r.URL.Query())
		},
		render: func(s progress.Snapshot) any { return progress.ShardStatusOf(s) },
		fail:   progress.ShardFailure,
	},
	"pcloud": {
		name:           "pcloud",
		tracks:         func(p *protocol, r *http.Request) bool { return progress.PcloudTracks(r, p.uploadPath) },
		uploadPath:     "/uploadfile",
		files:          true,
		fileName:       progress.PcloudFileName,
		key:            progress.PcloudKey,
		credential:     progress.PcloudCredential,
		credentialName: "auth or access_token",
		statusPath:     "/uploadprogress",
		webSocketPaths: []string{"/uploadprogress/ws"},
		prepare:        progress.PcloudPrepare,
		postStatus:     true,
		query:          progress.ParsePcloudQuery,
		render:         func(s progress.Snapshot) any { return progress.PcloudStatusOf(s) },
		fail:           progress.PcloudFailure,
		originFiles:    progress.PcloudOriginFiles,
	},
	"nginx": {
		name:       "nginx",
		tracks:     func(_ *protocol, r *http.Request) bool { return progress.NginxTracks(r) },
		key:        progress.NginxID,
		statusPath: "/progress",
		claims:     progress.NginxClaims,
		query:      progress.ParseNginxQuery,
		render:     func(s progress.Snapshot) any { return progress.NginxStatusOf(s) },
		fail:       progress.NginxFailure,
		encode: func(r *http.Request, v any) ([]byte, string, error) {
			cb, _ := progress.JSONPCallback(r.URL.Query())
			return progress.EncodeJSONP(cb, v)
		},
		headers: progress.NginxHeaders,
	},
}

// protocol is one enabled progress API with its configuration resolved.
type protocol struct {
	*protocolKind
	keyTemplate    string // "" uses kind.key
	ownerTemplate  string // "" uses kind.credential
	ownerless      bool
	statusPath     string
	webSocketPaths []string
	uploadPath     string
	// credentialLabel names the credential in error messages.
	credentialLabel string
	// shared is set when another protocol answers at one of p's paths;
	// only then does p leave requests it does not claim to the other.
	shared bool
	// metrics counts p's uploads in the handler's zone.
	metrics *uploadMetrics
}

// errNoKey is an upload whose key comes out empty.
var errNoKey = errors.New("key is empty")

// keyOf returns the key a request names.
func (p *protocol) keyOf(r *http.Request) (string, error) {
	if p.keyTemplate == "" {
		if k := p.key(r); k != "" {
			return k, nil
		}
		return "", errNoKey
	}
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	return repl.ReplaceOrErr(p.keyTemplate, true, true)
}

// credentialOf returns the owner's credential a request carries, "" if none.
func (p *protocol) credentialOf(r *http.Request) string {
	if p.ownerTemplate == "" {
		return p.credential(r)
	}
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	cred, _ := repl.ReplaceOrErr(p.ownerTemplate, true, true)
	return cred
}

// encodeBody renders v the protocol's way.
func (p *protocol) encodeBody(r *http.Request, v any) ([]byte, string, error) {
	if p.encode != nil {
		return p.encode(r, v)
	}
	b, err := json.Marshal(v)
	return append(b, '\n'), "application/json", err
}

// answers reports whether a request at path is a status request of p.
func (p *protocol) answers(r *http.Request, paths ...string) bool {
	for _, s := range paths {
		if r.URL.Path == s {
			return p.claims == nil || !p.shared || p.claims(r)
		}
	}
	return false
}
