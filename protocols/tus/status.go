package tus

import (
	"net/http"
	"time"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// Status is the reply of the status endpoints. tus has no progress API of
// its own; this is the product's.
type Status struct {
	// Upload is the upload URL's path.
	Upload string `json:"upload"`
	// Length is the upload's declared length, -1 while deferred or unknown.
	Length *int64 `json:"length,omitempty"`
	// Offset is what the tus server acknowledged.
	Offset *int64 `json:"offset,omitempty"`
	// Received is what the proxy has read: Offset, or more while a PATCH
	// streams.
	Received *int64 `json:"received,omitempty"`
	// Status is created, uploading, paused, completed, terminated,
	// expired, failed, or not_exist.
	Status   string   `json:"status"`
	Metadata Metadata `json:"metadata,omitempty"`
	// ExpiresAt is when the tus server will forget the unfinished upload.
	ExpiresAt string `json:"expires_at,omitempty"`
	// Error is why the last request failed, or why the upload did.
	Error *string `json:"error,omitempty"`
}

// StatusOf renders what a key shows.
func StatusOf(s progress.Snapshot) Status {
	if !s.Found || s.Session == nil {
		return Status{Upload: s.Key, Status: "not_exist"}
	}
	st := Status{
		Upload:   s.Key,
		Length:   &s.Total,
		Offset:   &s.Session.Acknowledged,
		Received: &s.Received,
		Status:   word(s),
	}
	if md, ok := s.Detail.(Metadata); ok {
		st.Metadata = md
	}
	if !s.Session.Expires.IsZero() {
		st.ExpiresAt = s.Session.Expires.UTC().Format(time.RFC3339)
	}
	msg := s.Session.Error
	if s.State == progress.Failed || s.State == progress.Expired {
		msg = s.Error
	}
	st.Error = &msg
	return st
}

// word is the status of an upload in the reply's words.
func word(s progress.Snapshot) string {
	switch s.State {
	case progress.Completed:
		return "completed"
	case progress.Aborted:
		return "terminated"
	case progress.Expired:
		return "expired"
	case progress.Failed:
		return "failed"
	}
	switch {
	case len(s.Session.InFlight) > 0:
		return "uploading"
	case s.Session.Streams == 0 && s.Session.Acknowledged == 0:
		return "created"
	default:
		return "paused"
	}
}

// ParseQuery reads a status request: `upload`, the upload URL or its path.
func ParseQuery(r *http.Request) (progress.StatusQuery, *progress.Failure) {
	v, f := progress.Single(r.URL.Query(), "upload")
	if f != nil {
		return progress.StatusQuery{}, f
	}
	if v == "" {
		return progress.StatusQuery{}, progress.BadRequestf("missing query parameter upload (the upload URL or its path)")
	}
	key, ok := UploadPath(v, nil)
	if !ok {
		return progress.StatusQuery{}, progress.BadRequestf("query parameter upload is not an upload URL or path")
	}
	if err := progress.CheckKey(key); err != nil {
		return progress.StatusQuery{}, progress.BadRequestf("query parameter upload: %v", err)
	}
	return progress.StatusQuery{Key: key, Step: 1}, nil
}

// ErrorReply is the reply to a status request that cannot be answered.
type ErrorReply struct {
	Error string `json:"error"`
}

// FailureReply renders a failure: its HTTP status and {"error": …}.
func FailureReply(f *progress.Failure) (int, any) {
	return f.HTTPStatus(), ErrorReply{Error: f.Message}
}
