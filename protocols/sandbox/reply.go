package sandbox

import (
	"encoding/json"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// Reply is what a watcher is sent: the origin's last session object with
// the live view laid over it, or an error object for a session the proxy
// does not track under the watcher's credential.
func Reply(snap progress.Snapshot) any {
	if !snap.Found || snap.Session == nil {
		return ErrorReply{Error: ErrorBody{Code: "not_found", Message: "upload session not found"}}
	}
	if obj, ok := snap.Detail.(originObject); ok {
		if b := Overlay(obj, snap); b != nil {
			return json.RawMessage(b)
		}
	}
	// The origin's object is not kept (past max_file_details): the live
	// view alone.
	return json.RawMessage(Overlay([]byte(`{}`), snap))
}

// ErrorReply is the proxy's own error answer, in the shape of the
// sandbox API's errors.
type ErrorReply struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody is the error of an ErrorReply.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// FailureReply renders a refused WebSocket request: its HTTP status and
// the error.
func FailureReply(f *progress.Failure) (int, any) {
	code := map[progress.FailureKind]string{
		progress.NoCredential:     "unauthorized",
		progress.BadCredential:    "unauthorized",
		progress.MethodNotAllowed: "method_not_allowed",
		progress.Unavailable:      "unavailable",
		progress.UpgradeRequired:  "upgrade_required",
		progress.Forbidden:        "forbidden",
	}[f.Kind]
	if code == "" {
		code = "bad_request"
	}
	return f.HTTPStatus(), ErrorReply{Error: ErrorBody{Code: code, Message: f.Message}}
}
