package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// nginx watches the upload progress module's /progress: the key is the
// X-Progress-ID. It has no WebSocket unless the module's websocket_path
// adds one (--ws-path), and no credential: --api-key goes in
// x-user-api-key, --header sets the one an owner option reads.
type nginx struct{ target }

func (n nginx) hdr() http.Header { return n.header("X-User-Api-Key", n.apiKey) }

func newNginx(t target) adapter { return nginx{t} }

func (n nginx) query() url.Values { return url.Values{"X-Progress-ID": {n.key}} }

func (n nginx) status(ctx context.Context) (*http.Request, error) {
	return get(ctx, n.url(pathOr(n.statusPath, "/progress"), n.query()), n.hdr())
}

func (n nginx) socket() (string, http.Header) {
	if n.wsPath == "" {
		return "", nil
	}
	return n.wsURL(n.wsPath, n.query()), n.hdr()
}

func (n nginx) decode(code int, body []byte) (Update, error) {
	var r struct {
		State    string `json:"state"`
		Received int64  `json:"received"`
		Size     int64  `json:"size"`
		Status   int    `json:"status"`
		Error    string `json:"error"`
	}
	if !unmarshal(body, &r) || r.State == "" {
		return Update{}, unexpected("nginx", code, body)
	}
	if code == http.StatusBadRequest {
		return Update{}, refused(code, r.Error)
	}
	if code != http.StatusOK {
		return Update{}, unexpected("nginx", code, body)
	}
	// done and error carry no counts: the watch keeps the last it saw.
	switch r.State {
	case "starting":
		return Update{Uploaded: 0, Total: -1, Status: StatusWaiting}, nil
	case "done":
		return Update{Uploaded: -1, Total: -1, Status: StatusCompleted}, nil
	case "error":
		return Update{Uploaded: -1, Total: -1, Status: StatusFailed, Reason: fmt.Sprintf("the upload ended with HTTP status %d", r.Status)}, nil
	}
	return Update{Uploaded: r.Received, Total: r.Size, Status: StatusUploading}, nil
}
