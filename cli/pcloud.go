package cli

import (
	"context"
	"net/http"
	"net/url"
)

// pcloud watches pCloud's uploadprogress: the key is the progresshash,
// the credential the auth token.
type pcloud struct{ target }

func newPcloud(t target) adapter { return pcloud{t} }

func (p pcloud) query() url.Values {
	q := url.Values{"progresshash": {p.key}}
	if p.apiKey != "" {
		q.Set("auth", p.apiKey)
	}
	return q
}

func (p pcloud) status(ctx context.Context) (*http.Request, error) {
	return get(ctx, p.url(pathOr(p.statusPath, "/uploadprogress"), p.query()), p.header())
}

func (p pcloud) socket() (string, http.Header) {
	return p.wsURL(pathOr(p.wsPath, "/uploadprogress/ws"), p.query()), p.header()
}

// pcloudNotFound is result 1900's message for an unknown hash; with
// another message, 1900 says the hash itself is wrong.
const pcloudNotFound = "Upload not found."

func (p pcloud) decode(code int, body []byte) (Update, error) {
	var r struct {
		Result   *int   `json:"result"`
		Error    string `json:"error"`
		Total    int64  `json:"total"`
		Uploaded int64  `json:"uploaded"`
		Finished bool   `json:"finished"`
	}
	if !unmarshal(body, &r) || r.Result == nil {
		return Update{}, unexpected("pcloud", code, body)
	}
	switch {
	case *r.Result == 1900 && r.Error == pcloudNotFound:
		return Update{Uploaded: 0, Total: -1, Status: StatusWaiting}, nil
	case *r.Result == 1000 || *r.Result == 1900:
		return Update{}, refused(*r.Result, r.Error)
	case *r.Result != 0 || code != http.StatusOK:
		return Update{}, unexpected("pcloud", code, body)
	}
	u := Update{Uploaded: r.Uploaded, Total: r.Total, Status: StatusUploading, Reason: r.Error}
	if r.Finished {
		u.Status = StatusCompleted
		if r.Error != "" {
			u.Status = StatusFailed
		}
	}
	return u, nil
}
