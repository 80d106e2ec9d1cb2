package origin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// dStor's chunked folder uploads: a folder of many files is sent as N
// multipart requests ("chunks") under one upload token, and the origin
// says nothing of it until the last chunk is in. Routes, under {prefix}
// (Config.DstorPrefix, default "/v1/upload"):
//
//	POST {prefix}/get-token    body {"chunks_number":N,"folder_path":"/dir"}  -> 200 {"message":"ok","token":"…"}
//	POST {prefix}/             multipart/form-data, one or many files         -> 200 {"message":"ok"}
//	GET  {prefix}/get-status/                                                 -> 200 DstorStatus
//
// (each also without its trailing slash, or with one). Every request
// carries an Authorization header: any non-empty value, or with
// Config.APIKeys set one of the keys, raw or as "Bearer <key>" (401
// without). The credential (the bearer token, else the whole value) owns
// the uploads it makes: asked with another credential, an upload does not
// exist (404 "upload not found"). The chunk and status routes name the
// upload by its token in the x-dstor-upload-token header (400 without).
//
// The token request's body is JSON, or the same fields as an urlencoded
// or multipart form (by its Content-Type; JSON when it names neither), at
// most 64 KiB: chunks_number is a whole number from 1 to DstorMaxChunks
// (in JSON a number or a string of digits), folder_path an absolute path
// where the folder is stored ("/" is the tree's root; the origin's own
// directories .dstor, .sandbox and .tus are refused). It is answered
// {"message":"ok","token":"<token>"}.
//
// A chunk is multipart/form-data: every part with a file name is a file,
// whatever its field name, and its file name (as sent, not reduced to its
// last element) is the file's path in the folder: "2024/img_1.jpg". A
// leading "/" or "./" is dropped and "\" is taken for "/"; a path with a
// ".." segment, a NUL, or an element over 255 bytes is refused (400), as
// is a chunk without a file. Parts without a file name are skipped. A
// path that makes a file of another's directory ("a" and "a/b") is
// refused (409) whichever came first; a path sent again replaces the
// earlier file. A chunk's files are kept apart in a temp folder,
// {Dir}/.dstor/<token>/, and count only once the chunk is answered 200 —
// a chunk refused for any reason (the test hooks included) leaves nothing
// behind and can be sent again. A chunk beyond chunks_number, counting
// those being received, is refused with 409.
//
// The token request and the chunks are answered {"message":"…"}: "ok",
// or why they were refused: 400 (a bad body, chunk or header), 401, 404
// (no such upload for this credential), 405, 409 (a chunk too many, or a
// path conflict), 413 (a token body over 64 KiB), 500, 503 (the origin
// is closing).
//
// The status route always answers a DstorStatus. While chunks are still
// expected it is {"status":"PENDING"} and nothing more: the origin knows
// nothing of the upload until its last chunk. Once chunks_number chunks
// have been answered 200 the upload moves on by itself: ADDING_TO_IPFS,
// then SAVING_DATA (each lasting Config.DstorStageDelay), then DONE with
// its data (the folder and its files, each with a CID), the files moved
// from the temp folder to folder_path (replacing files of the same path);
// or ERROR with errorExplanation and errorAtStage, the files not moved
// (when a file of the tree is in the way, or when asked to):
//
//	{"status":"PENDING"}
//	{"status":"ADDING_TO_IPFS"}
//	{"status":"SAVING_DATA"}
//	{"status":"DONE","data":{"folderPath":"/photos","files":[{"path":"2024/img_1.jpg","size":52341,"cid":"bafkrei…"}]}}
//	{"status":"ERROR","errorExplanation":"/photos is not a directory","errorAtStage":"SAVING_DATA"}
//
// Errors of the status route are a DstorStatus as well:
// {"status":"ERROR","errorExplanation":"upload not found","errorAtStage":"UPLOADING"}
// with 401, 400 or 404, so that a client polling until DONE or ERROR
// stops.
//
// Test hooks: DelayHeader and FailHeader apply to all three routes, after
// the credential is checked and before anything else; FailHeader's answer
// says "forced failure" (a chunk so failed is read to its end, kept
// nowhere, and can be sent again). The token request may carry DstorFailStageHeader
// naming a stage (ADDING_TO_IPFS or SAVING_DATA) at whose end the upload
// ends in ERROR; Config.DstorFailStage does so for every upload.
//
// An upload is forgotten, its temp folder removed, Config.DstorTTL after
// it last changed (a chunk in, its stages done); then its token is
// unknown (404).

// DefaultDstorPrefix is where the dStor API is mounted by default.
const DefaultDstorPrefix = "/v1/upload"

// DstorDir is the directory under Config.Dir where the chunks of open
// uploads are kept, one directory per token.
const DstorDir = ".dstor"

// Header names of the dStor routes.
const (
	// DstorTokenHeader names the upload of a chunk or status request.
	DstorTokenHeader = "X-Dstor-Upload-Token"
	// DstorFailStageHeader, on a token request, makes that upload end in
	// ERROR at the end of the stage it names.
	DstorFailStageHeader = "X-Origin-Fail-Stage"
)

// DstorMaxChunks bounds chunks_number.
const DstorMaxChunks = 1_000_000

// Statuses of an upload, as DstorStatus.Status gives them. An upload is
// PENDING until its last chunk, then ADDING_TO_IPFS, SAVING_DATA, and DONE
// or ERROR. UPLOADING is never an upload's status at the origin: it is
// the errorAtStage of the status route's own errors, as the proxy's.
const (
	DstorPending      = "PENDING"
	DstorUploading    = "UPLOADING"
	DstorAddingToIPFS = "ADDING_TO_IPFS"
	DstorSavingData   = "SAVING_DATA"
	DstorDone         = "DONE"
	DstorError        = "ERROR"
)

// Defaults of the dStor settings.
const (
	defaultDstorStageDelay = 200 * time.Millisecond
	defaultDstorTTL        = time.Hour
	// maxDstorTokenBody bounds the body of a token request.
	maxDstorTokenBody = 64 << 10
)

// DstorMessage is the answer of the token and chunk routes: Message "ok"
// (with the token, for a token request) or why the request was refused.
type DstorMessage struct {
	Message string `json:"message"`
	Token   string `json:"token,omitempty"`
}

// DstorStatus is the answer of the status route. Data is set once the
// upload is DONE; ErrorExplanation and ErrorAtStage once it is ERROR
// (and in the route's own errors).
type DstorStatus struct {
	Status           string       `json:"status"`
	Data             *DstorResult `json:"data,omitempty"`
	ErrorExplanation string       `json:"errorExplanation,omitempty"`
	ErrorAtStage     string       `json:"errorAtStage,omitempty"`
}

// DstorResult is what a DONE upload stored: the folder and its files,
// sorted by path.
type DstorResult struct {
	FolderPath string      `json:"folderPath"`
	Files      []DstorFile `json:"files"`
}

// DstorFile is a stored file: its path in the folder, its size, and its
// CID: the CIDv1 (raw, sha2-256) its bytes have as one IPFS block.
type DstorFile struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	CID  string `json:"cid"`
}

// dstorAuthenticate is the WWW-Authenticate header of a 401.
const dstorAuthenticate = `Bearer realm="dstor"`

// dstorErr is an error the dStor routes answer with its status and
// message, in the shape of the route.
type dstorErr struct {
	status int
	msg    string
}

func (e *dstorErr) Error() string { return e.msg }

func dsErr(status int, format string, args ...any) *dstorErr {
	return &dstorErr{status: status, msg: fmt.Sprintf(format, args...)}
}

var errDstorNotFound = dsErr(http.StatusNotFound, "upload not found")

// dstorRoute is which of the dStor routes a path names.
type dstorRoute int

const (
	dstorNoRoute dstorRoute = iota
	dstorTokenRoute
	dstorChunkRoute
	dstorStatusRoute
)

// isDstor reports whether p is under the dStor routes.
func (s *Server) isDstor(p string) bool {
	return p == s.dstor.prefix || strings.HasPrefix(p, s.dstor.prefix+"/")
}

func (s *Server) dstorRouteOf(p string) dstorRoute {
	switch strings.TrimSuffix(strings.TrimPrefix(p, s.dstor.prefix), "/") {
	case "":
		return dstorChunkRoute
	case "/get-token":
		return dstorTokenRoute
	case "/get-status":
		return dstorStatusRoute
	}
	return dstorNoRoute
}

// dstorReply answers err in the shape of route rt: a DstorStatus on the
// status route, a DstorMessage elsewhere. An error that is not a dstorErr
// is a 500 whose details are logged.
func (s *Server) dstorReply(r *http.Request, rt dstorRoute, err error) reply {
	var de *dstorErr
	if !errors.As(err, &de) {
		s.logf("origin: %s %s: %v", r.Method, r.URL.RequestURI(), err)
		de = dsErr(http.StatusInternalServerError, "internal error")
	}
	rep := reply{status: de.status, body: DstorMessage{Message: de.msg}}
	if rt == dstorStatusRoute {
		rep.body = DstorStatus{Status: DstorError, ErrorExplanation: de.msg, ErrorAtStage: DstorUploading}
	}
	if de.status == http.StatusUnauthorized {
		rep.header = map[string]string{"WWW-Authenticate": dstorAuthenticate}
	}
	return rep
}

// serveDstor answers a request under the dStor routes: route, method,
// credential, test hooks, then the work.
func (s *Server) serveDstor(r *http.Request) reply {
	rt := s.dstorRouteOf(r.URL.Path)
	want := http.MethodPost
	switch rt {
	case dstorNoRoute:
		return s.dstorReply(r, rt, dsErr(http.StatusNotFound, "not found"))
	case dstorStatusRoute:
		want = http.MethodGet
	}
	if r.Method != want && !(want == http.MethodGet && r.Method == http.MethodHead) {
		rep := s.dstorReply(r, rt, dsErr(http.StatusMethodNotAllowed, "method not allowed"))
		rep.allow = want
		if want == http.MethodGet {
			rep.allow = "GET, HEAD"
		}
		return rep
	}
	owner, err := s.dstorOwner(r)
	if err != nil {
		return s.dstorReply(r, rt, err)
	}
	delay, derr := parseDelay(r.Header.Get(DelayHeader))
	if derr != nil {
		return s.dstorReply(r, rt, dsErr(http.StatusBadRequest, "%v", derr))
	}
	var rep reply
	if v := r.Header.Get(FailHeader); v != "" {
		code, cerr := strconv.Atoi(strings.TrimSpace(v))
		if cerr != nil || code < 400 || code > 599 {
			rep = s.dstorReply(r, rt, dsErr(http.StatusBadRequest, "invalid %s %q: want a status between 400 and 599", FailHeader, v))
		} else {
			// Read to the end, so the failure comes after a whole chunk.
			_, _ = io.Copy(io.Discard, r.Body)
			rep = s.dstorReply(r, rt, dsErr(code, "forced failure"))
		}
	} else {
		rep = s.dstorWork(r, rt, owner)
	}
	rep.delay = delay
	return rep
}

func (s *Server) dstorWork(r *http.Request, rt dstorRoute, owner string) reply {
	if rt == dstorTokenRoute {
		token, err := s.createDstorUpload(r, owner)
		if err != nil {
			return s.dstorReply(r, rt, err)
		}
		return reply{status: http.StatusOK, body: DstorMessage{Message: "ok", Token: token}}
	}
	token := strings.TrimSpace(r.Header.Get(DstorTokenHeader))
	if token == "" {
		return s.dstorReply(r, rt, dsErr(http.StatusBadRequest, "missing %s header", strings.ToLower(DstorTokenHeader)))
	}
	if rt == dstorStatusRoute {
		st, err := s.dstorStatus(token, owner)
		if err != nil {
			return s.dstorReply(r, rt, err)
		}
		return reply{status: http.StatusOK, body: st}
	}
	if err := s.putDstorChunk(r, token, owner); err != nil {
		return s.dstorReply(r, rt, err)
	}
	return reply{status: http.StatusOK, body: DstorMessage{Message: "ok"}}
}

// dstorOwner is the request's credential, or why it has no acceptable
// one: the token of "Bearer <token>", else the Authorization header's
// whole value.
func (s *Server) dstorOwner(r *http.Request) (string, error) {
	v := strings.TrimSpace(r.Header.Get("Authorization"))
	if scheme, token, ok := strings.Cut(v, " "); ok && strings.EqualFold(scheme, "Bearer") {
		v = strings.TrimSpace(token)
	}
	if v == "" {
		return "", dsErr(http.StatusUnauthorized, "missing Authorization header")
	}
	if len(s.keys) > 0 && !s.validKey(v) {
		return "", dsErr(http.StatusUnauthorized, "invalid credential")
	}
	return v, nil
}

// dstorTokenRequest is what a token request asks for.
type dstorTokenRequest struct {
	chunks int
	folder string // as sent
}

// readDstorTokenRequest reads a token request's body: JSON, an urlencoded
// form or a multipart form, by its Content-Type.
func readDstorTokenRequest(r *http.Request) (dstorTokenRequest, error) {
	bad := func(format string, args ...any) (dstorTokenRequest, error) {
		return dstorTokenRequest{}, dsErr(http.StatusBadRequest, format, args...)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxDstorTokenBody+1))
	if err != nil {
		return bad("reading the body: %v", err)
	}
	if len(body) > maxDstorTokenBody {
		return dstorTokenRequest{}, dsErr(http.StatusRequestEntityTooLarge, "the body is over %d bytes", maxDstorTokenBody)
	}
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var chunks, folder string
	var have [2]bool
	switch mt {
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return bad("invalid form body: %v", err)
		}
		chunks, have[0] = form.Get("chunks_number"), form.Has("chunks_number")
		folder, have[1] = form.Get("folder_path"), form.Has("folder_path")
	case "multipart/form-data":
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				return bad("invalid multipart body: %v", err)
			}
			v, err := io.ReadAll(part)
			if err != nil {
				return bad("invalid multipart body: %v", err)
			}
			switch part.FormName() {
			case "chunks_number":
				chunks, have[0] = string(v), true
			case "folder_path":
				folder, have[1] = string(v), true
			}
		}
	default:
		var req struct {
			Chunks json.RawMessage `json:"chunks_number"`
			Folder *string         `json:"folder_path"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return bad("invalid JSON body: %v", err)
		}
		if req.Chunks != nil {
			have[0] = true
			chunks = string(req.Chunks)
			if s, err := strconv.Unquote(chunks); err == nil {
				chunks = s
			}
		}
		if req.Folder != nil {
			folder, have[1] = *req.Folder, true
		}
	}
	switch {
	case !have[0]:
		return bad("chunks_number is required")
	case !have[1]:
		return bad("folder_path is required")
	}
	n, err := strconv.Atoi(strings.TrimSpace(chunks))
	if err != nil || n < 1 || n > DstorMaxChunks {
		return bad("chunks_number must be a whole number from 1 to %d", DstorMaxChunks)
	}
	return dstorTokenRequest{chunks: n, folder: folder}, nil
}
