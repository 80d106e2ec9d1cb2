package progress

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"syscall"
	"testing"
)

// timeoutNetError is a net.Error that reports a timeout without wrapping
// os.ErrDeadlineExceeded.
type timeoutNetError struct{}

func (timeoutNetError) Error() string   { return "i/o timeout" }
func (timeoutNetError) Timeout() bool   { return true }
func (timeoutNetError) Temporary() bool { return true }

func TestJudge(t *testing.T) {
	maxBytes := &http.MaxBytesError{Limit: 1 << 20}
	tests := []struct {
		name string
		ev   Event
		want Outcome
	}{
		{"200", Event{Status: 200, Received: 10},
			Outcome{State: Completed, HTTPStatus: 200, Reason: ReasonCompleted}},
		{"201", Event{Status: 201},
			Outcome{State: Completed, HTTPStatus: 201, Reason: ReasonCompleted}},
		{"204", Event{Status: 204},
			Outcome{State: Completed, HTTPStatus: 204, Reason: ReasonCompleted}},
		{"299", Event{Status: 299},
			Outcome{State: Completed, HTTPStatus: 299, Reason: ReasonCompleted}},
		{"302 redirect after a form post", Event{Status: 302},
			Outcome{State: Completed, HTTPStatus: 302, Reason: ReasonCompleted}},
		{"303", Event{Status: 303},
			Outcome{State: Completed, HTTPStatus: 303, Reason: ReasonCompleted}},
		{"399", Event{Status: 399},
			Outcome{State: Completed, HTTPStatus: 399, Reason: ReasonCompleted}},
		{"an answer wins over a later drain error", Event{Status: 200, ReadErr: errors.New("reset"), ClientGone: true},
			Outcome{State: Completed, HTTPStatus: 200, Reason: ReasonCompleted}},

		{"400", Event{Status: 400},
			Outcome{State: Failed, HTTPStatus: 400, Error: "origin responded 400 Bad Request", Reason: ReasonOriginError}},
		{"409", Event{Status: 409, Received: 5},
			Outcome{State: Failed, HTTPStatus: 409, Error: "origin responded 409 Conflict", Reason: ReasonOriginError}},
		{"413 from the origin", Event{Status: 413},
			Outcome{State: Failed, HTTPStatus: 413, Error: "origin responded 413 Request Entity Too Large", Reason: ReasonOriginError}},
		{"500", Event{Status: 500},
			Outcome{State: Failed, HTTPStatus: 500, Error: "origin responded 500 Internal Server Error", Reason: ReasonOriginError}},
		{"502 written by the origin", Event{Status: 502},
			Outcome{State: Failed, HTTPStatus: 502, Error: "origin responded 502 Bad Gateway", Reason: ReasonOriginError}},

		{"499", Event{Status: 499, Received: 1234},
			Outcome{State: Failed, HTTPStatus: 499, Error: "client disconnected after 1234 bytes", Reason: ReasonClientAborted}},
		{"client gone, no status", Event{ClientGone: true, Received: 77},
			Outcome{State: Failed, HTTPStatus: 499, Error: "client disconnected after 77 bytes", Reason: ReasonClientAborted}},
		{"client gone beats a proxy error", Event{ClientGone: true, HandlerFailed: true, HandlerStatus: 502, Received: 3},
			Outcome{State: Failed, HTTPStatus: 499, Error: "client disconnected after 3 bytes", Reason: ReasonClientAborted}},

		{"read error", Event{ReadErr: errors.New("connection reset by peer"), Received: 42},
			Outcome{State: Failed, HTTPStatus: 499, Error: "client disconnected after 42 bytes", Reason: ReasonClientAborted}},
		{"read error ECONNRESET with 502", Event{Status: 502, ReadErr: fmt.Errorf("read: %w", syscall.ECONNRESET), Received: 9},
			Outcome{State: Failed, HTTPStatus: 502, Error: "client disconnected after 9 bytes", Reason: ReasonClientAborted}},
		{"read error context canceled", Event{ReadErr: context.Canceled, ClientGone: true, Received: 8},
			Outcome{State: Failed, HTTPStatus: 499, Error: "client disconnected after 8 bytes", Reason: ReasonClientAborted}},
		{"body too large", Event{ReadErr: maxBytes, Received: 1 << 20},
			Outcome{State: Failed, HTTPStatus: 413, Error: "request body exceeded the 1048576 byte limit", Reason: ReasonBodyTooLarge}},
		{"body too large, wrapped", Event{ReadErr: fmt.Errorf("proxy: %w", maxBytes)},
			Outcome{State: Failed, HTTPStatus: 413, Error: "request body exceeded the 1048576 byte limit", Reason: ReasonBodyTooLarge}},
		{"body too large, status already 413", Event{Status: 413, ReadErr: maxBytes},
			Outcome{State: Failed, HTTPStatus: 413, Error: "request body exceeded the 1048576 byte limit", Reason: ReasonBodyTooLarge}},
		{"deadline exceeded", Event{ReadErr: os.ErrDeadlineExceeded, Received: 100},
			Outcome{State: Failed, HTTPStatus: 408, Error: "client timed out after 100 bytes", Reason: ReasonClientTimeout}},
		{"deadline exceeded, wrapped", Event{ReadErr: fmt.Errorf("read tcp: %w", os.ErrDeadlineExceeded), Received: 5},
			Outcome{State: Failed, HTTPStatus: 408, Error: "client timed out after 5 bytes", Reason: ReasonClientTimeout}},
		{"net.Error timeout", Event{ReadErr: timeoutNetError{}, Received: 6},
			Outcome{State: Failed, HTTPStatus: 408, Error: "client timed out after 6 bytes", Reason: ReasonClientTimeout}},

		{"handler failed 502", Event{HandlerFailed: true, HandlerStatus: 502},
			Outcome{State: Failed, HTTPStatus: 502, Error: "origin unreachable (502 Bad Gateway)", Reason: ReasonOriginUnreachable}},
		{"handler failed 503", Event{HandlerFailed: true, HandlerStatus: 503},
			Outcome{State: Failed, HTTPStatus: 503, Error: "origin unreachable (503 Service Unavailable)", Reason: ReasonOriginUnreachable}},
		{"handler failed 504", Event{HandlerFailed: true, HandlerStatus: 504},
			Outcome{State: Failed, HTTPStatus: 504, Error: "origin timed out (504 Gateway Timeout)", Reason: ReasonOriginUnreachable}},
		{"handler failed without status", Event{HandlerFailed: true},
			Outcome{State: Failed, HTTPStatus: 502, Error: "origin unreachable (502 Bad Gateway)", Reason: ReasonOriginUnreachable}},
		{"handler failed 500", Event{HandlerFailed: true, HandlerStatus: 500},
			Outcome{State: Failed, HTTPStatus: 500, Error: "proxy error (500 Internal Server Error)", Reason: ReasonAborted}},

		{"panicked", Event{Panicked: true, Received: 11},
			Outcome{State: Failed, HTTPStatus: 500, Error: "upload aborted after 11 bytes", Reason: ReasonAborted}},
		{"nothing written", Event{Received: 50},
			Outcome{State: Completed, HTTPStatus: 200, Reason: ReasonCompleted}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Judge(tt.ev); got != tt.want {
				t.Errorf("Judge(%+v)\n got  %+v\n want %+v", tt.ev, got, tt.want)
			}
		})
	}
}

func TestJudgeStateMatchesReason(t *testing.T) {
	// Whatever happened, a completed upload has no error and a failed one has one.
	events := []Event{
		{}, {Status: 200}, {Status: 404}, {Status: 499}, {ClientGone: true},
		{ReadErr: errors.New("x")}, {HandlerFailed: true}, {Panicked: true},
		{Status: 301, Panicked: true}, {HandlerFailed: true, HandlerStatus: 418},
	}
	for _, e := range events {
		o := Judge(e)
		switch o.State {
		case Completed:
			if o.Error != "" || o.Reason != ReasonCompleted {
				t.Errorf("Judge(%+v) = %+v: completed with an error", e, o)
			}
		case Failed:
			if o.Error == "" || o.Reason == "" || o.Reason == ReasonCompleted {
				t.Errorf("Judge(%+v) = %+v: failed without a reason", e, o)
			}
		default:
			t.Errorf("Judge(%+v) = %+v: not a terminal state", e, o)
		}
	}
}

func TestStateString(t *testing.T) {
	tests := []struct {
		s        State
		want     string
		terminal bool
	}{
		{NotExist, "not_exist", false},
		{Uploading, "uploading", false},
		{Completed, "completed", true},
		{Failed, "failed", true},
		{Aborted, "aborted", true},
		{Expired, "expired", true},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("State(%d).String() = %q, want %q", tt.s, got, tt.want)
		}
		if got := tt.s.Terminal(); got != tt.terminal {
			t.Errorf("State(%d).Terminal() = %v, want %v", tt.s, got, tt.terminal)
		}
	}
	if (Snapshot{}).State != NotExist {
		t.Error("the zero Snapshot is not NotExist")
	}
}

// An origin that answers success but says in its answer that it refused
// the upload (pCloud: HTTP 200 and a result code) fails it.
func TestJudgeRefusedBySuccessfulAnswer(t *testing.T) {
	o := Judge(Event{Status: 200, Refused: "origin refused the upload: Directory does not exist. (result 2005)", Received: 10})
	if o.State != Failed || o.Reason != ReasonOriginError || o.HTTPStatus != 200 || o.Error != "origin refused the upload: Directory does not exist. (result 2005)" {
		t.Errorf("Judge = %+v", o)
	}
	if o := Judge(Event{Status: 409, Refused: "ignored"}); o.Error != "origin responded 409 Conflict" {
		t.Errorf("a failure status is judged by its status: %+v", o)
	}
}
