package shard

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// Status is the storage node's progress reply.
type Status struct {
	// TotalSize is the upload's Content-Length, or -1 without one.
	TotalSize int64 `json:"total_size"`
	// Uploaded is the number of bytes received so far.
	Uploaded int64 `json:"uploaded"`
	// Status is uploading, completed, failed or not_exist.
	Status string `json:"status"`
	// Error says why a failed upload failed; empty otherwise.
	Error string `json:"error"`
}

// StatusOf renders a snapshot in the storage node's shape.
func StatusOf(s progress.Snapshot) Status {
	if !s.Found {
		return Status{Status: statusWord(progress.NotExist)}
	}
	return Status{TotalSize: s.Total, Uploaded: s.Received, Status: statusWord(s.State), Error: s.Error}
}

// statusWord is the storage node's word for a state.
func statusWord(s progress.State) string {
	switch s {
	case progress.Uploading:
		return "uploading"
	case progress.Completed:
		return "completed"
	case progress.Failed:
		return "failed"
	default:
		return "not_exist"
	}
}

// ErrorReply is the storage node's error reply.
type ErrorReply struct {
	Error string `json:"error"`
}

// APIKeyHeader carries the storage node's credential.
const APIKeyHeader = "x-user-api-key"

// Units of the storage node's unitOfMeasurement. MB and GB are binary
// (MiB and GiB), as storage sizes are.
const (
	MB = 1 << 20
	GB = 1 << 30
)

// maxUpdatingRate keeps updatingRate x GB far from overflowing int64.
const maxUpdatingRate = 1 << 20

// ParseQuery reads path, updatingRate and unitOfMeasurement.
func ParseQuery(q url.Values) (progress.StatusQuery, *progress.Failure) {
	var sq progress.StatusQuery
	path, f := progress.Single(q, "path")
	if f != nil {
		return sq, f
	}
	switch {
	case path == "":
		return sq, progress.BadRequestf("missing query parameter: path")
	case !strings.HasPrefix(path, "/"):
		return sq, progress.BadRequestf("path must start with /")
	}
	if err := progress.CheckKey(path); err != nil {
		return sq, progress.BadRequestf("path %v", err)
	}
	sq.Key = path

	rate := int64(1)
	if v, f := progress.Single(q, "updatingRate"); f != nil {
		return sq, f
	} else if v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n < 1 || n > maxUpdatingRate {
			return sq, progress.BadRequestf("updatingRate must be a whole number from 1 to %d", maxUpdatingRate)
		}
		rate = int64(n)
	}
	unit := int64(MB)
	v, f := progress.Single(q, "unitOfMeasurement")
	if f != nil {
		return sq, f
	}
	switch strings.ToUpper(v) {
	case "", "MB":
	case "GB":
		unit = GB
	default:
		return sq, progress.BadRequestf("unitOfMeasurement must be MB or GB")
	}
	sq.Step = rate * unit
	return sq, nil
}

// FailureReply renders a failure as the storage node does: an HTTP status
// and {"error": "..."}.
func FailureReply(f *progress.Failure) (int, any) {
	return f.HTTPStatus(), ErrorReply{Error: f.Message}
}

// tracks reports whether r is an upload that asked the storage node for
// progress: it has a body and informProgress=true in its query.
func tracks(r *http.Request) bool {
	if !progress.HasBody(r) {
		return false
	}
	v, _ := progress.QueryValue(r.URL.RawQuery, "informProgress")
	ok, err := strconv.ParseBool(v)
	return err == nil && ok
}

// key returns the key of a storage-node upload: its path parameter.
func key(r *http.Request) string {
	v, _ := progress.QueryValue(r.URL.RawQuery, "path")
	return v
}
