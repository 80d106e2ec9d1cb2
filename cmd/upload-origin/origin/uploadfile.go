package origin

import (
	"errors"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

// /uploadfile answers as pCloud's uploadfile method does: the files of a
// multipart body (one or many, any field name) or a raw body named by the
// filename parameter, stored in the folder named by path (default "/") or
// folderid (0, the root, is the only folder id it knows). A file whose name
// is taken replaces the old one, as on pCloud, unless renameifexists is
// set: then it takes "name (2).ext". Partial files are never kept.
//
// Parameters are read from the query string only (never from the body,
// which is streamed to disk). The credential is pCloud's: the auth or
// access_token parameter, or an Authorization: Bearer token.
//
// Every answer but a 405 is HTTP 200, as pCloud's are; the result code
// says whether the upload succeeded.

// pCloud's result codes that /uploadfile answers.
const (
	pcloudOK          = 0
	pcloudLoginNeeded = 1000 // Log in required.
	pcloudBadFolderID = 1017 // Invalid 'folderid' provided.
	pcloudLoginFailed = 2000 // Log in failed.
	pcloudBadName     = 2001 // Invalid file/folder name.
	pcloudNoParent    = 2002 // A component of parent directory does not exist.
	pcloudExists      = 2004 // File or folder already exists.
	pcloudNoFolder    = 2005 // Directory does not exist.
	pcloudBadPath     = 2010 // Invalid path.
	pcloudBroken      = 2041 // Connection broken.
	pcloudNoFile      = 2088 // No file upload detected.
	pcloudInternal    = 5000 // Internal error. Try again later.
)

// PcloudAnswer is the reply of /uploadfile, in pCloud's words: result 0
// with the ids and metadata of the stored files in part order, or a
// result code and an error.
type PcloudAnswer struct {
	Result   int              `json:"result"`
	Error    string           `json:"error,omitempty"`
	FileIDs  []uint64         `json:"fileids,omitempty"`
	Metadata []PcloudMetadata `json:"metadata,omitempty"`
}

// PcloudMetadata describes a stored file with the fields of pCloud's
// metadata, and the SHA-256 of its content (pCloud's own hash is not
// one a client can check).
type PcloudMetadata struct {
	Name        string `json:"name"`
	Size        int64  `json:"size"`
	ContentType string `json:"contenttype"`
	SHA256      string `json:"sha256"`
	// Path is where the file is stored, as GET /fso?path= takes it.
	Path     string `json:"path"`
	FileID   uint64 `json:"fileid"`
	ID       string `json:"id"` // "f" and the fileid
	IsFolder bool   `json:"isfolder"`
	// Created and Modified are pCloud's datetime: RFC 1123 with a numeric zone.
	Created  string `json:"created"`
	Modified string `json:"modified"`
}

// pcloudTime is the datetime format of pCloud's metadata.
const pcloudTime = time.RFC1123Z

func pcloudError(result int, msg string) reply {
	return reply{status: http.StatusOK, body: PcloudAnswer{Result: result, Error: msg}, refused: true}
}

// uploadFile handles /uploadfile: method, credential, the test hooks,
// then the upload.
func (s *Server) uploadFile(r *http.Request) reply {
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		rep := errReply(http.StatusMethodNotAllowed, "method not allowed")
		rep.allow = "POST, PUT"
		return rep
	}
	if rep, ok := s.checkPcloudCredential(r); !ok {
		return rep
	}
	return withHooks(r, s.uploadFileWork)
}

// checkPcloudCredential refuses a request without one of Config.APIKeys
// as its pCloud credential, as pCloud refuses one that is not logged in.
func (s *Server) checkPcloudCredential(r *http.Request) (reply, bool) {
	if len(s.keys) == 0 {
		return reply{}, true
	}
	got := pcloudCredential(r)
	if got == "" {
		return pcloudError(pcloudLoginNeeded, "Log in required."), false
	}
	if !s.validKey(got) {
		return pcloudError(pcloudLoginFailed, "Log in failed."), false
	}
	return reply{}, true
}

// pcloudCredential is the auth or access_token parameter, or the bearer
// token of the Authorization header.
func pcloudCredential(r *http.Request) string {
	q := r.URL.Query()
	for _, name := range []string{"auth", "access_token"} {
		if v := q.Get(name); v != "" {
			return v
		}
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(token)
	}
	return ""
}

func (s *Server) uploadFileWork(r *http.Request) reply {
	q := r.URL.Query()
	dir := q.Get("path")
	if dir == "" {
		dir = "/"
	}
	if v := q.Get("folderid"); v != "" && q.Get("path") == "" {
		id, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return pcloudError(pcloudBadFolderID, "Invalid 'folderid' provided.")
		}
		if id != 0 {
			return pcloudError(pcloudNoFolder, "Directory does not exist.")
		}
	}
	p, rel, err := resolve(dir, true)
	if err != nil {
		return pcloudError(pcloudBadPath, err.Error())
	}
	mode := replace
	if v := q.Get("renameifexists"); v != "" && v != "0" {
		mode = rename
	}

	var parts []storedPart
	if isMultipart(r) {
		parts, err = s.storeParts(r, p, rel, mode)
	} else {
		parts, err = s.storeRawFile(r, p, rel, q.Get("filename"), mode)
	}
	if err != nil {
		return s.pcloudFailure(r, err)
	}

	now := time.Now().UTC().Format(pcloudTime)
	answer := PcloudAnswer{
		Result:   pcloudOK,
		FileIDs:  make([]uint64, len(parts)),
		Metadata: make([]PcloudMetadata, len(parts)),
	}
	for i, sp := range parts {
		id := s.lastFileID.Add(1)
		answer.FileIDs[i] = id
		answer.Metadata[i] = PcloudMetadata{
			Name:        sp.Name,
			Size:        sp.Size,
			ContentType: contentType(sp.contentType, sp.Name),
			SHA256:      sp.SHA256,
			Path:        sp.Path,
			FileID:      id,
			ID:          "f" + strconv.FormatUint(id, 10),
			Created:     now,
			Modified:    now,
		}
	}
	return reply{status: http.StatusOK, body: answer}
}

// storeRawFile stores a raw body as the file name in the directory
// (p, rel).
func (s *Server) storeRawFile(r *http.Request, p, rel, name string, mode onConflict) ([]storedPart, error) {
	if name == "" {
		return nil, &httpError{http.StatusBadRequest, "missing filename parameter", pcloudBadName}
	}
	name, err := baseName(name)
	if err != nil {
		return nil, &httpError{http.StatusBadRequest, err.Error(), pcloudBadName}
	}
	f, err := s.store(path.Join(p, name), path.Join(rel, name), r.Body, mode)
	if err != nil {
		return nil, err
	}
	f.Name = path.Base(f.Path)
	return []storedPart{{StoredFile: f}}, nil
}

// pcloudFailure turns err into pCloud's answer: the result code of an
// httpError with its message, else 5000 with the details in the log.
func (s *Server) pcloudFailure(r *http.Request, err error) reply {
	var he *httpError
	if errors.As(err, &he) {
		result := he.pcloud
		if result == 0 {
			result = pcloudInternal
		}
		return pcloudError(result, he.msg)
	}
	s.logf("origin: %s %s: %v", r.Method, r.URL.RequestURI(), err)
	return pcloudError(pcloudInternal, "Internal error. Try again later.")
}

// contentType is the type a part declared, else the one its name's
// extension suggests, else application/octet-stream; without parameters,
// as pCloud's contenttype has none.
func contentType(declared, name string) string {
	for _, t := range []string{declared, mime.TypeByExtension(path.Ext(name))} {
		if mt, _, err := mime.ParseMediaType(t); err == nil {
			return mt
		}
	}
	return "application/octet-stream"
}
