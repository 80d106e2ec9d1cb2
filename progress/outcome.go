package progress

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// Outcome is how an upload ended.
type Outcome struct {
	State State
	// Error is a sentence for the user; empty on success.
	Error string
	// HTTPStatus is the status the upload ended with: the origin's, the
	// proxy's own error status, or, where the client got no answer, the
	// conventional one (499 client gone, 408 timed out or stalled, 500
	// aborted). A failed outcome always has one.
	HTTPStatus int
	// Reason is a short, fixed word for metrics and logs, one of Reasons.
	Reason string
}

// Reasons an upload can end with; they are the outcome label of the metrics.
const (
	ReasonCompleted         = "completed"
	ReasonOriginError       = "origin_error"
	ReasonOriginUnreachable = "origin_unreachable"
	ReasonClientAborted     = "client_aborted"
	ReasonClientTimeout     = "client_timeout"
	ReasonBodyTooLarge      = "body_too_large"
	ReasonAborted           = "aborted"
	ReasonStalled           = "stalled"
	ReasonExpired           = "expired"
)

// Reasons lists every Outcome.Reason, for metrics and docs.
var Reasons = []string{
	ReasonCompleted, ReasonOriginError, ReasonOriginUnreachable, ReasonClientAborted,
	ReasonClientTimeout, ReasonBodyTooLarge, ReasonAborted, ReasonStalled, ReasonExpired,
}

// Why an upload that asked for progress passes untracked.
const (
	UntrackedNoKey         = "no_key"
	UntrackedInvalidKey    = "invalid_key"
	UntrackedNoCredential  = "no_credential"
	UntrackedTrackerFull   = "tracker_full"
	UntrackedTrackerClosed = "tracker_closed"
)

// UntrackedReasons lists every reason an upload passes untracked, for
// metrics and docs.
var UntrackedReasons = []string{
	UntrackedNoKey, UntrackedInvalidKey, UntrackedNoCredential, UntrackedTrackerFull, UntrackedTrackerClosed,
}

// StatusClientClosedRequest is the status a proxy records when the client
// went away before it was answered (reverse_proxy writes it itself).
const StatusClientClosedRequest = 499

// Event is what the proxy observed of an upload when it is judged.
type Event struct {
	// Status is the final status written to the client, 0 if none yet.
	Status int
	// Refused says why the origin refused the upload although Status says
	// success: its answer said so (pCloud answers with 200 and a result
	// code).
	Refused string
	// HandlerFailed is set when the next handler returned an error without
	// writing a response; HandlerStatus is that error's status, if any.
	HandlerFailed bool
	HandlerStatus int
	// Panicked is set when handling was cut short by a panic.
	Panicked bool
	// ClientGone is set when the client's request context has ended.
	ClientGone bool
	// ReadErr is the first non-EOF error reading the request body
	// returned, and Received the number of body bytes read; Tracker.End
	// fills both from the record.
	ReadErr  error
	Received int64
}

// Judge decides how an upload ended from what the proxy observed. Only an
// answer means done: a status below 400 (a 2xx, or the redirect a form post
// gets after success) completes the upload unless the answer itself says
// it was refused, 4xx and 5xx fail it; a body that could not be read blames
// the client, a proxy error blames the origin.
func Judge(e Event) Outcome {
	switch {
	case e.Status >= 200 && e.Status < 400 && e.Refused != "":
		return Outcome{State: Failed, HTTPStatus: e.Status, Error: e.Refused, Reason: ReasonOriginError}
	case e.Status >= 200 && e.Status < 400:
		return Outcome{State: Completed, HTTPStatus: e.Status, Reason: ReasonCompleted}
	case e.ReadErr != nil:
		return bodyFailed(e.ReadErr, e.Received, e.Status)
	case e.Status == StatusClientClosedRequest, e.ClientGone && e.Status == 0:
		return Outcome{
			State:      Failed,
			HTTPStatus: StatusClientClosedRequest,
			Error:      fmt.Sprintf("client disconnected after %d bytes", e.Received),
			Reason:     ReasonClientAborted,
		}
	case e.Status >= 400:
		return Outcome{
			State:      Failed,
			HTTPStatus: e.Status,
			Error:      fmt.Sprintf("origin responded %d %s", e.Status, http.StatusText(e.Status)),
			Reason:     ReasonOriginError,
		}
	case e.HandlerFailed:
		return proxyFailed(e.HandlerStatus)
	case e.Panicked:
		return Outcome{State: Failed, HTTPStatus: http.StatusInternalServerError, Error: fmt.Sprintf("upload aborted after %d bytes", e.Received), Reason: ReasonAborted}
	default:
		// The handler chain returned without writing: the server answers 200.
		return Outcome{State: Completed, HTTPStatus: http.StatusOK, Reason: ReasonCompleted}
	}
}

// proxyFailed is the outcome of an upload the proxy could not deliver.
func proxyFailed(status int) Outcome {
	if status == 0 {
		status = http.StatusBadGateway
	}
	o := Outcome{State: Failed, HTTPStatus: status, Reason: ReasonOriginUnreachable}
	switch status {
	case http.StatusGatewayTimeout:
		o.Error = fmt.Sprintf("origin timed out (%d %s)", status, http.StatusText(status))
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		o.Error = fmt.Sprintf("origin unreachable (%d %s)", status, http.StatusText(status))
	default:
		o.Error = fmt.Sprintf("proxy error (%d %s)", status, http.StatusText(status))
		o.Reason = ReasonAborted
	}
	return o
}

// bodyFailed is the outcome of an upload whose request body could not be
// read to the end after received bytes.
func bodyFailed(err error, received int64, status int) Outcome {
	o := Outcome{State: Failed, HTTPStatus: status}
	var tooLarge *http.MaxBytesError
	var netErr net.Error
	switch {
	case errors.As(err, &tooLarge):
		o.Error = fmt.Sprintf("request body exceeded the %d byte limit", tooLarge.Limit)
		o.Reason = ReasonBodyTooLarge
		if o.HTTPStatus == 0 {
			o.HTTPStatus = http.StatusRequestEntityTooLarge
		}
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		o.Error = fmt.Sprintf("client timed out after %d bytes", received)
		o.Reason = ReasonClientTimeout
		if o.HTTPStatus == 0 {
			o.HTTPStatus = http.StatusRequestTimeout
		}
	default:
		o.Error = fmt.Sprintf("client disconnected after %d bytes", received)
		o.Reason = ReasonClientAborted
		if o.HTTPStatus == 0 {
			o.HTTPStatus = StatusClientClosedRequest
		}
	}
	return o
}

// Stalled is the outcome of an upload whose client sent nothing for idle
// while its body was incomplete.
func Stalled(idle time.Duration, received int64) Outcome {
	return Outcome{
		State:      Failed,
		HTTPStatus: http.StatusRequestTimeout,
		Error:      fmt.Sprintf("no data from the client for %v after %d bytes", idle, received),
		Reason:     ReasonStalled,
	}
}
