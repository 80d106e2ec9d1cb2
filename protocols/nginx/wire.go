package nginx

import (
	"encoding/json"
	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
	"net/http"
	"net/url"
)

// IDName is the header and query parameter that carries the id.
const IDName = "X-Progress-ID"

// id returns the progress id of a request: the query parameter
// first, then the header, as nginx looks for them.
func id(r *http.Request) string {
	if id, _ := progress.QueryValue(r.URL.RawQuery, IDName); id != "" {
		return id
	}
	return r.Header.Get(IDName)
}

// tracks reports whether r is an upload with a progress id.
func tracks(r *http.Request) bool {
	return progress.HasBody(r) && id(r) != ""
}

// claims reports whether a status request is nginx-style: it names a
// progress id. Where nginx and another protocol share a status path, this
// tells them apart.
func claims(r *http.Request) bool { return id(r) != "" }

// Status is nginx's progress reply.
type Status struct {
	State    string `json:"state"`
	Received *int64 `json:"received,omitempty"`
	Size     *int64 `json:"size,omitempty"`
	Status   int    `json:"status,omitempty"`
	// Error explains a refused status request; nginx itself has no such
	// field, its clients ignore it.
	Error string `json:"error,omitempty"`
}

// StatusOf renders a snapshot as nginx does. A key nobody has
// uploaded to yet is "starting", as nginx reports ids it does not know:
// clients start polling before their upload reaches the proxy.
func StatusOf(s progress.Snapshot) Status {
	switch s.State {
	case progress.Uploading:
		received, size := s.Received, s.Total
		return Status{State: "uploading", Received: &received, Size: &size}
	case progress.Completed:
		return Status{State: "done"}
	case progress.Failed:
		return Status{State: "error", Status: s.HTTPStatus}
	default:
		return Status{State: "starting"}
	}
}

// ParseQuery reads the progress id of a status request.
func ParseQuery(r *http.Request) (progress.StatusQuery, *progress.Failure) {
	q := r.URL.Query()
	id, f := progress.Single(q, IDName)
	if f != nil {
		return progress.StatusQuery{}, f
	}
	if id == "" {
		id = r.Header.Get(IDName)
	}
	if id == "" {
		return progress.StatusQuery{}, progress.BadRequestf("missing %s", IDName)
	}
	if err := progress.CheckKey(id); err != nil {
		return progress.StatusQuery{}, progress.BadRequestf("%s %v", IDName, err)
	}
	if _, f := JSONPCallback(q); f != nil {
		return progress.StatusQuery{}, f
	}
	return progress.StatusQuery{Key: id, Step: 1}, nil
}

// FailureReply renders a failure as an error state with the HTTP status.
func FailureReply(f *progress.Failure) (int, any) {
	code := f.HTTPStatus()
	return code, Status{State: "error", Status: code, Error: f.Message}
}

// maxCallbackLen bounds a JSONP callback name.
const maxCallbackLen = 128

// JSONPCallback returns the callback parameter, if any. It must be a
// JavaScript identifier path (letters, digits, _, $ and dots) so that it
// cannot inject script into the page that loads the reply.
func JSONPCallback(q url.Values) (string, *progress.Failure) {
	cb, f := progress.Single(q, "callback")
	if f != nil || cb == "" {
		return "", f
	}
	if len(cb) > maxCallbackLen {
		return "", progress.BadRequestf("callback is longer than %d characters", maxCallbackLen)
	}
	for i := 0; i < len(cb); i++ {
		c := cb[i]
		ok := c == '_' || c == '$' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' && i > 0
		if !ok {
			return "", progress.BadRequestf("callback must be a JavaScript identifier")
		}
	}
	return cb, nil
}

// EncodeJSONP wraps a JSON reply in a callback call when cb is set. It
// returns the body and its content type.
func EncodeJSONP(cb string, v any) ([]byte, string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, "", err
	}
	if cb == "" {
		return append(b, '\n'), "application/json", nil
	}
	out := make([]byte, 0, len(cb)+len(b)+4)
	out = append(out, cb...)
	out = append(out, '(')
	out = append(out, b...)
	out = append(out, ");\n"...)
	return out, "application/javascript", nil
}

// setHeaders are the caching headers nginx's module sends with every
// reply, so that no cache between the page and the proxy freezes progress.
func setHeaders(h http.Header) {
	h.Set("Cache-Control", "no-cache")
	h.Set("Expires", "Thu, 01 Jan 1970 00:00:01 GMT")
}
