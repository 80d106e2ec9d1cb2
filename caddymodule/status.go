package caddymodule

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// statusProtocol is the protocol whose status endpoints the handler serves.
func (h *Handler) statusProtocol() *protocol { return &h.protocols[0] }

// serveStatus answers GET /progress?path=… with the upload's state.
func (h *Handler) serveStatus(w http.ResponseWriter, r *http.Request) error {
	p := h.statusProtocol()
	code, body := h.status(r, p)
	return h.reply(w, p, "rest", code, body)
}

// status works out the reply to a REST status request.
func (h *Handler) status(r *http.Request, p *protocol) (int, any) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return http.StatusMethodNotAllowed, progress.ShardError{Error: "method not allowed: use GET"}
	}
	owner, err := h.requestOwner(r, p)
	if err != nil {
		return http.StatusUnauthorized, progress.ShardError{Error: err.Error()}
	}
	q, err := progress.ParseShardQuery(r.URL.Query())
	if err != nil {
		return http.StatusBadRequest, progress.ShardError{Error: err.Error()}
	}
	return http.StatusOK, progress.ShardStatusOf(h.lookup(r, owner, q.Path))
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
func (h *Handler) requestOwner(r *http.Request, p *protocol) (progress.Owner, error) {
	if h.DisableOwnerCheck {
		return progress.Anyone, nil
	}
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	cred, err := repl.ReplaceOrErr(p.owner, true, true)
	if err != nil || cred == "" {
		return progress.Owner{}, errors.New("missing " + p.credential)
	}
	return h.tracker().Owner(cred), nil
}

// reply writes a JSON status reply and counts it.
func (h *Handler) reply(w http.ResponseWriter, p *protocol, transport string, code int, body any) error {
	statusRequests.WithLabelValues(h.Zone, p.name, transport, strconv.Itoa(code)).Inc()
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "no-store")
	if code == http.StatusMethodNotAllowed {
		hdr.Set("Allow", "GET, HEAD")
	}
	hdr.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	// A client that left before reading its reply is no error of ours.
	_, _ = w.Write(append(b, '\n'))
	return nil
}
