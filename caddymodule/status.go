package caddymodule

import (
	"net/http"
	"strconv"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// serveStatus answers a REST status request with the upload's state, in
// the protocol's shape.
func (h *Handler) serveStatus(w http.ResponseWriter, r *http.Request, p *protocol) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !(p.postStatus && r.Method == http.MethodPost) {
		return h.refuse(w, r, p, "rest", &progress.Failure{Kind: progress.MethodNotAllowed, Message: "method not allowed: use " + p.allowedMethods()})
	}
	owner, q, f := h.parseStatusRequest(r, p)
	if f != nil {
		return h.refuse(w, r, p, "rest", f)
	}
	return h.reply(w, r, p, "rest", http.StatusOK, p.render(h.lookup(r, owner, q.Key)))
}

// parseStatusRequest finds who asks, and about what.
func (h *Handler) parseStatusRequest(r *http.Request, p *protocol) (progress.Owner, progress.StatusQuery, *progress.Failure) {
	if p.prepare != nil {
		if f := p.prepare(r); f != nil {
			return progress.Owner{}, progress.StatusQuery{}, f
		}
	}
	owner, f := h.requestOwner(r, p)
	if f != nil {
		return owner, progress.StatusQuery{}, f
	}
	q, f := p.query(r)
	return owner, q, f
}

// lookup returns what owner can see under key, asking the origin about
// keys the tracker does not know when an exists probe is configured.
func (h *Handler) lookup(r *http.Request, owner progress.Owner, key string) progress.Snapshot {
	snap := h.tracker().Lookup(owner, key)
	if !snap.Found && h.ExistsProbe != nil {
		snap = h.ExistsProbe.lookup(r, owner, key)
	}
	return snap
}

// requestOwner returns the owner a status request speaks for.
func (h *Handler) requestOwner(r *http.Request, p *protocol) (progress.Owner, *progress.Failure) {
	if p.ownerless {
		return progress.Anyone, nil
	}
	cred := p.credentialOf(r)
	if cred == "" {
		return progress.Owner{}, &progress.Failure{Kind: progress.NoCredential, Message: "missing " + p.credentialLabel}
	}
	return h.tracker().Owner(cred), nil
}

// refuse answers a status request that cannot be served, the protocol's way.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, p *protocol, transport string, f *progress.Failure) error {
	code, body := p.fail(f)
	if f.Kind == progress.MethodNotAllowed {
		w.Header().Set("Allow", p.allowedMethods())
	}
	return h.reply(w, r, p, transport, code, body)
}

// allowedMethods lists the methods p's REST status endpoint answers.
func (p *protocol) allowedMethods() string {
	if p.postStatus {
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
		p.headers(hdr)
	}
	hdr.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	// A client that left before reading its reply is no error of ours.
	_, _ = w.Write(b)
	return nil
}
