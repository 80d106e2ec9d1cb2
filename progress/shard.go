package progress

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// The storage-node protocol: uploads are `POST /fso?path=/x&informProgress=true`,
// their progress is `GET /progress?path=/x` and a WebSocket on
// `/ws/progress?path=/x` (or `/progress/ws`), authenticated by the
// x-user-api-key header.

// ShardStatus is the storage node's progress reply.
type ShardStatus struct {
	// TotalSize is the upload's Content-Length, or -1 without one.
	TotalSize int64 `json:"total_size"`
	// Uploaded is the number of bytes received so far.
	Uploaded int64 `json:"uploaded"`
	// Status is uploading, completed, failed or not_exist.
	Status string `json:"status"`
	// Error says why a failed upload failed; empty otherwise.
	Error string `json:"error"`
}

// ShardStatusOf renders a snapshot in the storage node's shape.
func ShardStatusOf(s Snapshot) ShardStatus {
	if !s.Found {
		return ShardStatus{Status: NotExist.String()}
	}
	return ShardStatus{TotalSize: s.Total, Uploaded: s.Received, Status: s.State.String(), Error: s.Error}
}

// ShardError is the storage node's error reply.
type ShardError struct {
	Error string `json:"error"`
}

// ShardAPIKeyHeader carries the storage node's credential.
const ShardAPIKeyHeader = "x-user-api-key"

// Units of the storage node's unitOfMeasurement. MB and GB are binary
// (MiB and GiB), as storage sizes are.
const (
	MB = 1 << 20
	GB = 1 << 30
)

// maxUpdatingRate keeps updatingRate x GB far from overflowing int64.
const maxUpdatingRate = 1 << 20

// ParseShardQuery reads path, updatingRate and unitOfMeasurement.
func ParseShardQuery(q url.Values) (StatusQuery, *Failure) {
	var sq StatusQuery
	path, f := single(q, "path")
	if f != nil {
		return sq, f
	}
	switch {
	case path == "":
		return sq, badRequest("missing query parameter: path")
	case !strings.HasPrefix(path, "/"):
		return sq, badRequest("path must start with /")
	}
	if err := CheckKey(path); err != nil {
		return sq, badRequest("path %v", err)
	}
	sq.Key = path

	rate := int64(1)
	if v, f := single(q, "updatingRate"); f != nil {
		return sq, f
	} else if v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n < 1 || n > maxUpdatingRate {
			return sq, badRequest("updatingRate must be a whole number from 1 to %d", maxUpdatingRate)
		}
		rate = int64(n)
	}
	unit := int64(MB)
	v, f := single(q, "unitOfMeasurement")
	if f != nil {
		return sq, f
	}
	switch strings.ToUpper(v) {
	case "", "MB":
	case "GB":
		unit = GB
	default:
		return sq, badRequest("unitOfMeasurement must be MB or GB")
	}
	sq.Step = rate * unit
	return sq, nil
}

// ShardFailure renders a failure as the storage node does: an HTTP status
// and {"error": "..."}.
func ShardFailure(f *Failure) (int, any) {
	code := http.StatusBadRequest
	switch f.Kind {
	case NoCredential, BadCredential:
		code = http.StatusUnauthorized
	case MethodNotAllowed:
		code = http.StatusMethodNotAllowed
	case Unavailable:
		code = http.StatusServiceUnavailable
	}
	return code, ShardError{Error: f.Message}
}

// ShardTracks reports whether r is an upload that asked the storage node
// for progress: it has a body and informProgress=true in its query.
func ShardTracks(r *http.Request) bool {
	if !hasBody(r) {
		return false
	}
	v, _ := QueryValue(r.URL.RawQuery, "informProgress")
	ok, err := strconv.ParseBool(v)
	return err == nil && ok
}

// ShardKey returns the key of a storage-node upload: its path parameter.
func ShardKey(r *http.Request) string {
	v, _ := QueryValue(r.URL.RawQuery, "path")
	return v
}

// hasBody reports whether a server request carries a body.
func hasBody(r *http.Request) bool {
	return r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody
}
