package tusstandin

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"hash"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// offsetStream is the media type of every body that carries upload bytes.
const offsetStream = "application/offset+octet-stream"

// statusChecksumMismatch is tus's own status for a chunk whose
// Upload-Checksum does not match. net/http has no name for it, so the
// status line reads "460 status code 460"; the body says Checksum Mismatch.
const statusChecksumMismatch = 460

// create answers POST {base}: a new upload of Upload-Length bytes
// (required: deferred lengths are not served), with the bytes of the body
// already stored if it is an offset stream (creation-with-upload).
func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	length, err := strconv.ParseInt(r.Header.Get("Upload-Length"), 10, 64)
	if err != nil || length < 0 {
		http.Error(w, "Upload-Length missing or invalid", http.StatusBadRequest)
		return
	}
	u := &upload{length: length, metadata: r.Header.Get("Upload-Metadata")}
	if isOffsetStream(r) {
		chunk, status, msg := readChunk(r, length)
		if status != 0 {
			// Nothing is created: the client starts over with a new POST.
			http.Error(w, msg, status)
			return
		}
		u.data = chunk
	}
	if s.expiry > 0 {
		u.expires = s.now().Add(s.expiry)
	}
	id := rand.Text()
	loc := s.base + id
	if s.absolute {
		loc = "http://" + r.Host + loc
	}
	h := w.Header()
	h.Set("Location", loc)
	h.Set("Upload-Offset", strconv.Itoa(len(u.data)))
	setExpires(h, u) // u is not shared yet
	s.mu.Lock()
	s.uploads[id] = u
	s.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
}

// head answers HEAD {base}{id}: where the upload stands.
func (s *Server) head(w http.ResponseWriter, id string) {
	h := w.Header()
	h.Set("Cache-Control", "no-store") // an offset must never come from a cache
	s.mu.Lock()
	u, status := s.lookup(id)
	if status == 0 {
		h.Set("Upload-Offset", strconv.Itoa(len(u.data)))
		h.Set("Upload-Length", strconv.FormatInt(u.length, 10))
		if u.metadata != "" {
			h.Set("Upload-Metadata", u.metadata)
		}
		setExpires(h, u)
	}
	s.mu.Unlock()
	if status != 0 {
		w.WriteHeader(status)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// patch answers PATCH {base}{id}: the body is appended at Upload-Offset,
// all of it or none. The lock is not held while the body arrives, so a
// slow client holds up nobody; the offset is checked again before the
// append, and a PATCH that lost a race to another answers 409.
func (s *Server) patch(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	u, status := s.lookup(id)
	var offset, length int64
	if u != nil {
		offset, length = int64(len(u.data)), u.length
	}
	s.mu.Unlock()
	if status != 0 {
		http.Error(w, http.StatusText(status), status)
		return
	}
	claimed, err := strconv.ParseInt(r.Header.Get("Upload-Offset"), 10, 64)
	switch {
	case !isOffsetStream(r):
		http.Error(w, "Content-Type must be "+offsetStream, http.StatusUnsupportedMediaType)
		return
	case err != nil || claimed < 0:
		http.Error(w, "Upload-Offset missing or invalid", http.StatusBadRequest)
		return
	case claimed != offset:
		http.Error(w, "Upload-Offset is not the upload's offset", http.StatusConflict)
		return
	}
	chunk, status, msg := readChunk(r, length-offset)
	if status != 0 {
		http.Error(w, msg, status)
		return
	}
	h := w.Header()
	s.mu.Lock()
	u, status = s.lookup(id) // terminated or expired while the body arrived?
	if status == 0 && int64(len(u.data)) != offset {
		status, msg = http.StatusConflict, "another PATCH moved the offset"
	}
	if status == 0 {
		u.data = append(u.data, chunk...)
		h.Set("Upload-Offset", strconv.Itoa(len(u.data)))
		setExpires(h, u)
	}
	s.mu.Unlock()
	if status != 0 {
		http.Error(w, msg, status)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// terminate answers DELETE {base}{id}: the upload is forgotten, and later
// requests for it get 404. An expired upload answers 410 like to any
// other request.
func (s *Server) terminate(w http.ResponseWriter, id string) {
	s.mu.Lock()
	_, status := s.lookup(id)
	if status == 0 {
		delete(s.uploads, id)
	}
	s.mu.Unlock()
	if status != 0 {
		http.Error(w, http.StatusText(status), status)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// readChunk reads the whole body of r, which may hold at most room bytes,
// and verifies it against r's Upload-Checksum if there is one. It returns
// the bytes, or the status and message to answer instead:
//   - 400 for an unsupported algorithm or an undecodable digest (before
//     the body is read), or for a body that did not arrive whole: a PATCH
//     stores all its bytes or none (tusd keeps a partial body, which tus
//     allows but does not require);
//   - 413 for a body past Upload-Length, as tusd answers;
//   - 460 for a checksum mismatch; the bytes are discarded.
func readChunk(r *http.Request, room int64) ([]byte, int, string) {
	var h hash.Hash
	var want []byte
	if v := r.Header.Get("Upload-Checksum"); v != "" {
		alg, digest, _ := strings.Cut(v, " ")
		switch alg {
		case "sha1":
			h = sha1.New()
		case "md5":
			h = md5.New()
		default:
			return nil, http.StatusBadRequest, "checksum algorithm not supported: " + alg
		}
		var err error
		if want, err = base64.StdEncoding.DecodeString(digest); err != nil || len(want) != h.Size() {
			return nil, http.StatusBadRequest, "Upload-Checksum digest invalid"
		}
	}
	chunk, err := io.ReadAll(io.LimitReader(r.Body, room+1))
	switch {
	case err != nil:
		return nil, http.StatusBadRequest, "reading the body: " + err.Error()
	case int64(len(chunk)) > room:
		return nil, http.StatusRequestEntityTooLarge, "the body goes past Upload-Length"
	}
	if h != nil {
		h.Write(chunk)
		if !bytes.Equal(h.Sum(nil), want) {
			return nil, statusChecksumMismatch, "Checksum Mismatch"
		}
	}
	return chunk, 0, ""
}

// isOffsetStream reports whether r's body is an offset stream, whatever
// parameters its Content-Type carries.
func isOffsetStream(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == offsetStream
}
