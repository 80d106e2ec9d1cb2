package caddymodule

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress/multipart"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
	protocolapi "github.com/caddy-upload-progress/caddy-upload-progress/protocol"
)

// serveExchange passes a request of a session protocol on to next, counting
// its body into its session where it is one of the session's streams, and
// lets the protocol learn from the origin's answer. As for any upload, the
// request goes on unchanged whatever happens to tracking.
func (h *Handler) serveExchange(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, p *protocol) error {
	ex, ok := p.sessions.Exchange(r)
	if !ok {
		return next.ServeHTTP(w, r)
	}
	var wantsToken bool
	if ex.Status {
		token, f := watchTokenOf(r, p)
		if f != nil {
			return h.refuse(w, r, p, transportREST, f)
		}
		if token != "" && token != "1" {
			return h.serveStatusByToken(w, r, p, ex.Key, token)
		}
		wantsToken = token == "1" && ex.Key != ""
	}
	owner, f := p.ownerOf(r, h.tracker())
	if f != nil {
		if ex.Local != nil {
			// A route the proxy answers refuses a request without the
			// credential, as the origin would.
			return h.refuse(w, r, p, transportREST, f)
		}
		if ex.Stream {
			return h.passUntracked(w, r, next, p, progress.UntrackedNoCredential, f)
		}
		return next.ServeHTTP(w, r)
	}
	x := &exchange{h: h, p: p, r: r, ex: ex, owner: owner, started: time.Now()}
	x.ans = protocolapi.NewAnswered(x)
	if ex.Key != "" {
		if err := progress.CheckKey(ex.Key); err != nil {
			return h.passUntracked(w, r, next, p, progress.UntrackedInvalidKey, errors.New("key "+err.Error()))
		}
		if ex.Open {
			rec, _, err := h.tracker().OpenSession(owner, ex.Key, ex.Spec)
			if err != nil {
				return h.passUntracked(w, r, next, p, h.untrackedReason(p, err), err)
			}
			x.ans.Session = rec
		} else {
			x.ans.Session = h.tracker().FindSession(owner, ex.Key)
		}
	}
	if ex.Local != nil {
		if code, body, ok := ex.Local(x.ans.Session, x.ans.View()); ok {
			if wantsToken && code == http.StatusOK {
				body = withWatchToken(body, h.issueWatchToken(p, owner, ex.Key))
			}
			return h.reply(w, r, p, transportREST, code, body)
		}
	}
	if ex.ReadRequest && r.Body != nil && r.Body != http.NoBody {
		x.request = &capturedBody{rc: r.Body}
		r.Body = x.request
	}
	if ex.Stream && x.ans.Session != nil {
		size := r.ContentLength
		if size < 0 {
			size = -1
		}
		st := x.ans.Session.StartStream(ex.Part, ex.From, size)
		x.ans.Stream = st
		if ex.Files {
			followStreamFiles(r, st)
		}
		x.body.InitStream(r.Body, st)
		r.Body = &x.body
		x.vars.bind(r.Context(), &x.line)
		p.metrics.observeStarted()
	}

	xw := &x.w
	xw.ResponseWriter = w
	xw.u = x
	var out http.ResponseWriter = xw
	if ex.Rewrite {
		x.held = newHeldWriter(w, func(int) {})
		out = x.held
	} else if ex.ReadBody {
		xw.capture = make([]byte, 0, 4096)
	}
	defer func() {
		if v := recover(); v != nil {
			x.finish(progress.Event{Status: x.status(), Panicked: true})
			panic(v)
		}
	}()
	err := next.ServeHTTP(out, r)
	ev := progress.Event{Status: x.status()}
	if ev.Status == 0 {
		ev.HandlerFailed = err != nil
		var he caddyhttp.HandlerError
		if errors.As(err, &he) {
			ev.HandlerStatus = he.StatusCode
		}
	}
	// Without ReadBody or Rewrite, the answer was learned when its status
	// was written, and this does nothing.
	x.finish(ev)
	if x.held != nil {
		if wantsToken {
			x.addWatchToken()
		}
		x.held.release(x.ans)
	}
	return err
}

// addWatchToken adds a watch token to the held answer (as the protocol
// replaces it, or as the origin sent it), if it is a 200 JSON object.
func (x *exchange) addWatchToken() {
	a := x.ans
	if x.held.status != http.StatusOK || !x.held.held() {
		return
	}
	body := a.Replace
	if body == nil {
		body = a.Body
	}
	if b := addWatchToken(body, x.h.issueWatchToken(x.p, x.owner, x.ex.Key)); b != nil {
		a.Replace = b
	}
}

// serveStatusByToken answers a session's status route for a page that
// holds a watch token rather than the credential: the proxy answers from
// what it holds, as it would a watcher.
func (h *Handler) serveStatusByToken(w http.ResponseWriter, r *http.Request, p *protocol, key, token string) error {
	if key == "" {
		// The protocol says what names an upload.
		f := progress.BadRequestf("the request names no upload")
		if _, pf := p.ParseStatus(r); pf != nil {
			f = pf
		}
		return h.refuse(w, r, p, transportREST, f)
	}
	owner, f := h.acceptWatchToken(p, key, token)
	if f != nil {
		return h.refuse(w, r, p, transportREST, f)
	}
	snap := h.lookup(r, p, owner, key)
	return h.reply(w, r, p, transportREST, p.statusCode(snap), p.Render(snap))
}

// status is the final status of the answer so far, 0 if none.
func (x *exchange) status() int {
	if x.held != nil {
		return x.held.status
	}
	return x.w.status
}

// untrackedReason says why the tracker could not take a request, warning
// the operator of a full zone.
func (h *Handler) untrackedReason(p *protocol, err error) string {
	if errors.Is(err, progress.ErrClosed) {
		return progress.UntrackedTrackerClosed
	}
	h.warnings.zoneFull(h.Zone, p.name, err)
	return progress.UntrackedTrackerFull
}

// exchange is one request of a session in flight.
type exchange struct {
	h       *Handler
	p       *protocol
	r       *http.Request
	ex      *protocolapi.Exchange
	owner   progress.Owner
	ans     *protocolapi.Answered
	started time.Time
	w       uploadWriter
	held    *heldWriter // the answer held back, for an exchange with Rewrite
	request *capturedBody
	body    progress.Body
	done    bool
	line    uploadFields
	vars    uploadVars
}

// answered implements answerer: the answer's status and headers are
// written, its body not yet.
func (x *exchange) answered(code int) {
	if !x.ex.ReadBody {
		x.finish(progress.Event{Status: code})
	}
}

// finish lets the protocol learn from the answer (or from its absence),
// ends the request's stream and reports it, once.
func (x *exchange) finish(ev progress.Event) {
	if x.done {
		return
	}
	x.done = true
	a := x.ans
	ev.ClientGone = x.r.Context().Err() != nil
	if st := a.Stream; st != nil {
		ev.ReadErr, ev.Received = st.ReadError(), st.Received()
	}
	a.Status = ev.Status
	if ev.Status == progress.StatusClientClosedRequest {
		// reverse_proxy writes 499 itself when the client went away: the
		// origin did not answer, and the protocol must not read it as
		// the origin's word.
		a.Status = 0
	}
	a.Header = x.w.Header()
	a.Body = x.w.capture
	if x.held != nil {
		// All of it, or the start of an answer too long to hold.
		a.Header, a.Body = x.held.header, x.held.body
	}
	a.Body = decoded(a.Header, a.Body)
	if x.request != nil {
		a.Request = x.request.prefix()
	}
	a.Outcome = progress.Judge(ev)
	a.Accepted = ev.Status >= 200 && ev.Status < 300
	if x.ex.Answer != nil {
		x.ex.Answer(a)
	}
	st := a.Stream
	if st == nil {
		return
	}
	rec := st.Record()
	rec.EndStream(st, a.Accepted)
	x.line = uploadFields{protocol: x.p.name, key: rec.Key(), bytes: st.Received(), total: rec.Total(), took: time.Since(x.started), o: a.Outcome}
	x.p.report(x.r, &x.line)
}

// Open implements protocolapi.SessionOpener.
func (x *exchange) Open(key string, spec progress.SessionSpec) *progress.Record {
	if err := progress.CheckKey(key); err != nil {
		x.h.logger.Debug("session passes untracked: key " + err.Error())
		return nil
	}
	rec, _, err := x.h.tracker().OpenSession(x.owner, key, spec)
	if err != nil {
		uploadsUntracked.WithLabelValues(x.h.Zone, x.p.name, x.h.untrackedReason(x.p, err)).Inc()
		return nil
	}
	return rec
}

// Find implements protocolapi.SessionOpener.
func (x *exchange) Find(key string) *progress.Record {
	return x.h.tracker().FindSession(x.owner, key)
}

// View implements protocolapi.SessionOpener: rec's snapshot, merged with
// what the other proxies of a shared zone saw of it.
func (x *exchange) View(rec *progress.Record) progress.Snapshot {
	if v, ok := x.h.tracker().(progress.Viewer); ok {
		return v.View(rec)
	}
	return rec.Snapshot()
}

// End implements protocolapi.SessionOpener.
func (x *exchange) End(rec *progress.Record, o progress.Outcome) {
	x.h.tracker().EndSession(rec, o)
}

// followStreamFiles makes a stream report the files of its
// multipart/form-data body.
func followStreamFiles(r *http.Request, st *progress.Stream) {
	mediaType, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err == nil && mediaType == "multipart/form-data" {
		if s := multipart.NewScanner(params["boundary"]); s != nil {
			st.FollowMultipart(s)
		}
	}
}

// capturedBody keeps a copy of the start of a request body as the origin
// reads it, for a protocol that learns from the request (a token
// request's form). It reads nothing ahead of the origin.
//
// The transport may still read the body on its own goroutine when the
// answer comes: the copy is guarded.
type capturedBody struct {
	rc  io.ReadCloser
	mu  sync.Mutex
	got []byte
}

func (c *capturedBody) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.mu.Lock()
	if room := maxCapture - len(c.got); room > 0 && n > 0 {
		c.got = append(c.got, p[:min(n, room)]...)
	}
	c.mu.Unlock()
	return n, err
}

// prefix returns a copy of what has been read so far.
func (c *capturedBody) prefix() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.got)
}

func (c *capturedBody) Close() error { return c.rc.Close() }

// decoded is the body of an answer as its protocol reads it: a gzip
// answer (the origin compresses for a client that accepts it) inflated,
// as far as its start goes and at most maxCapture bytes; any other as it is.
func decoded(h http.Header, body []byte) []byte {
	if len(body) == 0 || !strings.EqualFold(h.Get("Content-Encoding"), "gzip") {
		return body
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil
	}
	out, _ := io.ReadAll(io.LimitReader(zr, maxCapture))
	return out
}
