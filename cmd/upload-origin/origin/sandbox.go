package origin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The sandbox's resumable upload sessions: a file (or a directory as a tar
// archive) is sent in numbered parts, possibly several at once, then
// assembled at its target path. Routes, under {prefix} (Config.SandboxPrefix,
// default "/v1"):
//
//	POST   {prefix}/sandboxes/{id}/uploads                          JSON SandboxCreateRequest -> 201 SandboxUpload
//	PUT    {prefix}/sandboxes/{id}/uploads/{upload_id}/parts/{n}    raw part n                -> 200 SandboxUpload
//	POST   {prefix}/sandboxes/{id}/uploads/{upload_id}/complete[?mode=async|sync]             -> 202|200 SandboxUpload
//	DELETE {prefix}/sandboxes/{id}/uploads/{upload_id}                                        -> 204
//	GET    {prefix}/sandboxes/{id}/uploads/{upload_id}                                        -> 200 SandboxUpload
//
// Every request carries Authorization: Bearer <token> (401 without one;
// with Config.APIKeys set the token must be one of them). A session
// belongs to the token that created it: asked with another token, it does
// not exist (404). Every error is a SandboxErrorResponse:
// {"error":{"code":"…","message":"…"}}, the codes being the Sandbox…Code
// constants. The test hooks (DelayHeader, FailHeader) apply, after the
// credential is checked.
//
// A session goes created → uploading (a part is in) → staged (all are in)
// → completing → completed, or ends aborted (DELETE), expired (expires_at
// passed before it completed), or failed (it could not be assembled: the
// target is in the way, a broken archive).
//
// Parts: n from 1 to part_count; every part is part_size bytes but the
// last, which holds the rest. A part's body is read up to
// limits.max_part_bytes + 1 bytes: beyond max_part_bytes the part is
// refused with 413, another size than the part's with 400 (both at once
// when Content-Length says so). A part sent again replaces the earlier one
// and counts once. More than the session's max_concurrency parts at once:
// 429. Parts are staged on disk in SandboxDir until completion.
//
// Completion needs every part (else 409). Asynchronous completion (the
// default, or Config.SandboxCompletion "async", or ?mode=async) answers 202
// with status completing and finishes Config.SandboxCompleteDelay later;
// synchronous completion ("sync") answers 200 completed at once, or the
// error that failed the session. A completed session has
// whole_checksum_sha256, the SHA-256 of all its bytes (of the archive for
// directory_tar). A file is stored at target_path in the tree (GET
// /fso?path= serves it); a directory_tar archive is unpacked into the
// directory target_path (regular files and directories; links and devices
// are skipped). conflict says what happens when target_path is taken:
// "error" refuses the creation (409) and fails the completion, "replace"
// puts the upload in its place, "merge" adds a directory's files to the
// existing directory (replacing files of the same name; for a file it is
// "replace").
//
// Fields: reserved_staging_bytes is content_length until the session ends
// (completed, aborted, expired, failed), then 0; next_part is the lowest
// part not yet accepted, 0 once all are; accepted_bytes is the sum of the
// accepted parts. Timestamps are RFC 3339 in UTC.
//
// DELETE aborts a created, uploading or staged session (204); aborted or
// failed already, it answers 204 and changes nothing; completing or
// completed, 409; expired, 410. Parts and completion of an expired session
// answer 410, of a session that is otherwise over 409. A session that
// ended stays answerable, status and all, until one SandboxTTL after its
// expires_at; then it is forgotten (404). Tests expire a session at once
// with Server.ExpireSandboxUpload, or move Config.Now on.

// DefaultSandboxPrefix is where the sandbox API is mounted by default.
const DefaultSandboxPrefix = "/v1"

// SandboxDir is the directory under Config.Dir where the parts of open
// sessions are staged, one directory per session. Target paths inside it
// are refused.
const SandboxDir = ".sandbox"

// SandboxMaxParts bounds part_count, so that a tiny part_size cannot make
// a session that costs memory by the gigabyte.
const SandboxMaxParts = 10000

// DefaultSandboxLimits are the limits of a Config that sets none.
var DefaultSandboxLimits = SandboxLimits{
	MaxUploadBytes:    1 << 30,
	MaxPartBytes:      64 << 20,
	MaxConcurrency:    8,
	StagingQuotaBytes: 2 << 30,
}

// Defaults of the other sandbox settings.
const (
	defaultSandboxTTL           = time.Hour
	defaultSandboxCompleteDelay = 300 * time.Millisecond
	defaultSandboxConcurrency   = 4
	// maxSandboxCreateBody bounds the JSON body of a creation.
	maxSandboxCreateBody = 64 << 10
)

// SandboxLimits are the limits of the sandbox's upload sessions, as every
// session reports them.
type SandboxLimits struct {
	// MaxUploadBytes bounds content_length.
	MaxUploadBytes uint64 `json:"max_upload_bytes"`
	// MaxPartBytes bounds part_size and the body of a part.
	MaxPartBytes uint64 `json:"max_part_bytes"`
	// MaxConcurrency bounds a session's max_concurrency.
	MaxConcurrency uint32 `json:"max_concurrency"`
	// StagingQuotaBytes bounds the reserved_staging_bytes of a sandbox's
	// open sessions together.
	StagingQuotaBytes uint64 `json:"sandbox_staging_quota_bytes"`
}

// Session kinds, source kinds, statuses and conflict policies.
const (
	SandboxKindFile         = "file"
	SandboxKindDirectoryTar = "directory_tar"

	SandboxSourceRestartableFile  = "restartable_file"
	SandboxSourceDirectoryArchive = "directory_archive"

	SandboxCreated    = "created"
	SandboxUploading  = "uploading"
	SandboxStaged     = "staged"
	SandboxCompleting = "completing"
	SandboxCompleted  = "completed"
	SandboxAborted    = "aborted"
	SandboxExpired    = "expired"
	SandboxFailed     = "failed"

	SandboxConflictMerge   = "merge"
	SandboxConflictReplace = "replace"
	SandboxConflictError   = "error"
)

// SandboxUpload is an upload session as every answer but DELETE's gives it:
// the fields of the sandbox's status route.
type SandboxUpload struct {
	UploadID             string        `json:"upload_id"`
	Kind                 string        `json:"kind"`
	SourceKind           string        `json:"source_kind"`
	TargetPath           string        `json:"target_path"`
	ContentLength        uint64        `json:"content_length"`
	AcceptedBytes        uint64        `json:"accepted_bytes"`
	ReservedStagingBytes uint64        `json:"reserved_staging_bytes"`
	PartSize             uint64        `json:"part_size"`
	PartCount            uint32        `json:"part_count"`
	MaxConcurrency       uint32        `json:"max_concurrency"`
	Status               string        `json:"status"`
	Conflict             string        `json:"conflict"`
	ChecksumAlgorithm    string        `json:"checksum_algorithm"`
	Limits               SandboxLimits `json:"limits"`
	CreatedAt            time.Time     `json:"created_at"`
	UpdatedAt            time.Time     `json:"updated_at"`
	ExpiresAt            time.Time     `json:"expires_at"`
	// User is the creation's user, omitted when it named none.
	User string `json:"user,omitempty"`
	// NextPart is the lowest part not accepted yet, 0 once all are.
	NextPart uint32 `json:"next_part"`
	// ArchiveFormat is "tar" for directory_tar, omitted for a file.
	ArchiveFormat string `json:"archive_format,omitempty"`
	// WholeChecksumSHA256 is set once the session completed.
	WholeChecksumSHA256 string `json:"whole_checksum_sha256,omitempty"`
}

// SandboxCreateRequest is the body of a creation. Every field but
// MaxConcurrency (default 4, at most limits.max_concurrency),
// ArchiveFormat ("tar", the default, for directory_tar only) and User is
// required.
type SandboxCreateRequest struct {
	TargetPath     *string `json:"target_path"`
	ContentLength  *uint64 `json:"content_length"`
	PartSize       *uint64 `json:"part_size"`
	Kind           *string `json:"kind"`
	Conflict       *string `json:"conflict"`
	MaxConcurrency *uint32 `json:"max_concurrency,omitempty"`
	ArchiveFormat  *string `json:"archive_format,omitempty"`
	User           *string `json:"user,omitempty"`
}

// SandboxErrorResponse is the body of every error of the sandbox routes.
type SandboxErrorResponse struct {
	Error SandboxError `json:"error"`
}

// SandboxError says what went wrong: Code for programs, Message for people.
type SandboxError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes of the sandbox routes, with the status they come with.
const (
	SandboxInvalidRequestCode = "invalid_request"          // 400: bad creation body, bad ?mode=, bad test hook
	SandboxInvalidPartCode    = "invalid_part_number"      // 400: n not in 1..part_count
	SandboxPartSizeCode       = "part_size_mismatch"       // 400: a part of another size than its own
	SandboxInterruptedCode    = "upload_interrupted"       // 400: the part's body broke off
	SandboxUnauthorizedCode   = "unauthorized"             // 401: no bearer token, or not one of Config.APIKeys
	SandboxNotFoundCode       = "not_found"                // 404: no such route, or no such session for this token
	SandboxMethodCode         = "method_not_allowed"       // 405
	SandboxTargetExistsCode   = "target_exists"            // 409: conflict "error" and target_path is taken
	SandboxTargetConflictCode = "target_conflict"          // 409: completion failed, the target is in the way
	SandboxPartsMissingCode   = "parts_missing"            // 409: complete before every part is in
	SandboxInvalidStateCode   = "invalid_state"            // 409: the session is completing, completed, aborted or failed
	SandboxExpiredCode        = "expired"                  // 410
	SandboxPartTooLargeCode   = "part_too_large"           // 413: a part beyond limits.max_part_bytes
	SandboxInvalidArchiveCode = "invalid_archive"          // 422: completion failed, the archive is not a tar
	SandboxTooManyPartsCode   = "too_many_parts_in_flight" // 429: more than max_concurrency parts at once
	SandboxQuotaCode          = "staging_quota_exceeded"   // 507: the sandbox's open sessions would pass the quota
	SandboxInternalCode       = "internal"                 // 500
	SandboxForcedFailureCode  = "forced_failure"           // FailHeader's status
)

// sandboxAuthenticate is the WWW-Authenticate header of a 401.
const sandboxAuthenticate = `Bearer realm="sandbox"`

// sandboxErr is an error the sandbox routes answer as it says.
type sandboxErr struct {
	status    int
	code, msg string
}

func (e *sandboxErr) Error() string { return e.msg }

func sbErr(status int, code, format string, args ...any) *sandboxErr {
	return &sandboxErr{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

func (e *sandboxErr) reply() reply {
	rep := reply{status: e.status, body: SandboxErrorResponse{SandboxError{Code: e.code, Message: e.msg}}}
	if e.status == http.StatusUnauthorized {
		rep.header = map[string]string{"WWW-Authenticate": sandboxAuthenticate}
	}
	return rep
}

// sandboxReply turns a handler's outcome into a reply: its error if any
// (a sandboxErr as it says, anything else a 500 whose details are logged).
func (s *Server) sandboxReply(r *http.Request, status int, up SandboxUpload, err error) reply {
	if err == nil {
		return reply{status: status, body: up}
	}
	var se *sandboxErr
	if errors.As(err, &se) {
		return se.reply()
	}
	s.logf("origin: %s %s: %v", r.Method, r.URL.RequestURI(), err)
	return sbErr(http.StatusInternalServerError, SandboxInternalCode, "internal error").reply()
}

// sandboxRoute is what a sandbox path names.
type sandboxRoute struct {
	key    sandboxKey
	action string // "create", "session", "part" or "complete"
	part   string // n of a part, as sent
}

// isSandbox reports whether p is under the sandbox routes.
func (s *Server) isSandbox(p string) bool {
	return strings.HasPrefix(p, s.sandbox.prefix+"/sandboxes/")
}

// parseSandboxRoute reads a path under the sandbox routes.
func (s *Server) parseSandboxRoute(p string) (sandboxRoute, bool) {
	segs := strings.Split(strings.TrimPrefix(p, s.sandbox.prefix+"/sandboxes/"), "/")
	for _, seg := range segs {
		if seg == "" {
			return sandboxRoute{}, false
		}
	}
	if len(segs) < 2 || segs[1] != "uploads" {
		return sandboxRoute{}, false
	}
	rt := sandboxRoute{key: sandboxKey{sandbox: segs[0]}}
	if len(segs) > 2 {
		rt.key.upload = segs[2]
	}
	switch {
	case len(segs) == 2:
		rt.action = "create"
	case len(segs) == 3:
		rt.action = "session"
	case len(segs) == 4 && segs[3] == "complete":
		rt.action = "complete"
	case len(segs) == 5 && segs[3] == "parts":
		rt.action, rt.part = "part", segs[4]
	default:
		return sandboxRoute{}, false
	}
	return rt, true
}

// sandboxMethods are the methods each route takes, as its Allow header
// lists them.
var sandboxMethods = map[string]string{
	"create":   http.MethodPost,
	"session":  "GET, DELETE",
	"part":     http.MethodPut,
	"complete": http.MethodPost,
}

// serveSandbox answers a request under the sandbox routes: route,
// credential, method, test hooks, then the work.
func (s *Server) serveSandbox(r *http.Request) reply {
	rt, ok := s.parseSandboxRoute(r.URL.Path)
	if !ok {
		return sbErr(http.StatusNotFound, SandboxNotFoundCode, "not found").reply()
	}
	token, err := s.bearer(r)
	if err != nil {
		return err.reply()
	}
	if allow := sandboxMethods[rt.action]; !slices.Contains(strings.Split(allow, ", "), r.Method) {
		rep := sbErr(http.StatusMethodNotAllowed, SandboxMethodCode, "method not allowed").reply()
		rep.allow = allow
		return rep
	}
	delay, derr := parseDelay(r.Header.Get(DelayHeader))
	if derr != nil {
		return sbErr(http.StatusBadRequest, SandboxInvalidRequestCode, "%v", derr).reply()
	}
	var rep reply
	if r.Header.Get(FailHeader) != "" {
		rep = sandboxForcedFailure(r)
	} else {
		rep = s.sandboxWork(r, rt, token)
	}
	rep.delay = delay
	return rep
}

func (s *Server) sandboxWork(r *http.Request, rt sandboxRoute, token string) reply {
	switch {
	case rt.action == "create":
		up, err := s.createSandboxUpload(r, rt.key.sandbox, token)
		rep := s.sandboxReply(r, http.StatusCreated, up, err)
		if err == nil {
			rep.header = map[string]string{"Location": s.sandbox.prefix + "/sandboxes/" + rt.key.sandbox + "/uploads/" + up.UploadID}
		}
		return rep
	case rt.action == "part":
		up, err := s.putSandboxPart(r, rt.key, token, rt.part)
		return s.sandboxReply(r, http.StatusOK, up, err)
	case rt.action == "complete":
		status, up, err := s.completeSandboxUpload(rt.key, token, r.URL.Query().Get("mode"))
		return s.sandboxReply(r, status, up, err)
	case r.Method == http.MethodDelete:
		if err := s.abortSandboxUpload(rt.key, token); err != nil {
			return s.sandboxReply(r, 0, SandboxUpload{}, err)
		}
		return reply{status: http.StatusNoContent}
	default:
		up, err := s.sandboxStatus(rt.key, token)
		return s.sandboxReply(r, http.StatusOK, up, err)
	}
}

// bearer is the request's bearer token, or why it has no acceptable one.
func (s *Server) bearer(r *http.Request) (string, *sandboxErr) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", sbErr(http.StatusUnauthorized, SandboxUnauthorizedCode, "missing Authorization: Bearer token")
	}
	if len(s.keys) > 0 && !s.validKey(token) {
		return "", sbErr(http.StatusUnauthorized, SandboxUnauthorizedCode, "invalid token")
	}
	return token, nil
}

// sandboxForcedFailure is FailHeader in the sandbox's error shape: the body
// is read to its end, then refused.
func sandboxForcedFailure(r *http.Request) reply {
	v := r.Header.Get(FailHeader)
	code, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || code < 400 || code > 599 {
		return sbErr(http.StatusBadRequest, SandboxInvalidRequestCode, "invalid %s %q: want a status between 400 and 599", FailHeader, v).reply()
	}
	_, _ = io.Copy(io.Discard, r.Body)
	return sbErr(code, SandboxForcedFailureCode, "forced failure").reply()
}

// readCreateRequest decodes and checks a creation body against limits. It
// returns the session's settings: the target cleaned, and its place in
// the tree.
func readCreateRequest(body io.Reader, limits SandboxLimits) (req SandboxCreateRequest, target, rel string, err error) {
	bad := func(format string, args ...any) error {
		return sbErr(http.StatusBadRequest, SandboxInvalidRequestCode, format, args...)
	}
	dec := json.NewDecoder(io.LimitReader(body, maxSandboxCreateBody))
	if err := dec.Decode(&req); err != nil {
		return req, "", "", bad("invalid JSON body: %v", err)
	}
	if dec.Decode(&struct{}{}) != io.EOF {
		return req, "", "", bad("invalid JSON body: more than one value")
	}
	for _, f := range []struct {
		name    string
		missing bool
	}{
		{"target_path", req.TargetPath == nil},
		{"content_length", req.ContentLength == nil},
		{"part_size", req.PartSize == nil},
		{"kind", req.Kind == nil},
		{"conflict", req.Conflict == nil},
	} {
		if f.missing {
			return req, "", "", bad("%s is required", f.name)
		}
	}
	target, rel, perr := resolve(*req.TargetPath, false)
	if perr != nil {
		return req, "", "", bad("target_path: %v", perr)
	}
	if reservedDir(rel) {
		first, _, _ := strings.Cut(rel, "/")
		return req, "", "", bad("target_path: %s is reserved", "/"+first)
	}
	switch *req.Kind {
	case SandboxKindFile:
		if req.ArchiveFormat != nil {
			return req, "", "", bad("archive_format is for kind %q only", SandboxKindDirectoryTar)
		}
	case SandboxKindDirectoryTar:
		if req.ArchiveFormat != nil && *req.ArchiveFormat != "tar" {
			return req, "", "", bad(`archive_format must be "tar"`)
		}
	default:
		return req, "", "", bad("kind must be %q or %q", SandboxKindFile, SandboxKindDirectoryTar)
	}
	switch *req.Conflict {
	case SandboxConflictMerge, SandboxConflictReplace, SandboxConflictError:
	default:
		return req, "", "", bad("conflict must be %q, %q or %q", SandboxConflictMerge, SandboxConflictReplace, SandboxConflictError)
	}
	switch size, length := *req.PartSize, *req.ContentLength; {
	case size == 0:
		return req, "", "", bad("part_size must be at least 1")
	case size > limits.MaxPartBytes:
		return req, "", "", bad("part_size %d is over limits.max_part_bytes %d", size, limits.MaxPartBytes)
	case length > limits.MaxUploadBytes:
		return req, "", "", bad("content_length %d is over limits.max_upload_bytes %d", length, limits.MaxUploadBytes)
	case partCount(length, size) > SandboxMaxParts:
		return req, "", "", bad("content_length / part_size makes more than %d parts", SandboxMaxParts)
	}
	if c := req.MaxConcurrency; c != nil && (*c == 0 || *c > limits.MaxConcurrency) {
		return req, "", "", bad("max_concurrency must be from 1 to limits.max_concurrency %d", limits.MaxConcurrency)
	}
	return req, target, rel, nil
}

// partCount is how many parts of size make length: at least one, so an
// empty upload is one empty part.
func partCount(length, size uint64) uint64 {
	n := length / size
	if length%size != 0 {
		n++
	}
	return max(1, n)
}
