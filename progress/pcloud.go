package progress

import (
	"bytes"
	"encoding/json"
	"github.com/caddy-upload-progress/caddy-upload-progress/progress/multipart"
	"net/http"
	"net/url"
	"strings"
)

// The pCloud protocol: uploads to the upload route (pCloud's uploadfile)
// carry a progresshash query parameter; `GET` or `POST /uploadprogress?
// progresshash=…` answers pCloud's uploadprogress reply. pCloud answers
// every request with HTTP 200 and a result code; so does this.

// pCloud's result codes.
const (
	PcloudOK            = 0
	PcloudLoginRequired = 1000
	PcloudNotFound      = 1900
	PcloudLoginFailed   = 2000
	PcloudInternalError = 5000
)

// PcloudHashName is the parameter that names an upload.
const PcloudHashName = "progresshash"

// pcloudMaxForm bounds the form body of a POSTed status request.
const pcloudMaxForm = 64 << 10

// PcloudStatus is pCloud's uploadprogress reply.
type PcloudStatus struct {
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

// PcloudFile is the proxy's description of a finished file, in the names
// pCloud's metadata uses.
type PcloudFile struct {
	Name        string `json:"name"`
	Size        int64  `json:"size"`
	ContentType string `json:"contenttype,omitempty"`
}

// PcloudStatusOf renders a snapshot as pCloud does. A failed upload is
// finished, with the reason in error; its result stays 0, as the progress
// query itself succeeded.
func PcloudStatusOf(s Snapshot) PcloudStatus {
	if !s.Found {
		return PcloudStatus{Result: PcloudNotFound, Error: "Upload not found."}
	}
	total, uploaded, finished := s.Total, s.Received, s.State.Terminal()
	st := PcloudStatus{Total: &total, Uploaded: &uploaded, Finished: &finished, Error: s.Error}
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
	if s.OriginFiles != "" {
		st.Files = json.RawMessage(s.OriginFiles)
	} else {
		files := make([]PcloudFile, len(done))
		for i, f := range done {
			files[i] = PcloudFile{Name: f.FileName, Size: f.Size, ContentType: f.ContentType}
		}
		st.Files, _ = json.Marshal(files)
	}
	return st
}

// PcloudFailure renders a refused status request as pCloud does: HTTP 200
// with a result code, but for methods and overload, which have their own
// HTTP status.
func PcloudFailure(f *Failure) (int, any) {
	code, result := http.StatusOK, PcloudNotFound
	switch f.Kind {
	case NoCredential:
		result = PcloudLoginRequired
	case BadCredential:
		result = PcloudLoginFailed
	case MethodNotAllowed:
		code = http.StatusMethodNotAllowed
	case Unavailable:
		code, result = http.StatusServiceUnavailable, PcloudInternalError
	}
	return code, PcloudStatus{Result: result, Error: f.Message}
}

// PcloudTracks reports whether r is an upload to uploadPath that names a
// progresshash.
func PcloudTracks(r *http.Request, uploadPath string) bool {
	return r.URL.Path == uploadPath && hasBody(r) && PcloudKey(r) != ""
}

// PcloudKey returns the progresshash of an upload.
func PcloudKey(r *http.Request) string {
	v, _ := QueryValue(r.URL.RawQuery, PcloudHashName)
	return v
}

// PcloudFileName returns the file name a raw (not multipart) pCloud upload
// gives in its filename parameter.
func PcloudFileName(r *http.Request) string {
	v, _ := QueryValue(r.URL.RawQuery, "filename")
	return v
}

// PcloudPrepare reads the form of a POSTed status request (bounded), so
// that its parameters count as the query's do.
func PcloudPrepare(r *http.Request) *Failure {
	if r.Method != http.MethodPost {
		return nil
	}
	r.Body = http.MaxBytesReader(nil, r.Body, pcloudMaxForm)
	if err := r.ParseForm(); err != nil {
		return badRequest("unreadable form: %v", err)
	}
	return nil
}

// pcloudParams are a request's parameters: the parsed form when there is
// one, else the query. An upload's body is never parsed.
func pcloudParams(r *http.Request) url.Values {
	if r.Form != nil {
		return r.Form
	}
	return r.URL.Query()
}

// PcloudCredential returns pCloud's credential: the auth or access_token
// parameter, or the Authorization header (a Bearer token is the same
// credential as access_token).
func PcloudCredential(r *http.Request) string {
	q := pcloudParams(r)
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

// ParsePcloudQuery reads the progresshash of a status request.
func ParsePcloudQuery(r *http.Request) (StatusQuery, *Failure) {
	hash, f := single(pcloudParams(r), PcloudHashName)
	if f != nil {
		return StatusQuery{}, &Failure{Kind: BadRequest, Message: "Upload not found: " + f.Message + "."}
	}
	if hash == "" {
		return StatusQuery{}, badRequest("Upload not found: no %s provided.", PcloudHashName)
	}
	if err := CheckKey(hash); err != nil {
		return StatusQuery{}, badRequest("Upload not found: %s %v.", PcloudHashName, err)
	}
	return StatusQuery{Key: hash, Step: MB}, nil
}

// PcloudOriginFiles reads the metadata of the stored files from the start
// of uploadfile's answer: {"result": 0, "metadata": [...]} (a single
// object is taken as a list of one). It reports false for anything else,
// including an answer cut short by the capture bound.
func PcloudOriginFiles(answer []byte) (json.RawMessage, bool) {
	var a struct {
		Result   *int            `json:"result"`
		Metadata json.RawMessage `json:"metadata"`
	}
	if err := json.Unmarshal(answer, &a); err != nil || a.Result == nil || *a.Result != PcloudOK {
		return nil, false
	}
	m := bytes.TrimSpace(a.Metadata)
	switch {
	case len(m) > 0 && m[0] == '[':
		return m, true
	case len(m) > 0 && m[0] == '{':
		return append(append([]byte{'['}, m...), ']'), true
	}
	return nil, false
}
