package cli

import (
	"context"
	"net/http"
	"net/url"
	"strings"
)

// sandbox watches a sandbox's upload session: the key is the session's
// URL or path (…/sandboxes/{id}/uploads/{upload_id}), the credential its
// bearer token.
type sandbox struct{ target }

func newSandbox(t target) adapter { return sandbox{t} }

// path is the session's path, from a URL or a path.
func (s sandbox) path() string {
	if u, err := url.Parse(s.key); err == nil && u.Path != "" {
		return strings.TrimSuffix(u.Path, "/")
	}
	return s.key
}

func (s sandbox) hdr() http.Header {
	auth := s.apiKey
	if auth != "" && !strings.HasPrefix(strings.ToLower(auth), "bearer ") {
		auth = "Bearer " + auth
	}
	return s.header("Authorization", auth)
}

func (s sandbox) status(ctx context.Context) (*http.Request, error) {
	return get(ctx, s.url(pathOr(s.statusPath, s.path()), nil), s.hdr())
}

func (s sandbox) socket() (string, http.Header) {
	return s.wsURL(pathOr(s.wsPath, s.path()+"/ws"), nil), s.hdr()
}

func (s sandbox) decode(code int, body []byte) (Update, error) {
	var r struct {
		UploadID      string `json:"upload_id"`
		ContentLength int64  `json:"content_length"`
		AcceptedBytes int64  `json:"accepted_bytes"`
		ReceivedBytes *int64 `json:"received_bytes"`
		Status        string `json:"status"`
		Error         any    `json:"error"`
	}
	if !unmarshal(body, &r) {
		return Update{}, unexpected("sandbox", code, body)
	}
	switch {
	case code == http.StatusNotFound && r.Error != nil:
		return Update{Uploaded: 0, Total: -1, Status: StatusWaiting}, nil
	case (code == http.StatusBadRequest || code == http.StatusUnauthorized) && r.Error != nil:
		return Update{}, refused(code, errorMessage(body))
	case code != http.StatusOK || r.UploadID == "":
		return Update{}, unexpected("sandbox", code, body)
	}
	// The proxy's count when it tracks the session; what the origin
	// accepted when the answer passed without its overlay.
	u := Update{Uploaded: r.AcceptedBytes, Total: r.ContentLength, Status: StatusUploading}
	if r.ReceivedBytes != nil {
		u.Uploaded = *r.ReceivedBytes
	}
	switch r.Status {
	case "staged":
		u.Status = StatusPaused
	case "completing":
		u.Status = StatusProcessing
	case "completed":
		u.Status = StatusCompleted
	case "aborted", "expired", "failed":
		u.Status, u.Reason = StatusFailed, "the upload session was "+r.Status
		if r.Error != nil {
			u.Reason += ": " + errorMessage(body)
		}
	}
	return u, nil
}
