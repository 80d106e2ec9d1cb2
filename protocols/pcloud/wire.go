package pcloud

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
	"github.com/caddy-upload-progress/caddy-upload-progress/progress/multipart"
	"net/http"
	"net/url"
	"strings"
)

// pCloud's result codes.
const (
	ResultOK            = 0
	ResultLoginRequired = 1000
	ResultNotFound      = 1900
	ResultLoginFailed   = 2000
	ResultAccessDenied  = 2003
	ResultInternalError = 5000
)

// stepBytes is the step of pCloud's watchers: an update per MiB.
const stepBytes = 1 << 20

// originFiles is the origin's description of the stored files, as its
// answer gave it: the detail pCloud keeps with a record.
type originFiles json.RawMessage

// HashName is the parameter that names an upload.
const HashName = "progresshash"

// maxForm bounds the form body of a POSTed status request.
const maxForm = 64 << 10

// Status is pCloud's uploadprogress reply.
type Status struct {
	Result int    `json:"result"`
	Error  string `json:"error,omitempty"`
	// Total is the Content-Length of the upload request (-1 without one);
	// Uploaded the bytes received so far. Both include the multipart
	// overhead; CurrentFileUploaded does not.
	Total               *int64  `json:"total,omitempty"`
	Uploaded            *int64  `json:"uploaded,omitempty"`
	CurrentFile         *string `json:"currentfile,omitempty"`
	CurrentFileUploaded *int64  `json:"currentfileuploaded,omitempty"`
	FileNumber          *int    `json:"filenumber,omitempty"`
	Finished            *bool   `json:"finished,omitempty"`
	// Files holds the finished files: the origin's own metadata once its
	// answer carried it, else what the proxy saw (name, size, content type).
	Files json.RawMessage `json:"files,omitempty"`
}

// File is the proxy's description of a finished file, in the names
// pCloud's metadata uses.
type File struct {
	Name        string `json:"name"`
	Size        int64  `json:"size"`
	ContentType string `json:"contenttype,omitempty"`
}

// StatusOf renders a snapshot as pCloud does. A failed upload is
// finished, with the reason in error; its result stays 0, as the progress
// query itself succeeded.
func StatusOf(s progress.Snapshot) Status {
	if !s.Found {
		return Status{Result: ResultNotFound, Error: "Upload not found."}
	}
	total, uploaded, finished := s.Total, s.Received, s.State.Terminal()
	st := Status{Total: &total, Uploaded: &uploaded, Finished: &finished, Error: s.Error}
	number := 0
	var done []multipart.File
	if s.Files != nil {
		number, done = s.Files.Number, s.Files.Files
		if c := s.Files.Current; c != nil && !finished {
			name, size := c.FileName, c.Size
			st.CurrentFile, st.CurrentFileUploaded = &name, &size
		}
	}
	st.FileNumber = &number
	if d, ok := s.Detail.(originFiles); ok {
		st.Files = json.RawMessage(d)
	} else {
		files := make([]File, len(done))
		for i, f := range done {
			files[i] = File{Name: f.FileName, Size: f.Size, ContentType: f.ContentType}
		}
		st.Files, _ = json.Marshal(files)
	}
	return st
}

// FailureReply renders a refused status request as pCloud does: HTTP 200
// with a result code, but for methods and overload, which have their own
// HTTP status.
func FailureReply(f *progress.Failure) (int, any) {
	code, result := http.StatusOK, ResultNotFound
	switch f.Kind {
	case progress.NoCredential:
		result = ResultLoginRequired
	case progress.BadCredential:
		result = ResultLoginFailed
	case progress.MethodNotAllowed:
		code = http.StatusMethodNotAllowed
	case progress.Unavailable:
		code, result = http.StatusServiceUnavailable, ResultInternalError
	case progress.UpgradeRequired:
		code = http.StatusUpgradeRequired
	case progress.Forbidden:
		code, result = http.StatusForbidden, ResultAccessDenied
	}
	return code, Status{Result: result, Error: f.Message}
}

// tracks reports whether r is an upload to uploadPath that names a
// progresshash.
func tracks(r *http.Request, uploadPath string) bool {
	return r.URL.Path == uploadPath && progress.HasBody(r) && key(r) != ""
}

// key returns the progresshash of an upload.
func key(r *http.Request) string {
	v, _ := progress.QueryValue(r.URL.RawQuery, HashName)
	return v
}

// fileName returns the file name a raw (not multipart) pCloud upload
// gives in its filename parameter.
func fileName(r *http.Request) string {
	v, _ := progress.QueryValue(r.URL.RawQuery, "filename")
	return v
}

// prepare reads the form of a POSTed status request (bounded), so
// that its parameters count as the query's do.
func prepare(r *http.Request) *progress.Failure {
	if r.Method != http.MethodPost {
		return nil
	}
	r.Body = http.MaxBytesReader(nil, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		return progress.BadRequestf("unreadable form: %v", err)
	}
	return nil
}

// params are a request's parameters: the parsed form when there is
// one, else the query. An upload's body is never parsed.
func params(r *http.Request) url.Values {
	if r.Form != nil {
		return r.Form
	}
	return r.URL.Query()
}

// credential returns pCloud's credential: the auth or access_token
// parameter, or the Authorization header (a Bearer token is the same
// credential as access_token).
func credential(r *http.Request) string {
	q := params(r)
	for _, name := range []string{"auth", "access_token"} {
		if v := q.Get(name); v != "" {
			return name + ":" + v
		}
	}
	h := r.Header.Get("Authorization")
	// The scheme is case-insensitive (RFC 9110).
	if scheme, token, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
		if token = strings.TrimSpace(token); token == "" {
			return ""
		}
		return "access_token:" + token
	}
	if h != "" {
		return "authorization:" + h
	}
	return ""
}

// ParseQuery reads the progresshash of a status request.
func ParseQuery(r *http.Request) (progress.StatusQuery, *progress.Failure) {
	hash, f := progress.Single(params(r), HashName)
	if f != nil {
		return progress.StatusQuery{}, &progress.Failure{Kind: progress.BadRequest, Message: "Upload not found: " + f.Message + "."}
	}
	if hash == "" {
		return progress.StatusQuery{}, progress.BadRequestf("Upload not found: no %s provided.", HashName)
	}
	if err := progress.CheckKey(hash); err != nil {
		return progress.StatusQuery{}, progress.BadRequestf("Upload not found: %s %v.", HashName, err)
	}
	return progress.StatusQuery{Key: hash, Step: stepBytes}, nil
}

// OriginFilesOf reads the metadata of the stored files from the start
// of uploadfile's answer: {"result": 0, "metadata": [...]} (a single
// object is taken as a list of one). It reports false for anything else,
// including an answer cut short by the capture bound.
func OriginFilesOf(answer []byte) (json.RawMessage, bool) {
	var a struct {
		Result   *int            `json:"result"`
		Metadata json.RawMessage `json:"metadata"`
	}
	if err := json.Unmarshal(answer, &a); err != nil || a.Result == nil || *a.Result != ResultOK {
		return nil, false
	}
	m := bytes.TrimSpace(a.Metadata)
	switch {
	case len(m) > 0 && m[0] == '[':
		return bytes.Clone(m), true
	case len(m) > 0 && m[0] == '{':
		return append(append([]byte{'['}, m...), ']'), true
	}
	return nil, false
}

// RefusalOf returns why uploadfile refused an upload, from an answer
// {"result": <not 0>, "error": "..."}, or "" for any other answer
// (success, or one cut short by the capture bound).
func RefusalOf(answer []byte) string {
	var a struct {
		Result *int   `json:"result"`
		Error  string `json:"error"`
	}
	if err := json.Unmarshal(answer, &a); err != nil || a.Result == nil || *a.Result == ResultOK {
		return ""
	}
	why := a.Error
	if why == "" {
		why = "no reason given"
	}
	return fmt.Sprintf("origin refused the upload: %s (result %d)", why, *a.Result)
}
