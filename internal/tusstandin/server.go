// Package tusstandin is a small in-memory tus 1.0.0 server for the tests.
//
// The product's tests run the real tusd for most of tus, but tusd
// implements neither the expiration nor the checksum extension, so the
// tests that show the proxy carrying Upload-Expires, Upload-Checksum, 410
// Gone and 460 Checksum Mismatch between client and origin need an origin
// that does. This is that origin and no more: creation (with upload), HEAD,
// PATCH, termination, expiration and checksum (sha1, md5), all in memory.
// Deferred lengths, concatenation and X-HTTP-Method-Override are not
// served. It keeps nobody's data and is not meant to.
package tusstandin

import (
	"bytes"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The tus version and extensions this server speaks, as announced on OPTIONS.
const (
	version    = "1.0.0"
	extensions = "creation,creation-with-upload,expiration,checksum,termination"
	algorithms = "sha1,md5"
)

// Options configure a Server. The zero value serves under /files/ with
// relative Locations and uploads that never expire.
type Options struct {
	// BasePath is where uploads are created (POST BasePath) and live
	// (BasePath+id). Default "/files/"; a missing trailing slash is added.
	BasePath string
	// AbsoluteLocation makes the Location of a new upload
	// "http://"+Host+BasePath+id rather than the relative BasePath+id, for
	// tests of clients or proxies that treat the two differently.
	AbsoluteLocation bool
	// Expiry is how long after its creation an unfinished upload expires.
	// It counts from the POST, not from the last PATCH, so a test knows the
	// deadline from the creation answer alone. 0: uploads never expire.
	Expiry time.Duration
	// Now is the clock expiry is judged by; default time.Now. Tests pass a
	// clock they move, to expire uploads without sleeping.
	Now func() time.Time
}

// Server is a tus 1.0.0 server that keeps its uploads in memory. It is
// an http.Handler, safe for concurrent use; make one with New.
type Server struct {
	base     string
	absolute bool
	expiry   time.Duration
	now      func() time.Time
	requests atomic.Int64

	mu      sync.Mutex
	uploads map[string]*upload // by id; terminated uploads are removed
}

// upload is one upload resource. Its fields are guarded by Server.mu.
type upload struct {
	length   int64
	metadata string // Upload-Metadata as the client sent it
	data     []byte // len(data) is the offset
	expires  time.Time
	expired  bool // set by Expire
}

// complete reports whether every byte of the upload has arrived.
func (u *upload) complete() bool { return int64(len(u.data)) == u.length }

// New returns a Server configured by opts.
func New(opts Options) *Server {
	base := opts.BasePath
	if base == "" {
		base = "/files/"
	}
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Server{
		base:     base,
		absolute: opts.AbsoluteLocation,
		expiry:   opts.Expiry,
		now:      now,
		uploads:  make(map[string]*upload),
	}
}

// ServeHTTP answers one tus request. Every answer carries Tus-Resumable;
// every request, answered or refused, counts in Requests.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	h := w.Header()
	h.Set("Tus-Resumable", version)
	id, ok := s.route(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method == http.MethodOptions {
		h.Set("Tus-Version", version)
		h.Set("Tus-Extension", extensions)
		h.Set("Tus-Checksum-Algorithm", algorithms)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if r.Header.Get("Tus-Resumable") != version {
		h.Set("Tus-Version", version)
		http.Error(w, "Tus-Resumable: 1.0.0 required", http.StatusPreconditionFailed)
		return
	}
	switch {
	case id == "" && r.Method == http.MethodPost:
		s.create(w, r)
	case id != "" && r.Method == http.MethodHead:
		s.head(w, id)
	case id != "" && r.Method == http.MethodPatch:
		s.patch(w, r, id)
	case id != "" && r.Method == http.MethodDelete:
		s.terminate(w, id)
	default:
		if id == "" {
			h.Set("Allow", "OPTIONS, POST")
		} else {
			h.Set("Allow", "OPTIONS, HEAD, PATCH, DELETE")
		}
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// route splits a request path into the upload id it names: "" for the
// base path itself (with or without its trailing slash), false for a path
// outside the base or deeper than one segment below it.
func (s *Server) route(path string) (id string, ok bool) {
	if path == s.base || path == strings.TrimSuffix(s.base, "/") {
		return "", true
	}
	id, ok = strings.CutPrefix(path, s.base)
	if !ok || id == "" || strings.Contains(id, "/") {
		return "", false
	}
	return id, true
}

// lookup returns the upload id names, or the status to answer instead:
// 404 for one never created or terminated, 410 for an expired one (the
// spec's choice for a server that keeps track of expired uploads).
// s.mu must be held.
func (s *Server) lookup(id string) (*upload, int) {
	u, ok := s.uploads[id]
	switch {
	case !ok:
		return nil, http.StatusNotFound
	case s.isExpired(u):
		return nil, http.StatusGone
	}
	return u, 0
}

// isExpired reports whether u has expired: Expire was called on it, or it
// is unfinished and its deadline has passed. A complete upload has no
// deadline left. s.mu must be held.
func (s *Server) isExpired(u *upload) bool {
	if u.expired {
		return true
	}
	return !u.expires.IsZero() && !u.complete() && !s.now().Before(u.expires)
}

// setExpires adds Upload-Expires to h if u is going to expire: expiry is
// configured and the upload is unfinished. s.mu must be held.
func setExpires(h http.Header, u *upload) {
	if !u.expires.IsZero() && !u.complete() {
		h.Set("Upload-Expires", u.expires.UTC().Format(http.TimeFormat))
	}
}

// Expire makes the upload id expire now, whatever the clock says, so a
// test needs no clock at all; it reports whether such an upload exists.
func (s *Server) Expire(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.uploads[id]
	if ok {
		u.expired = true
	}
	return ok
}

// Data returns a copy of the bytes stored for the upload id, and whether
// it exists. An expired upload still exists here; a terminated one not.
func (s *Server) Data(id string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.uploads[id]
	if !ok {
		return nil, false
	}
	return bytes.Clone(u.data), true
}

// Requests returns how many requests the server has received, of any
// method and whatever it answered: a test compares it with what its
// client sent to show that the proxy in between added nothing.
func (s *Server) Requests() int64 { return s.requests.Load() }
