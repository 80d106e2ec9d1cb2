package origin

import (
	"crypto/rand"
	"net/http"
)

// /upload is the plain store an nginx upload progress module sits in front
// of: it takes any body and stores it. The files of a multipart body are
// stored under their file names; a raw body under the filename parameter,
// or without one under a new name ("upload-" and random letters). They go
// to the folder named by path (default "/") and replace files of the same
// name, so the same upload can be sent twice. The reply is 201 with a
// MultipartResponse, for a raw body too. The progress id the proxy tracks
// uploads by (X-Progress-ID) means nothing here.
func (s *Server) upload(r *http.Request) reply {
	if msg := s.checkKey(r); msg != "" {
		return errReply(http.StatusUnauthorized, "%s", msg)
	}
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		rep := errReply(http.StatusMethodNotAllowed, "method not allowed")
		rep.allow = "POST, PUT"
		return rep
	}
	return withHooks(r, s.uploadWork)
}

func (s *Server) uploadWork(r *http.Request) reply {
	q := r.URL.Query()
	dir := q.Get("path")
	if dir == "" {
		dir = "/"
	}
	p, rel, err := resolve(dir, true)
	if err != nil {
		return errReply(http.StatusBadRequest, "%v", err)
	}
	var parts []storedPart
	if isMultipart(r) {
		parts, err = s.storeParts(r, p, rel, replace)
	} else {
		name := q.Get("filename")
		if name == "" {
			name = "upload-" + rand.Text()
		}
		parts, err = s.storeRawFile(r, p, rel, name, replace)
	}
	if err != nil {
		return s.failure(r, err)
	}
	return reply{status: http.StatusCreated, body: multipartResponse(parts)}
}
