package caddymodule

import (
	"net/http"
	"strconv"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// Transports of status requests, as counted in status_requests_total.
const (
	transportREST      = "rest"
	transportWebSocket = "websocket"
	transportSSE       = "sse"
)

// serveStatus answers a REST status request with the upload's state, in
// the protocol's shape.
func (h *Handler) serveStatus(w http.ResponseWriter, r *http.Request, p *protocol) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !(p.form != nil && r.Method == http.MethodPost) {
		return h.refuseMethod(w, r, p, transportREST, p.restMethods())
	}
	sr, f := h.parseStatusRequest(r, p)
	if f != nil {
		return h.refuse(w, r, p, transportREST, f)
	}
	snap := h.lookup(r, p, sr.owner, sr.q.Key)
	if snap.Unavailable {
		return h.refuse(w, r, p, transportREST, storeUnavailable)
	}
	code, body := p.statusCode(snap), p.Render(snap)
	if sr.wantsToken && code == http.StatusOK {
		body = withWatchToken(body, h.issueWatchToken(p, sr.owner, sr.q.Key))
	}
	return h.reply(w, r, p, transportREST, code, body)
}

// statusCode is the HTTP status of a status reply showing snap: 200, or
// the protocol's own.
func (p *protocol) statusCode(snap progress.Snapshot) int {
	if snap.Unavailable {
		code, _ := p.Fail(storeUnavailable)
		return code
	}
	if p.coder != nil {
		return p.coder.StatusCode(snap)
	}
	return http.StatusOK
}

// statusAsked is a status request, read: who asks, about what, and how.
type statusAsked struct {
	owner progress.Owner
	q     progress.StatusQuery
	// byToken: the request carries a watch token in place of the
	// credential. It may watch, but not speak to the origin for the owner.
	byToken bool
	// wantsToken: the request carries the credential and asks for a watch
	// token (watch_token=1).
	wantsToken bool
}

// parseStatusRequest finds who asks, and about what: the owner of the
// credential, or of the watch token that stands in for it.
func (h *Handler) parseStatusRequest(r *http.Request, p *protocol) (statusAsked, *progress.Failure) {
	var sr statusAsked
	if p.form != nil {
		if f := p.form.PrepareStatus(r); f != nil {
			return sr, f
		}
	}
	token, f := watchTokenOf(r, p)
	if f != nil {
		return sr, f
	}
	if token != "" && token != "1" {
		// The token is bound to the key, which the query names.
		if sr.q, f = p.ParseStatus(r); f != nil {
			return sr, f
		}
		sr.owner, f = h.acceptWatchToken(p, sr.q.Key, token)
		sr.byToken = true
		return sr, f
	}
	if sr.owner, f = p.ownerOf(r, h.tracker()); f != nil {
		return sr, f
	}
	sr.wantsToken = token == "1"
	sr.q, f = p.ParseStatus(r)
	return sr, f
}

// watchTokenOf returns the watch_token query parameter of a request to an
// owned protocol: "1" asks for a token, anything else is one. An ownerless
// protocol needs none and ignores it.
func watchTokenOf(r *http.Request, p *protocol) (string, *progress.Failure) {
	if p.ownerless || r.URL.RawQuery == "" {
		return "", nil
	}
	return progress.Single(r.URL.Query(), watchTokenParam)
}

// Render is the protocol's reply showing snap, except for a snapshot that
// only an unreachable shared store could complete: that is the protocol's
// failure saying so, on every transport (a watcher stays connected and
// hears the store come back), never a wrong "does not exist".
func (p *protocol) Render(snap progress.Snapshot) any {
	if snap.Unavailable {
		_, body := p.Fail(storeUnavailable)
		return body
	}
	return p.Protocol.Render(snap)
}

// storeUnavailable answers a status request that only the zone's shared
// store could answer while it cannot be reached: whether the upload
// exists is unknown, so it must not be said not to.
var storeUnavailable = &progress.Failure{Kind: progress.Unavailable, Message: progress.ErrStoreUnavailable.Error()}

// lookup returns what owner can see under key, asking the origin about
// keys the tracker does not know where the protocol can.
func (h *Handler) lookup(r *http.Request, p *protocol, owner progress.Owner, key string) progress.Snapshot {
	snap := h.tracker().Lookup(owner, key)
	if !snap.Found && !snap.Unavailable {
		snap = probe(r, p, owner, key, snap)
	}
	return named(snap, key)
}

// named gives a snapshot that shows nothing the key that was asked about,
// for replies that name it.
func named(snap progress.Snapshot, key string) progress.Snapshot {
	if !snap.Found {
		snap.Key = key
	}
	return snap
}

// probe asks the origin about key, where the protocol can; else it
// returns snap.
func probe(r *http.Request, p *protocol, owner progress.Owner, key string, snap progress.Snapshot) progress.Snapshot {
	if p.prober != nil {
		if s, ok := p.prober.Probe(r, owner, key); ok {
			return s
		}
	}
	return snap
}

// refuse answers a status request that cannot be served, the protocol's way.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, p *protocol, transport string, f *progress.Failure) error {
	code, body := p.Fail(f)
	return h.reply(w, r, p, transport, code, body)
}

// refuseMethod answers a status request with a method the endpoint does
// not answer, naming those it does.
func (h *Handler) refuseMethod(w http.ResponseWriter, r *http.Request, p *protocol, transport, allowed string) error {
	w.Header().Set("Allow", allowed)
	return h.refuse(w, r, p, transport, &progress.Failure{Kind: progress.MethodNotAllowed, Message: "method not allowed: use " + allowed})
}

// restMethods lists the methods p's REST status endpoint answers.
func (p *protocol) restMethods() string {
	if p.form != nil {
		return "GET, HEAD, POST"
	}
	return "GET, HEAD"
}

// reply writes a status reply and counts it.
func (h *Handler) reply(w http.ResponseWriter, r *http.Request, p *protocol, transport string, code int, body any) error {
	statusRequests.WithLabelValues(h.Zone, p.name, transport, strconv.Itoa(code)).Inc()
	b, contentType, err := p.encodeBody(r, body)
	if err != nil {
		return err
	}
	hdr := w.Header()
	hdr.Set("Content-Type", contentType)
	hdr.Set("Cache-Control", "no-store")
	if p.headers != nil {
		p.headers.SetHeaders(hdr)
	}
	hdr.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	// A client that left before reading its reply is no error of ours.
	_, _ = w.Write(b)
	return nil
}
