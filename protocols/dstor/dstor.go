// Package dstor tracks dStor's chunked folder uploads (seed 003): a folder
// of many files goes up as N multipart requests ("chunks") under one
// token, and the origin says nothing until the last chunk has arrived. The
// proxy sees every chunk go by and answers get-status itself, in the
// origin's vocabulary, from the first byte:
//
//	{"status":"UPLOADING","chunksNumber":100,"chunksUploaded":37,"chunksInFlight":2,"bytesUploaded":812646400,"filesUploaded":3712,"currentFile":"2024/img_3713.jpg","folderPath":"/photos"}
//
// Once every chunk is in, get-status passes to the origin, whose answers
// come back with the proxy's final counts added.
package dstor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
	"github.com/caddy-upload-progress/caddy-upload-progress/protocol"
)

func init() {
	caddy.RegisterModule(Dstor{})
}

// Dstor is dStor's chunked folder upload. Sessions are keyed by their
// upload token and bound to the Authorization header. Status: get-status
// (answered by the proxy while chunks are expected, by the origin then)
// and its WebSocket at `{prefix}/get-status/ws`.
type Dstor struct {
	protocol.Config

	// prefix (default `/v1/upload`), origin (once every chunk is in, the
	// origin is asked how a watched upload stands: ADDING_TO_IPFS,
	// SAVING_DATA, DONE or ERROR), session_timeout.
	protocol.SessionOptions
}

// CaddyModule returns the Caddy module information.
func (Dstor) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  protocol.Namespace + ".dstor",
		New: func() caddy.Module { return new(Dstor) },
	}
}

// Provision sets the defaults.
func (d *Dstor) Provision(caddy.Context) error {
	if err := d.ProvisionSessions("/v1/upload", "/get-status/"); err != nil {
		return err
	}
	// get-status is an exchange (the proxy's answer, or the origin's
	// with counts added); its WebSocket is a fixed path.
	d.SetDefaults("", d.Prefix+"/get-status/ws")
	return nil
}

// Validate checks the options.
func (d *Dstor) Validate() error {
	if err := d.ValidateSessions(); err != nil {
		return err
	}
	if d.StatusPath != "" {
		return fmt.Errorf("status_path does not apply: the status route is get-status under the prefix")
	}
	return nil
}

// Cleanup lets go of the origin's idle connections.
func (d *Dstor) Cleanup() error {
	d.CleanupSessions()
	return nil
}

// The requests of the flow.
const (
	routeNone = iota
	routeToken
	routeChunk
	routeStatus
)

func (d *Dstor) routeOf(r *http.Request) int {
	switch p := r.URL.Path; {
	case r.Method == http.MethodPost && (p == d.Prefix+"/get-token" || p == d.Prefix+"/get-token/"):
		return routeToken
	case r.Method == http.MethodPost && (p == d.Prefix || p == d.Prefix+"/"):
		return routeChunk
	case (r.Method == http.MethodGet || r.Method == http.MethodHead) && (p == d.Prefix+"/get-status" || p == d.Prefix+"/get-status/"):
		return routeStatus
	}
	return routeNone
}

// Tracks implements protocol.Protocol.
func (d *Dstor) Tracks(r *http.Request) bool { return d.routeOf(r) != routeNone }

// Key implements protocol.Protocol: the upload token.
func (*Dstor) Key(r *http.Request) string { return r.Header.Get(HeaderToken) }

// Credential implements protocol.Owned: the Authorization header.
func (*Dstor) Credential(r *http.Request) string { return r.Header.Get("Authorization") }

// CredentialName implements protocol.Owned.
func (*Dstor) CredentialName() string { return "Authorization header" }

// Exchange implements protocol.Sessions.
func (d *Dstor) Exchange(r *http.Request) (*protocol.Exchange, bool) {
	switch d.routeOf(r) {
	case routeToken:
		return d.token(r), true
	case routeChunk:
		return chunk(r), true
	case routeStatus:
		return status(r), true
	}
	return nil, false
}

// token reads a get-token request and its answer: the session exists from
// the moment the answer passes, with what the request declared.
func (d *Dstor) token(r *http.Request) *protocol.Exchange {
	contentType := r.Header.Get("Content-Type")
	idle := d.Idle()
	return &protocol.Exchange{ReadRequest: true, ReadBody: true, Answer: func(a *protocol.Answered) {
		if a.Status < 200 || a.Status >= 300 {
			return
		}
		tok, ok := ParseTokenAnswer(a.Body)
		if !ok {
			return
		}
		req, ok := ParseTokenRequest(contentType, a.Request)
		if !ok {
			return
		}
		rec := a.Open(tok, progress.SessionSpec{Total: -1, Idle: idle})
		if rec == nil {
			return
		}
		u := &upload{chunks: req.ChunksNumber, folder: req.FolderPath}
		rec.SetDetail(u, u.size())
	}}
}

// chunk reads a chunk: its multipart body streams into the session of its
// token, if the proxy holds one under the request's credential (another
// credential's chunk neither counts nor changes it).
func chunk(r *http.Request) *protocol.Exchange {
	tok := r.Header.Get(HeaderToken)
	if tok == "" {
		return &protocol.Exchange{}
	}
	return &protocol.Exchange{Key: tok, Stream: true, From: -1, Files: true, ReadBody: true, Answer: func(a *protocol.Answered) {
		rec := a.Session
		if rec == nil {
			return
		}
		if a.Status >= 200 && a.Status < 300 {
			a.EndStream()
			rec.SetError("")
			return
		}
		a.Accepted = false
		a.EndStream()
		rec.SetError(chunkRefusal(a))
	}}
}

// chunkRefusal says why the origin refused a chunk, in its words where its
// answer has them.
func chunkRefusal(a *protocol.Answered) string {
	if a.Status == 0 {
		return "chunk not delivered: " + a.Outcome.Error
	}
	if m := message(a.Body); m != "" {
		return m
	}
	return fmt.Sprintf("chunk answered %d %s", a.Status, http.StatusText(a.Status))
}

// status reads get-status: answered by the proxy while chunks are still
// expected, passed to the origin then, its answer with the counts added.
func status(r *http.Request) *protocol.Exchange {
	tok := uploadToken(r)
	if tok == "" {
		return &protocol.Exchange{Status: true, Local: func(*progress.Record, progress.Snapshot) (int, any, bool) {
			return http.StatusBadRequest, Status{Status: "ERROR", ErrorExplanation: missingToken(r), ErrorAtStage: stageUploading}, true
		}}
	}
	return &protocol.Exchange{
		Key:    tok,
		Status: true,
		Local: func(rec *progress.Record, view progress.Snapshot) (int, any, bool) {
			if rec == nil {
				return http.StatusNotFound, notFound(), true
			}
			if snap := view; !allIn(snap) {
				return http.StatusOK, StatusOf(snap), true
			}
			return 0, nil, false
		},
		Rewrite: true,
		Answer: func(a *protocol.Answered) {
			if a.Session == nil || a.Status != http.StatusOK {
				return
			}
			keepOrigin(a, a.Body)
			if b := WithCounts(a.Body, a.View()); b != nil {
				a.Replace = b
			}
		},
	}
}

// keepOrigin keeps the origin's status object with the session, and ends
// the session when it says DONE or ERROR. An object too long to keep (a
// DONE listing thousands of files) is kept as its status members, which
// watchers then get with the counts; obj may be the start of it only.
// The same object again changes nothing: watchers hear of a change, and
// the origin's answer to the proxy's own asking, once a second while a
// stage lasts, is none.
func keepOrigin(a *protocol.Answered, obj []byte) {
	rec := a.Session
	u, ok := rec.Snapshot().Detail.(*upload)
	if !ok || len(obj) == 0 {
		return
	}
	kept := obj
	if len(obj) > maxOrigin {
		st := originStatus(obj)
		if st.Status == "" {
			return
		}
		kept, _ = json.Marshal(st)
	}
	st, why, ends := originState(obj)
	if !bytes.Equal(kept, u.origin) {
		next := &upload{chunks: u.chunks, folder: u.folder, origin: bytes.Clone(kept)}
		if ends {
			// The end wakes the watchers, who see this object with it.
			rec.SetFinalDetail(next, next.size())
		} else {
			rec.SetDetail(next, next.size())
		}
	}
	if ends {
		a.End(progress.SessionEnded(st, why, a.Status))
	}
}

// maxOrigin bounds the origin's status object the proxy keeps whole.
const maxOrigin = 16 << 10

// ParseStatus implements protocol.Protocol: the watcher's upload token.
func (*Dstor) ParseStatus(r *http.Request) (progress.StatusQuery, *progress.Failure) {
	tok := uploadToken(r)
	if tok == "" {
		return progress.StatusQuery{}, progress.BadRequestf("%s", missingToken(r))
	}
	if err := progress.CheckKey(tok); err != nil {
		return progress.StatusQuery{}, progress.BadRequestf("%s %v", HeaderToken, err)
	}
	return progress.StatusQuery{Key: tok, Step: 1}, nil
}

// missingToken says what a status request that names no upload lacks.
func missingToken(r *http.Request) string {
	if byWatchToken(r) {
		return "missing query parameter: " + TokenParam + " (the upload token)"
	}
	return "missing " + HeaderToken + " header"
}

// byWatchToken reports whether a status request carries a watch token.
func byWatchToken(r *http.Request) bool {
	v, _ := progress.QueryValue(r.URL.RawQuery, "watch_token")
	return v != "" && v != "1"
}

// TokenParam is the query parameter that names the upload token of a
// status request that carries a watch token (watch_token) in place of
// the credential: a page that can set no header (an EventSource, a
// WebSocket) names the upload there.
const TokenParam = "token"

// uploadToken is the upload token a status request names: its header,
// or, for a request with a watch token, its token query parameter.
func uploadToken(r *http.Request) string {
	if tok := r.Header.Get(HeaderToken); tok != "" {
		return tok
	}
	if !byWatchToken(r) {
		return ""
	}
	tok, _ := progress.QueryValue(r.URL.RawQuery, TokenParam)
	return tok
}

// Render implements protocol.Protocol: the proxy's object while chunks
// are expected, the origin's with counts once it knows the upload.
func (*Dstor) Render(snap progress.Snapshot) any {
	if u, ok := snap.Detail.(*upload); ok && u.origin != nil && snap.Session != nil {
		if b := WithCounts(u.origin, snap); b != nil {
			return rawJSON(b)
		}
	}
	return StatusOf(snap)
}

// StatusCode implements protocol.StatusCoder: 404 for an unknown token.
func (*Dstor) StatusCode(snap progress.Snapshot) int {
	if !snap.Found || snap.Session == nil {
		return http.StatusNotFound
	}
	return http.StatusOK
}

// Fail implements protocol.Protocol: the origin's error shape.
func (*Dstor) Fail(f *progress.Failure) (int, any) {
	return f.HTTPStatus(), Status{Status: "ERROR", ErrorExplanation: f.Message, ErrorAtStage: stageUploading}
}

// Refresh implements protocol.Refresher: once every chunk is in, the
// origin's get-status, asked with the watcher's credential and token.
func (d *Dstor) Refresh(ctx context.Context, r *http.Request, a *protocol.Answered) (string, error) {
	if d.AskedOrigin() == nil || !allIn(a.Session.Snapshot()) {
		return "", nil
	}
	// The start of a long answer is enough: its status comes first.
	status, body, refused, err := d.AskedOrigin().Ask(ctx, d.Prefix+"/get-status/",
		http.Header{"Authorization": {r.Header.Get("Authorization")}, HeaderToken: {a.Session.Key()}}, protocol.MaxAnswer)
	if refused != "" || err != nil {
		return refused, err
	}
	a.Status = status
	keepOrigin(a, body)
	return "", nil
}

// UnmarshalCaddyfile sets up the protocol from Caddyfile tokens:
//
//	protocol dstor {
//		owner           <template> | off
//		prefix          <path>
//		origin          <base URL>
//		session_timeout <duration>
//		websocket_path  <path...>
//	}
func (d *Dstor) UnmarshalCaddyfile(disp *caddyfile.Dispenser) error {
	return d.UnmarshalBlock(disp, "dstor", d.UnmarshalSessionOption)
}

// Interface guards
var (
	_ protocol.Protocol     = (*Dstor)(nil)
	_ protocol.Owned        = (*Dstor)(nil)
	_ protocol.Sessions     = (*Dstor)(nil)
	_ protocol.StatusCoder  = (*Dstor)(nil)
	_ protocol.Refresher    = (*Dstor)(nil)
	_ caddy.Provisioner     = (*Dstor)(nil)
	_ caddy.Validator       = (*Dstor)(nil)
	_ caddy.CleanerUpper    = (*Dstor)(nil)
	_ caddyfile.Unmarshaler = (*Dstor)(nil)
)
