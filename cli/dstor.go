package cli

import (
	"context"
	"net/http"
)

// dstor watches a chunked folder upload: the key is the upload token,
// the credential the Authorization header (as sent, raw). dStor knows no
// folder's size: the total is unknown.
type dstor struct{ target }

func newDstor(t target) adapter { return dstor{t} }

func (d dstor) hdr() http.Header {
	return d.header("Authorization", d.apiKey, "X-Dstor-Upload-Token", d.key)
}

func (d dstor) status(ctx context.Context) (*http.Request, error) {
	return get(ctx, d.url(pathOr(d.statusPath, "/v1/upload/get-status/"), nil), d.hdr())
}

func (d dstor) socket() (string, http.Header) {
	return d.wsURL(pathOr(d.wsPath, "/v1/upload/get-status/ws"), nil), d.hdr()
}

func (d dstor) decode(code int, body []byte) (Update, error) {
	var r struct {
		Status           string `json:"status"`
		ErrorExplanation string `json:"errorExplanation"`
		ErrorAtStage     string `json:"errorAtStage"`
		BytesUploaded    int64  `json:"bytesUploaded"`
		ChunksNumber     *int64 `json:"chunksNumber"`
	}
	if !unmarshal(body, &r) || r.Status == "" {
		return Update{}, unexpected("dstor", code, body)
	}
	switch {
	case code == http.StatusNotFound && r.Status == "ERROR":
		return Update{Uploaded: 0, Total: -1, Status: StatusWaiting}, nil
	case code == http.StatusBadRequest || code == http.StatusUnauthorized:
		return Update{}, refused(code, r.ErrorExplanation)
	case code != http.StatusOK || r.ChunksNumber == nil:
		return Update{}, unexpected("dstor", code, body)
	}
	u := Update{Uploaded: r.BytesUploaded, Total: -1, Status: StatusProcessing, Reason: r.ErrorExplanation}
	switch {
	case r.Status == "UPLOADING":
		u.Status = StatusUploading
	case r.Status == "ERROR" && r.ErrorAtStage == "UPLOADING":
		// A chunk the origin refused: the upload goes on when the
		// client sends it again.
		u.Status = StatusUploading
	case r.Status == "DONE":
		u.Status = StatusCompleted
	case r.Status == "ERROR":
		u.Status = StatusFailed
	}
	return u, nil
}
