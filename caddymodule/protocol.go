package caddymodule

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
	protocolapi "github.com/caddy-upload-progress/caddy-upload-progress/protocol"
)

// protocol is one loaded protocol module with the handler's settings
// applied and its optional capabilities found, once, at provisioning.
type protocol struct {
	protocolapi.Protocol
	name           string
	keyTemplate    string // "" uses the protocol's Key
	ownerTemplate  string // "" uses the protocol's Credential
	ownerless      bool
	statusPath     string
	webSocketPaths []string
	// credentialLabel names the credential in error messages.
	credentialLabel string
	// shared is set when another protocol answers at one of p's paths;
	// only then does p leave requests it does not claim to the other.
	shared bool
	// metrics counts p's uploads in the handler's zone.
	metrics *uploadMetrics

	// The optional capabilities, nil where the protocol has none.
	owned   protocolapi.Owned
	claimer protocolapi.Claimer
	files   protocolapi.FileReporter
	answer  protocolapi.AnswerReader
	form    protocolapi.FormStatus
	encoder protocolapi.Encoder
	headers protocolapi.HeaderSetter
	prober  protocolapi.Prober
	// sessions is set for a protocol whose uploads span many requests.
	sessions  protocolapi.Sessions
	coder     protocolapi.StatusCoder
	router    protocolapi.WatchRouter
	refresher protocolapi.Refresher
}

// bind makes a protocol of a loaded module.
func bind(name string, mod protocolapi.Protocol) *protocol {
	p := &protocol{Protocol: mod, name: name}
	p.owned, _ = mod.(protocolapi.Owned)
	p.claimer, _ = mod.(protocolapi.Claimer)
	p.files, _ = mod.(protocolapi.FileReporter)
	p.answer, _ = mod.(protocolapi.AnswerReader)
	p.form, _ = mod.(protocolapi.FormStatus)
	p.encoder, _ = mod.(protocolapi.Encoder)
	p.headers, _ = mod.(protocolapi.HeaderSetter)
	p.prober, _ = mod.(protocolapi.Prober)
	p.sessions, _ = mod.(protocolapi.Sessions)
	p.coder, _ = mod.(protocolapi.StatusCoder)
	p.router, _ = mod.(protocolapi.WatchRouter)
	p.refresher, _ = mod.(protocolapi.Refresher)
	return p
}

// errNoKey is an upload whose key comes out empty.
var errNoKey = errors.New("key is empty")

// keyOf returns the key a request names.
func (p *protocol) keyOf(r *http.Request) (string, error) {
	if p.keyTemplate == "" {
		if k := p.Key(r); k != "" {
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
		return p.owned.Credential(r)
	}
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	cred, _ := repl.ReplaceOrErr(p.ownerTemplate, true, true)
	return cred
}

// ownerOf returns the owner a request speaks for, uploads and status
// requests alike.
func (p *protocol) ownerOf(r *http.Request, t progress.Tracker) (progress.Owner, *progress.Failure) {
	if p.ownerless {
		return progress.Anyone, nil
	}
	cred := p.credentialOf(r)
	if cred == "" {
		return progress.Owner{}, &progress.Failure{Kind: progress.NoCredential, Message: "missing " + p.credentialLabel}
	}
	return t.Owner(cred), nil
}

// encodeBody renders v the protocol's way.
func (p *protocol) encodeBody(r *http.Request, v any) ([]byte, string, error) {
	if p.encoder != nil {
		return p.encoder.Encode(r, v)
	}
	b, err := json.Marshal(v)
	return append(b, '\n'), "application/json", err
}

// answers reports whether a request at path is a status request of p.
func (p *protocol) answers(r *http.Request, paths ...string) bool {
	for _, s := range paths {
		if r.URL.Path == s {
			return p.claimer == nil || !p.shared || p.claimer.Claims(r)
		}
	}
	return false
}
