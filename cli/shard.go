package cli

import (
	"context"
	"net/http"
	"net/url"
)

// shard watches the storage node's progress API: the key is the upload's
// path, the credential the x-user-api-key header.
type shard struct{ target }

func newShard(t target) adapter { return shard{t} }

func (s shard) query() url.Values { return url.Values{"path": {s.key}} }

func (s shard) status(ctx context.Context) (*http.Request, error) {
	return get(ctx, s.url(pathOr(s.statusPath, "/progress"), s.query()), s.hdr())
}

func (s shard) socket() (string, http.Header) {
	return s.wsURL(pathOr(s.wsPath, "/ws/progress"), s.query()), s.hdr()
}

func (s shard) hdr() http.Header { return s.header("X-User-Api-Key", s.apiKey) }

func (s shard) decode(code int, body []byte) (Update, error) {
	var r struct {
		TotalSize *int64 `json:"total_size"`
		Uploaded  int64  `json:"uploaded"`
		Status    string `json:"status"`
		Error     string `json:"error"`
	}
	if !unmarshal(body, &r) || r.Status == "" && r.Error == "" {
		return Update{}, unexpected("shard", code, body)
	}
	if code == http.StatusBadRequest || code == http.StatusUnauthorized {
		return Update{}, refused(code, r.Error)
	}
	if code != http.StatusOK || r.TotalSize == nil {
		return Update{}, unexpected("shard", code, body)
	}
	u := Update{Uploaded: r.Uploaded, Total: *r.TotalSize, Reason: r.Error}
	switch r.Status {
	case "not_exist":
		u.Status, u.Total = StatusWaiting, -1
	case "completed":
		u.Status = StatusCompleted
	case "failed":
		u.Status = StatusFailed
	default:
		u.Status = StatusUploading
	}
	return u, nil
}
