package protocol

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// Origin is how a Refresher asks the origin about a watched session: the
// `origin` option of its module (a scheme and host, as reverse_proxy
// reaches the origin), and a client of its own, whose idle connections
// its module's Cleanup closes without touching the rest of the process's.
type Origin struct {
	base   *url.URL
	client *http.Client
}

// NewOrigin reads an `origin` option: an absolute http or https URL with
// no path, query or user. what says where the proxy asks, for the error
// of a URL with a path.
func NewOrigin(raw, what string) (*Origin, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("origin %q must be an absolute http or https URL", raw)
	}
	// The proxy asks at the API's own paths on it: a path of its own
	// would be dropped without a word.
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("origin %q must be a scheme and host only (%s)", raw, what)
	}
	return &Origin{
		base: u,
		client: &http.Client{
			Transport:     http.DefaultTransport.(*http.Transport).Clone(),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// Ask GETs path on the origin with header and returns the answer's status
// and the start of its body (at most limit bytes). A 401, 403 or 404 says
// the origin refuses the watcher's credential for the session: refused
// then says so, for closing the session's watchers.
func (o *Origin) Ask(ctx context.Context, path string, header http.Header, limit int64) (status int, body []byte, refused string, err error) {
	u := *o.base
	u.Path = path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, nil, "", err
	}
	req.Header = header
	resp, err := o.client.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return 0, nil, "", err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return resp.StatusCode, body, "", nil
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		return resp.StatusCode, body, fmt.Sprintf("the origin answered %d %s for this session", resp.StatusCode, http.StatusText(resp.StatusCode)), nil
	}
	return resp.StatusCode, body, "", fmt.Errorf("the origin answered %d", resp.StatusCode)
}

// URL is the origin's base URL.
func (o *Origin) URL() string { return o.base.String() }

// Close lets go of the client's idle connections.
func (o *Origin) Close() {
	if o != nil {
		o.client.CloseIdleConnections()
	}
}
