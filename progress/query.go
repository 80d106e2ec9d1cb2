package progress

import (
	"fmt"
	"net/http"
	"net/url"
)

// Failure is why a status request cannot be answered with a state. Each
// protocol renders it in its own shape (an HTTP status and JSON for the
// storage node, a result code for pCloud, an error state for nginx).
type Failure struct {
	Kind    FailureKind
	Message string
}

// FailureKind sorts failures the way clients need to react to them.
type FailureKind uint8

const (
	// BadRequest: the request itself is wrong (parameters, methods).
	BadRequest FailureKind = iota
	// NoCredential: the request carries no credential where one is required.
	NoCredential
	// BadCredential: the credential is malformed.
	BadCredential
	// MethodNotAllowed: the endpoint does not answer this method.
	MethodNotAllowed
	// Unavailable: the tracker cannot take more (watchers at a limit), or
	// it is shutting down.
	Unavailable
	// UpgradeRequired: a WebSocket endpoint got a request that is no
	// WebSocket handshake (a plain GET, or HTTP/2 or HTTP/3).
	UpgradeRequired
	// Forbidden: a cross-origin page that may not open the WebSocket.
	Forbidden
)

func (f *Failure) Error() string { return f.Message }

// HTTPStatus is the HTTP status that says what f says, for protocols
// whose replies carry their meaning in the status.
func (f *Failure) HTTPStatus() int {
	switch f.Kind {
	case NoCredential, BadCredential:
		return http.StatusUnauthorized
	case MethodNotAllowed:
		return http.StatusMethodNotAllowed
	case Unavailable:
		return http.StatusServiceUnavailable
	case UpgradeRequired:
		return http.StatusUpgradeRequired
	case Forbidden:
		return http.StatusForbidden
	default:
		return http.StatusBadRequest
	}
}

// BadRequestf makes a BadRequest failure.
func BadRequestf(format string, args ...any) *Failure {
	return &Failure{Kind: BadRequest, Message: fmt.Sprintf(format, args...)}
}

// StatusQuery is a parsed status request: which key, and how many more
// bytes a watcher wants between updates.
type StatusQuery struct {
	Key  string
	Step int64
}

// Single returns the one value of a query parameter; a parameter given
// twice is ambiguous and refused.
func Single(q url.Values, name string) (string, *Failure) {
	vs := q[name]
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	default:
		return "", BadRequestf("query parameter %s is given more than once", name)
	}
}

// HasBody reports whether a server request carries a body.
func HasBody(r *http.Request) bool {
	return r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody
}
