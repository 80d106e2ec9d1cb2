package progress

import (
	"fmt"
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

// ShardQuery is a parsed status request.
type ShardQuery struct {
	// Path is the key: the absolute path of the file being uploaded.
	Path string
	// Step is how many more bytes must arrive before a watcher is sent an update.
	Step int64
}

// ParseShardQuery reads path, updatingRate and unitOfMeasurement. Its error
// is meant for the client, as a 400.
func ParseShardQuery(q url.Values) (ShardQuery, error) {
	var sq ShardQuery
	path, err := single(q, "path")
	if err != nil {
		return sq, err
	}
	switch {
	case path == "":
		return sq, fmt.Errorf("missing query parameter: path")
	case !strings.HasPrefix(path, "/"):
		return sq, fmt.Errorf("path must start with /")
	}
	if err := CheckKey(path); err != nil {
		return sq, fmt.Errorf("path %v", err)
	}
	sq.Path = path

	rate := int64(1)
	if v, err := single(q, "updatingRate"); err != nil {
		return sq, err
	} else if v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n < 1 || n > maxUpdatingRate {
			return sq, fmt.Errorf("updatingRate must be a whole number from 1 to %d", maxUpdatingRate)
		}
		rate = int64(n)
	}
	unit := int64(MB)
	if v, err := single(q, "unitOfMeasurement"); err != nil {
		return sq, err
	} else {
		switch strings.ToUpper(v) {
		case "", "MB":
		case "GB":
			unit = GB
		default:
			return sq, fmt.Errorf("unitOfMeasurement must be MB or GB")
		}
	}
	sq.Step = rate * unit
	return sq, nil
}

// single returns the one value of a query parameter; a parameter given
// twice is ambiguous and refused.
func single(q url.Values, name string) (string, error) {
	vs := q[name]
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	default:
		return "", fmt.Errorf("query parameter %s is given more than once", name)
	}
}

// ShardTracks reports whether r is an upload that asked the storage node
// for progress: it has a body and informProgress=true in its query.
func ShardTracks(r *http.Request) bool {
	if !hasBody(r) {
		return false
	}
	ok, err := strconv.ParseBool(r.URL.Query().Get("informProgress"))
	return err == nil && ok
}

// hasBody reports whether a server request carries a body.
func hasBody(r *http.Request) bool {
	return r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody
}
