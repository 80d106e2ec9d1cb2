// Package origin is a small reference upload backend ("origin") that the
// Caddy upload-progress proxy sits in front of in the quickstart demo and in
// end-to-end tests.
//
// It stores raw or multipart uploads on disk and streams every body straight
// into a file, so memory stays constant even for uploads of hundreds of MiB.
// Uploads are written to a temporary file and renamed into place only when
// complete, so an aborted upload never leaves a partial file behind. Request
// headers act as test hooks (X-Origin-Fail, X-Origin-Delay) so end-to-end
// tests can make the origin fail or stall on demand.
//
// Routes, one per upload API the proxy tracks (every reply except a file
// download is JSON; errors are {"error":"message"} unless said otherwise):
//
//	POST /fso?path=/dir/file[&overwrite=true]   raw body        -> 201 StoredFile
//	POST /fso?path=/dir  (multipart/form-data)  one file a part -> 201 MultipartResponse
//	GET|HEAD /fso?path=/dir/file                                -> 200 file bytes
//	POST /uploadfile?filename=name[&path=/dir]  raw body        -> 200 PcloudAnswer
//	POST /uploadfile[?path=/dir]  (multipart)   one file a part -> 200 PcloudAnswer
//	POST /upload[?path=/dir][&filename=name]    raw body        -> 201 MultipartResponse
//	POST /upload[?path=/dir]  (multipart)       one file a part -> 201 MultipartResponse
//	GET|HEAD /healthz                                           -> 200 {"ok":true}
//	POST /files/, HEAD|PATCH|GET|DELETE /files/<id>             tus 1.0 (tusd's replies)
//	/v1/sandboxes/{id}/uploads[/...]                            the sandbox's resumable upload sessions (see sandbox.go)
//	POST /v1/upload/get-token, POST /v1/upload/, GET /v1/upload/get-status/   dStor's chunked folder uploads (see dstor.go)
//
// /fso is a storage node's file API, /uploadfile answers as pCloud's
// uploadfile does (errors included: HTTP 200 with a result code), and
// /upload is the plain store that sits behind nginx's upload progress
// module. All three store into the same tree, so a file uploaded by any of
// them can be fetched with GET /fso. /files/ is tus 1.0 as tusd serves it
// (tusd's own handler: creation, deferred length, termination,
// concatenation), storing into the tree's TusDir; the test hooks do not
// apply to it. /v1/sandboxes/ is a sandbox's resumable, multi-part upload
// sessions (create, send parts, complete, abort, status), stored into the
// tree at their target path; its errors have a shape of their own
// (SandboxErrorResponse). /v1/upload/ is dStor's chunked folder uploads
// (a token, then the folder's files in N multipart chunks, then stages
// until DONE), stored into the tree at their folder_path; its answers are
// dStor's ({"message":"…"}, and status objects).
package origin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Request headers the origin understands.
const (
	// APIKeyHeader carries the client's key when Config.APIKeys is set.
	APIKeyHeader = "X-User-Api-Key"
	// FailHeader makes the origin read the whole body and then answer the
	// given status (400-599) with {"error":"forced failure"}, so tests can
	// provoke an origin failure after a complete upload.
	FailHeader = "X-Origin-Fail"
	// DelayHeader holds a Go duration ("250ms", "2s") to wait before the
	// reply is sent, so tests can simulate a slow origin.
	DelayHeader = "X-Origin-Delay"
)

// MaxDelay bounds DelayHeader so a typo in a test cannot park a request
// for hours; longer values are clamped to it.
const MaxDelay = 30 * time.Second

// Config configures a Server.
type Config struct {
	// Dir is where uploads are stored (required). It is created if missing.
	Dir string
	// APIKeys, if non-empty, are the credentials accepted: in the
	// x-user-api-key header on /fso, /upload and /files/ (401 without
	// one of them; tus's CORS preflights need none), and as pCloud's auth or access_token parameter or bearer
	// token on /uploadfile (result 1000 or 2000), and as the bearer token
	// on the sandbox routes (401), and as the Authorization header, raw or
	// as a bearer token, on the dStor routes (401). Empty, any credential
	// or none is accepted, but the sandbox routes still want a bearer
	// token and the dStor routes an Authorization header: their uploads
	// belong to it. /healthz stays open so liveness probes need no secret.
	APIKeys []string
	// Logf, if set, receives one line per request.
	Logf func(format string, args ...any)

	// The sandbox's resumable upload sessions (sandbox.go). Zero values
	// take the defaults.

	// SandboxPrefix is where the sandbox API is mounted: its routes are
	// {SandboxPrefix}/sandboxes/... (default DefaultSandboxPrefix, "/v1").
	SandboxPrefix string
	// SandboxLimits are the limits every session answers with and is held
	// to (defaults: DefaultSandboxLimits).
	SandboxLimits SandboxLimits
	// SandboxTTL is how long a session lives: expires_at is created_at
	// plus it (default 1h).
	SandboxTTL time.Duration
	// SandboxCompletion is how a complete request is answered when it does
	// not say (?mode=): "async" (default; 202 completing, completed
	// SandboxCompleteDelay later) or "sync" (200 completed).
	SandboxCompletion string
	// SandboxCompleteDelay is how long an asynchronous completion takes
	// (default 300ms).
	SandboxCompleteDelay time.Duration
	// Now, if set, is the clock of the sandbox sessions (timestamps and
	// expiry) and of the dStor uploads (their DstorTTL), so tests can move
	// time on; the completion delay and the stage delay are real time
	// still.
	Now func() time.Time

	// dStor's chunked folder uploads (dstor.go). Zero values take the
	// defaults.

	// DstorPrefix is where the dStor API is mounted: its routes are
	// {DstorPrefix}/get-token, {DstorPrefix}/ and {DstorPrefix}/get-status/
	// (default DefaultDstorPrefix, "/v1/upload").
	DstorPrefix string
	// DstorStageDelay is how long each stage after the last chunk
	// (ADDING_TO_IPFS, SAVING_DATA) lasts (default 200ms).
	DstorStageDelay time.Duration
	// DstorFailStage, if set (ADDING_TO_IPFS or SAVING_DATA), makes every
	// upload end in ERROR at the end of that stage, for tests;
	// DstorFailStageHeader does so for one upload.
	DstorFailStage string
	// DstorTTL is how long an upload is kept after it last changed, ended
	// or waiting for chunks (default 1h).
	DstorTTL time.Duration
}

// Server is the origin's http.Handler. Close it to release Dir.
type Server struct {
	// root confines every file operation to Dir, so neither a crafted path
	// nor a symlink inside Dir can reach files outside it.
	root *os.Root
	keys [][]byte
	logf func(format string, args ...any)
	// lastFileID numbers the files /uploadfile stores, as pCloud's
	// fileid does.
	lastFileID atomic.Uint64
	// tus is tusd's handler, serving TusPath.
	tus http.Handler
	// sandbox holds the sandbox's upload sessions.
	sandbox *sandboxStore
	// dstor holds the dStor uploads.
	dstor *dstorStore
}

// StoredFile describes one stored upload. Name is the sanitized file name
// it was stored under; /fso sets it only for multipart parts.
type StoredFile struct {
	Path   string `json:"path"`
	Name   string `json:"name,omitempty"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// MultipartResponse is the reply to a multipart upload, files in part order.
type MultipartResponse struct {
	Files []StoredFile `json:"files"`
}

// ErrorResponse is the body of every error reply.
type ErrorResponse struct {
	Error string `json:"error"`
}

// New returns a Server storing files under cfg.Dir.
func New(cfg Config) (*Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("origin: Config.Dir is required")
	}
	s := &Server{logf: cfg.Logf}
	if s.logf == nil {
		s.logf = func(string, ...any) {}
	}
	for _, k := range cfg.APIKeys {
		// An empty key would match a request that sends no key at all.
		if k == "" {
			return nil, errors.New("origin: empty API key")
		}
		s.keys = append(s.keys, []byte(k))
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("origin: %w", err)
	}
	root, err := os.OpenRoot(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("origin: %w", err)
	}
	s.root = root
	if s.tus, err = newTus(tusStore(cfg.Dir), s.logf); err != nil {
		root.Close()
		return nil, err
	}
	if s.sandbox, err = newSandboxStore(cfg, s.logf); err != nil {
		root.Close()
		return nil, err
	}
	if s.dstor, err = newDstorStore(cfg); err != nil {
		root.Close()
		return nil, err
	}
	return s, nil
}

// Close waits for the sandbox completions and dStor stages under way,
// cancels those not begun, and releases the handle on Dir. Call it after
// the HTTP server stopped.
func (s *Server) Close() error {
	s.sandbox.close()
	s.dstor.close()
	return s.root.Close()
}

// reply is what a handler decided to answer. Handlers return it instead of
// writing to the client themselves so ServeHTTP can apply the delay hook in
// one place, right before anything is sent.
type reply struct {
	status int
	body   any               // JSON body, unless file is set
	file   *os.File          // stored file to send for GET/HEAD
	size   int64             // size of file
	allow  string            // Allow header of a 405
	header map[string]string // more headers (Location, WWW-Authenticate)
	delay  time.Duration     // from DelayHeader
	// refused marks a refusal answered with a success status (pCloud's
	// errors are HTTP 200), so that an unread body still closes the
	// connection.
	refused bool
}

func errReply(status int, format string, args ...any) reply {
	return reply{status: status, body: ErrorResponse{Error: fmt.Sprintf(format, args...)}}
}

// ServeHTTP routes the request, waits for the delay hook if any, and sends
// the reply.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if isTus(r) {
		// tusd answers by itself, reading the body as tus says.
		status := s.serveTus(w, r)
		s.logf("origin: %s %s -> %d in %s", r.Method, r.URL.RequestURI(), status, time.Since(start).Round(time.Microsecond))
		return
	}
	// Handlers see a shallow copy whose body records whether it was read to
	// the end. The original request stays untouched: net/http inspects its
	// body after we return to decide how to close the connection.
	body := &trackedReader{r: r.Body}
	r = r.WithContext(r.Context())
	r.Body = struct {
		io.Reader
		io.Closer
	}{body, r.Body}

	var rep reply
	switch r.URL.Path {
	case "/healthz":
		rep = health(r)
	case "/fso":
		rep = s.fso(r)
	case "/uploadfile":
		rep = s.uploadFile(r)
	case "/upload":
		rep = s.upload(r)
	default:
		switch {
		case s.isSandbox(r.URL.Path):
			rep = s.serveSandbox(r)
		case s.isDstor(r.URL.Path):
			rep = s.serveDstor(r)
		default:
			rep = errReply(http.StatusNotFound, "not found")
		}
	}
	if rep.file != nil {
		defer rep.file.Close()
	}

	if rep.delay > 0 && !sleep(r.Context(), rep.delay) {
		s.logf("origin: %s %s: client went away during %s delay", r.Method, r.URL.RequestURI(), rep.delay)
		return
	}
	if (rep.status >= 400 || rep.refused) && r.ContentLength != 0 && !body.eof {
		// We answer without having read the whole body (bad path, conflict,
		// ...). Say so, so the client stops sending and does not reuse the
		// connection; net/http then half-closes and lingers so the client
		// still gets to read this reply.
		w.Header().Set("Connection", "close")
	}
	send(w, r, rep)
	s.logf("origin: %s %s -> %d in %s", r.Method, r.URL.RequestURI(), rep.status, time.Since(start).Round(time.Microsecond))
}

func send(w http.ResponseWriter, r *http.Request, rep reply) {
	if rep.allow != "" {
		w.Header().Set("Allow", rep.allow)
	}
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	if rep.status == http.StatusNoContent {
		w.WriteHeader(rep.status)
		return
	}
	if rep.file == nil {
		writeJSON(w, rep.status, rep.body)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(rep.size, 10))
	w.WriteHeader(rep.status)
	if r.Method != http.MethodHead {
		_, _ = io.CopyN(w, rep.file, rep.size)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func health(r *http.Request) reply {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		rep := errReply(http.StatusMethodNotAllowed, "method not allowed")
		rep.allow = "GET, HEAD"
		return rep
	}
	return reply{status: http.StatusOK, body: map[string]bool{"ok": true}}
}

// fso handles /fso: auth first, then the test hooks, then the real work.
func (s *Server) fso(r *http.Request) reply {
	if msg := s.checkKey(r); msg != "" {
		return errReply(http.StatusUnauthorized, "%s", msg)
	}
	return withHooks(r, s.fsoWork)
}

// withHooks answers as the test hooks (DelayHeader, FailHeader) ask, or
// else as work does. Routes call it once they have checked the caller.
func withHooks(r *http.Request, work func(*http.Request) reply) reply {
	delay, err := parseDelay(r.Header.Get(DelayHeader))
	if err != nil {
		return errReply(http.StatusBadRequest, "%v", err)
	}
	var rep reply
	if r.Header.Get(FailHeader) != "" {
		rep = forcedFailure(r)
	} else {
		rep = work(r)
	}
	rep.delay = delay
	return rep
}

func (s *Server) fsoWork(r *http.Request) reply {
	var rep reply
	switch {
	case r.Method == http.MethodPost && isMultipart(r):
		rep = s.uploadMultipart(r)
	case r.Method == http.MethodPost:
		rep = s.uploadRaw(r)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		rep = s.download(r)
	default:
		rep = errReply(http.StatusMethodNotAllowed, "method not allowed")
		rep.allow = "GET, HEAD, POST"
	}
	return rep
}

// checkKey returns why the request is not authorized, or "" if it is.
func (s *Server) checkKey(r *http.Request) string {
	if len(s.keys) == 0 {
		return ""
	}
	got := r.Header.Get(APIKeyHeader)
	if got == "" {
		return "missing x-user-api-key header"
	}
	if !s.validKey(got) {
		return "invalid API key"
	}
	return ""
}

// validKey reports whether got is one of Config.APIKeys.
func (s *Server) validKey(got string) bool {
	for _, k := range s.keys {
		if subtle.ConstantTimeCompare([]byte(got), k) == 1 {
			return true
		}
	}
	return false
}

func parseDelay(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid %s %q: want a duration such as 500ms", DelayHeader, v)
	}
	return min(d, MaxDelay), nil
}

// sleep waits for d and reports false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// forcedFailure implements FailHeader. The body is read to the end first so
// the failure comes after a complete upload, which is the case a proxy
// tracking progress has to report correctly.
func forcedFailure(r *http.Request) reply {
	v := r.Header.Get(FailHeader)
	code, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || code < 400 || code > 599 {
		return errReply(http.StatusBadRequest, "invalid %s %q: want a status between 400 and 599", FailHeader, v)
	}
	_, _ = io.Copy(io.Discard, r.Body)
	return errReply(code, "forced failure")
}

func isMultipart(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "multipart/form-data"
}

func overwriteParam(r *http.Request) bool {
	ok, _ := strconv.ParseBool(r.URL.Query().Get("overwrite"))
	return ok
}

func (s *Server) uploadRaw(r *http.Request) reply {
	p, rel, err := resolve(r.URL.Query().Get("path"), false)
	if err != nil {
		return errReply(http.StatusBadRequest, "%v", err)
	}
	mode := refuse
	if overwriteParam(r) {
		mode = replace
	}
	f, err := s.store(p, rel, r.Body, mode)
	if err != nil {
		return s.failure(r, err)
	}
	return reply{status: http.StatusCreated, body: f}
}

// uploadMultipart stores each file part under the directory named by the
// path query (default "/").
func (s *Server) uploadMultipart(r *http.Request) reply {
	dir := r.URL.Query().Get("path")
	if dir == "" {
		dir = "/"
	}
	p, rel, err := resolve(dir, true)
	if err != nil {
		return errReply(http.StatusBadRequest, "%v", err)
	}
	mode := refuse
	if overwriteParam(r) {
		mode = replace
	}
	parts, err := s.storeParts(r, p, rel, mode)
	if err != nil {
		return s.failure(r, err)
	}
	return reply{status: http.StatusCreated, body: multipartResponse(parts)}
}

func multipartResponse(parts []storedPart) MultipartResponse {
	files := make([]StoredFile, len(parts))
	for i, sp := range parts {
		files[i] = sp.StoredFile
	}
	return MultipartResponse{Files: files}
}

// storedPart is a file stored from a multipart part, with the content
// type its part declared ("" if none).
type storedPart struct {
	StoredFile
	contentType string
}

// errNoFileParts is the error of a multipart body without a file.
var errNoFileParts = &httpError{status: http.StatusBadRequest, msg: "no file parts in multipart body", pcloud: pcloudNoFile}

// storeParts stores each file part of a multipart body in the directory
// (p, rel), under the part's file name, in part order. Parts are streamed
// one by one with MultipartReader, never ParseMultipartForm, so nothing is
// buffered in memory or spilled to temp files outside Dir. Form fields
// are skipped. If a part fails (conflict, broken body) the request stops
// there; files stored from earlier parts stay.
func (s *Server) storeParts(r *http.Request, p, rel string, mode onConflict) ([]storedPart, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, &httpError{http.StatusBadRequest, fmt.Sprintf("malformed multipart request: %v", err), pcloudBroken}
	}
	parts := []storedPart{}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, &httpError{http.StatusBadRequest, fmt.Sprintf("malformed multipart body: %v", err), pcloudBroken}
		}
		if part.FileName() == "" {
			continue // a plain form field; NextPart skips its content
		}
		name, err := baseName(part.FileName())
		if err != nil {
			return nil, &httpError{http.StatusBadRequest, err.Error(), pcloudBadName}
		}
		f, err := s.store(path.Join(p, name), path.Join(rel, name), part, mode)
		part.Close()
		if err != nil {
			return nil, err
		}
		f.Name = path.Base(f.Path)
		parts = append(parts, storedPart{f, part.Header.Get("Content-Type")})
	}
	if len(parts) == 0 {
		return nil, errNoFileParts
	}
	return parts, nil
}

func (s *Server) download(r *http.Request) reply {
	_, rel, err := resolve(r.URL.Query().Get("path"), false)
	if err != nil {
		return errReply(http.StatusBadRequest, "%v", err)
	}
	f, err := s.root.Open(filepath.FromSlash(rel))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return errReply(http.StatusNotFound, "file not found")
		}
		return s.failure(r, err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return s.failure(r, err)
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return errReply(http.StatusNotFound, "file not found")
	}
	return reply{status: http.StatusOK, file: f, size: info.Size()}
}

// httpError is an error meant for the client, with its status, and the
// result code /uploadfile answers it with (5000 if unset).
type httpError struct {
	status int
	msg    string
	pcloud int
}

func (e *httpError) Error() string { return e.msg }

// failure turns err into a reply: its own status for an httpError, else a
// 500 whose details go to the log rather than to the client.
func (s *Server) failure(r *http.Request, err error) reply {
	var he *httpError
	if errors.As(err, &he) {
		return errReply(he.status, "%s", he.msg)
	}
	s.logf("origin: %s %s: %v", r.Method, r.URL.RequestURI(), err)
	return errReply(http.StatusInternalServerError, "internal error")
}

// fsError gives the client-facing meaning of a filesystem error, when it
// has one: a file in the way of a directory, or a name already taken.
func fsError(err error) error {
	switch {
	case errors.Is(err, syscall.ENOTDIR):
		return &httpError{http.StatusConflict, "a parent of the path is a file", pcloudNoParent}
	case errors.Is(err, fs.ErrExist):
		return errExists
	}
	return err
}

var (
	errExists = &httpError{http.StatusConflict, "file already exists", pcloudExists}
	errIsDir  = &httpError{http.StatusConflict, "path is a directory", pcloudExists}
)

// onConflict says what storing a file does when its name is taken.
type onConflict int

const (
	refuse  onConflict = iota // fail with 409
	replace                   // the new file replaces the old one
	rename                    // the new file takes "name (2).ext", "name (3).ext", …
)

// maxRenames bounds the names rename tries.
const maxRenames = 1000

// store streams src into rel (slash-separated, relative to Dir) and
// returns what was stored under the client-facing path p (with rename, the
// name it took). The bytes go to a temp file in the destination directory,
// hashed on the way, and are put in place only once complete, so a failed
// upload leaves nothing behind.
func (s *Server) store(p, rel string, src io.Reader, mode onConflict) (StoredFile, error) {
	dst := filepath.FromSlash(rel)
	// Cheap pre-check so a conflicting upload is refused before its body is
	// read. The authoritative no-clobber check is in commit.
	if info, err := s.root.Stat(dst); err == nil && mode != rename {
		if info.IsDir() {
			return StoredFile{}, errIsDir
		}
		if mode == refuse {
			return StoredFile{}, errExists
		}
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return StoredFile{}, fsError(err)
	}

	dir := filepath.Dir(dst)
	if err := s.root.MkdirAll(dir, 0o755); err != nil {
		return StoredFile{}, fsError(err)
	}
	tmp := filepath.Join(dir, ".upload-"+rand.Text()+".tmp")
	f, err := s.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return StoredFile{}, err
	}
	// After a failure this drops the partial file; after a link it drops
	// the temp name; after a rename it finds nothing to remove.
	defer s.root.Remove(tmp)

	h := sha256.New()
	in := &trackedReader{r: src}
	n, err := io.Copy(io.MultiWriter(f, h), in)
	// No fsync: this is a test origin; the rename is for atomic visibility,
	// not durability across power loss.
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if in.err != nil {
			return StoredFile{}, &httpError{http.StatusBadRequest, fmt.Sprintf("upload interrupted: %v", in.err), pcloudBroken}
		}
		return StoredFile{}, err
	}
	final, err := s.commit(tmp, dst, mode)
	if err != nil {
		return StoredFile{}, err
	}
	stored := path.Join(path.Dir(p), filepath.Base(final))
	return StoredFile{Path: stored, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// commit puts the finished temp file at dst, or with rename at the first
// free numbered name, and returns where it went. Without replace it uses
// a hard link, which fails if the name exists, so two concurrent uploads
// of the same path cannot both win.
func (s *Server) commit(tmp, dst string, mode onConflict) (string, error) {
	if mode == replace {
		return dst, fsError(s.root.Rename(tmp, dst))
	}
	for i := 1; i <= maxRenames; i++ {
		name := dst
		if i > 1 {
			name = numbered(dst, i)
		}
		err := s.linkNew(tmp, name)
		if err == nil {
			return name, nil
		}
		if mode != rename || !errors.Is(err, fs.ErrExist) {
			return "", fsError(err)
		}
	}
	return "", &httpError{http.StatusConflict, fmt.Sprintf("no free name for %s after %d tries", filepath.Base(dst), maxRenames), pcloudExists}
}

// linkNew puts tmp at dst unless dst exists (then fs.ErrExist).
func (s *Server) linkNew(tmp, dst string) error {
	err := s.root.Link(tmp, dst)
	if err == nil || errors.Is(err, fs.ErrExist) {
		return err
	}
	// Some filesystems have no hard links: fall back to check-then-rename
	// and accept the small race.
	if _, serr := s.root.Lstat(dst); serr == nil {
		return fs.ErrExist
	}
	return s.root.Rename(tmp, dst)
}

// numbered is name with " (i)" before its extension: "a/photo (2).jpg".
func numbered(name string, i int) string {
	dir, base := filepath.Split(name)
	ext := path.Ext(base)
	if ext == base {
		ext = "" // ".profile" is a name, not an extension
	}
	return dir + fmt.Sprintf("%s (%d)%s", strings.TrimSuffix(base, ext), i, ext)
}

// resolve checks a client path and returns it cleaned ("/a/b") together
// with the same path relative to Dir ("a/b", or "." for the root).
// Traversal is refused outright rather than cleaned away, so a client
// never gets a file stored somewhere other than where it asked.
func resolve(p string, allowRoot bool) (clean, rel string, err error) {
	switch {
	case p == "":
		return "", "", errors.New("missing path query parameter")
	case !strings.HasPrefix(p, "/"):
		return "", "", errors.New("path must start with /")
	case strings.ContainsRune(p, 0):
		return "", "", errors.New("path must not contain NUL bytes")
	case strings.ContainsRune(p, '\\'):
		// A separator on Windows; refused everywhere so behaviour is the same.
		return "", "", errors.New(`path must not contain \`)
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == ".." {
			return "", "", errors.New(`path must not contain a ".." segment`)
		}
	}
	clean = path.Clean(p)
	if clean == "/" {
		if !allowRoot {
			return "", "", errors.New("path must name a file, not /")
		}
		return clean, ".", nil
	}
	return clean, clean[1:], nil
}

// baseName reduces a multipart filename to a safe single name. Some
// browsers send a full client path, possibly with Windows separators.
func baseName(name string) (string, error) {
	name = path.Base(strings.ReplaceAll(name, `\`, "/"))
	if name == "." || name == ".." || name == "/" || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("invalid file name %q", name)
	}
	return name, nil
}

// trackedReader remembers whether its source reached EOF and the first
// read error, so callers can tell "client went away" from "disk failed"
// and know whether a body was left unread.
type trackedReader struct {
	r   io.Reader
	eof bool
	err error
}

func (t *trackedReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	switch {
	case err == io.EOF:
		t.eof = true
	case err != nil && t.err == nil:
		t.err = err
	}
	return n, err
}
