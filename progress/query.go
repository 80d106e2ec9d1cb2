package progress

import (
	"fmt"
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
	// Unavailable: the tracker cannot take more (watchers at a limit).
	Unavailable
)

func (f *Failure) Error() string { return f.Message }

// badRequest makes a BadRequest failure.
func badRequest(format string, args ...any) *Failure {
	return &Failure{Kind: BadRequest, Message: fmt.Sprintf(format, args...)}
}

// StatusQuery is a parsed status request: which key, and how many more
// bytes a watcher wants between updates.
type StatusQuery struct {
	Key  string
	Step int64
}

// single returns the one value of a query parameter; a parameter given
// twice is ambiguous and refused.
func single(q url.Values, name string) (string, *Failure) {
	vs := q[name]
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	default:
		return "", badRequest("query parameter %s is given more than once", name)
	}
}
