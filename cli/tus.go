package cli

import (
	"context"
	"net/http"
	"net/url"
)

// tus watches the module's view of a tus upload: the key is the upload
// URL (or its path). tus has no credential of its own; --api-key goes in
// x-user-api-key (the reference origin's), --header sets another.
type tus struct{ target }

func newTus(t target) adapter { return tus{t} }

func (s tus) query() url.Values { return url.Values{"upload": {s.key}} }

func (s tus) hdr() http.Header { return s.header("X-User-Api-Key", s.apiKey) }

func (s tus) status(ctx context.Context) (*http.Request, error) {
	return get(ctx, s.url(pathOr(s.statusPath, "/tus/progress"), s.query()), s.hdr())
}

func (s tus) socket() (string, http.Header) {
	return s.wsURL(pathOr(s.wsPath, "/tus/progress/ws"), s.query()), s.hdr()
}

func (s tus) decode(code int, body []byte) (Update, error) {
	var r struct {
		Length   int64  `json:"length"`
		Received int64  `json:"received"`
		Status   string `json:"status"`
		Error    string `json:"error"`
	}
	if !unmarshal(body, &r) || r.Status == "" && r.Error == "" {
		return Update{}, unexpected("tus", code, body)
	}
	switch {
	case code == http.StatusNotFound && r.Status == "not_exist":
		return Update{Uploaded: 0, Total: -1, Status: StatusWaiting}, nil
	case code == http.StatusBadRequest || code == http.StatusUnauthorized:
		return Update{}, refused(code, r.Error)
	case code != http.StatusOK:
		return Update{}, unexpected("tus", code, body)
	}
	u := Update{Uploaded: r.Received, Total: r.Length, Status: StatusUploading, Reason: r.Error}
	switch r.Status {
	case "paused":
		u.Status = StatusPaused
	case "completed":
		u.Status = StatusCompleted
	case "terminated", "expired", "failed":
		u.Status = StatusFailed
		if u.Reason == "" {
			u.Reason = "the upload was " + r.Status
		}
	}
	return u, nil
}
