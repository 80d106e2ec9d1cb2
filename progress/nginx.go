package progress

import (
	"encoding/json"
	"net/http"
	"net/url"
)

// The nginx protocol: a drop-in for nginx's upload progress module and the
// JavaScript clients written for it. Uploads carry an X-Progress-ID header
// or query parameter; `GET /progress?X-Progress-ID=…` answers one of
//
//	{"state":"starting"}
//	{"state":"uploading","received":N,"size":M}
//	{"state":"done"}
//	{"state":"error","status":S}
//
// as JSONP when a callback parameter is given. Unlike nginx, a reused id
// never fails the upload, and a chunked upload reports size -1 with a true
// received count.

// NginxIDName is the header and query parameter that carries the id.
const NginxIDName = "X-Progress-ID"

// NginxID returns the progress id of a request: the query parameter
// first, then the header, as nginx looks for them.
func NginxID(r *http.Request) string {
	if id, _ := QueryValue(r.URL.RawQuery, NginxIDName); id != "" {
		return id
	}
	return r.Header.Get(NginxIDName)
}

// NginxTracks reports whether r is an upload with a progress id.
func NginxTracks(r *http.Request) bool {
	return hasBody(r) && NginxID(r) != ""
}

// NginxClaims reports whether a status request is nginx-style: it names a
// progress id. Where nginx and another protocol share a status path, this
// tells them apart.
func NginxClaims(r *http.Request) bool { return NginxID(r) != "" }

// NginxStatus is nginx's progress reply.
type NginxStatus struct {
	State    string `json:"state"`
	Received *int64 `json:"received,omitempty"`
	Size     *int64 `json:"size,omitempty"`
	Status   int    `json:"status,omitempty"`
	// Error explains a refused status request; nginx itself has no such
	// field, its clients ignore it.
	Error string `json:"error,omitempty"`
}

// NginxStatusOf renders a snapshot as nginx does. A key nobody has
// uploaded to yet is "starting", as nginx reports ids it does not know:
// clients start polling before their upload reaches the proxy.
func NginxStatusOf(s Snapshot) NginxStatus {
	switch s.State {
	case Uploading:
		received, size := s.Received, s.Total
		return NginxStatus{State: "uploading", Received: &received, Size: &size}
	case Completed:
		return NginxStatus{State: "done"}
	case Failed:
		return NginxStatus{State: "error", Status: s.HTTPStatus}
	default:
		return NginxStatus{State: "starting"}
	}
}

// ParseNginxQuery reads the progress id of a status request.
func ParseNginxQuery(r *http.Request) (StatusQuery, *Failure) {
	q := r.URL.Query()
	id, f := single(q, NginxIDName)
	if f != nil {
		return StatusQuery{}, f
	}
	if id == "" {
		id = r.Header.Get(NginxIDName)
	}
	if id == "" {
		return StatusQuery{}, badRequest("missing %s", NginxIDName)
	}
	if err := CheckKey(id); err != nil {
		return StatusQuery{}, badRequest("%s %v", NginxIDName, err)
	}
	if _, f := JSONPCallback(q); f != nil {
		return StatusQuery{}, f
	}
	return StatusQuery{Key: id, Step: 1}, nil
}

// NginxFailure renders a failure as an error state with the HTTP status.
func NginxFailure(f *Failure) (int, any) {
	code, _ := ShardFailure(f)
	return code, NginxStatus{State: "error", Status: code, Error: f.Message}
}

// maxCallbackLen bounds a JSONP callback name.
const maxCallbackLen = 128

// JSONPCallback returns the callback parameter, if any. It must be a
// JavaScript identifier path (letters, digits, _, $ and dots) so that it
// cannot inject script into the page that loads the reply.
func JSONPCallback(q url.Values) (string, *Failure) {
	cb, f := single(q, "callback")
	if f != nil || cb == "" {
		return "", f
	}
	if len(cb) > maxCallbackLen {
		return "", badRequest("callback is longer than %d characters", maxCallbackLen)
	}
	for i := 0; i < len(cb); i++ {
		c := cb[i]
		ok := c == '_' || c == '$' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' && i > 0
		if !ok {
			return "", badRequest("callback must be a JavaScript identifier")
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

// NginxHeaders are the caching headers nginx's module sends with every
// reply, so that no cache between the page and the proxy freezes progress.
func NginxHeaders(h http.Header) {
	h.Set("Cache-Control", "no-cache")
	h.Set("Expires", "Thu, 01 Jan 1970 00:00:01 GMT")
}
