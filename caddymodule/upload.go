package caddymodule

import (
	"errors"
	"github.com/caddy-upload-progress/caddy-upload-progress/progress/multipart"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
	protocolapi "github.com/caddy-upload-progress/caddy-upload-progress/protocol"
)

// serveUpload tracks an upload on its way to next. Whatever happens to
// tracking, the request goes on to next unchanged but for its body being
// counted as it is read.
func (h *Handler) serveUpload(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, p *protocol) error {
	key, err := p.keyOf(r)
	if err != nil {
		return h.passUntracked(w, r, next, p, progress.UntrackedNoKey, err)
	}
	if err := progress.CheckKey(key); err != nil {
		return h.passUntracked(w, r, next, p, progress.UntrackedInvalidKey, errors.New("key "+err.Error()))
	}
	owner, f := p.ownerOf(r, h.tracker())
	if f != nil {
		return h.passUntracked(w, r, next, p, progress.UntrackedNoCredential, f)
	}
	total := r.ContentLength
	if total < 0 {
		total = -1
	}
	rec, err := h.tracker().Begin(owner, key, total)
	if err != nil {
		return h.passUntracked(w, r, next, p, h.untrackedReason(p, err), err)
	}
	p.metrics.observeStarted()
	if p.files != nil {
		followFiles(r, rec, p.files)
	}

	// One allocation holds the upload, its response writer and its body.
	u := &upload{h: h, p: p, r: r, rec: rec}
	u.body.Init(r.Body, rec)
	r.Body = &u.body
	u.vars.bind(r.Context(), &u.line)
	uw := &u.w
	uw.ResponseWriter = w
	uw.u = u
	if p.answer != nil {
		uw.capture = make([]byte, 0, 4096)
	}

	// A failure while copying the response panics (http.ErrAbortHandler);
	// the record must still end, and the panic go on.
	defer func() {
		if v := recover(); v != nil {
			u.end(progress.Event{Status: uw.status, Panicked: true})
			panic(v)
		}
	}()
	err = next.ServeHTTP(uw, r)
	if uw.capture != nil && uw.status != 0 {
		// The origin's answer has been passed on whole; what the protocol
		// reads of it completes the record before it ends.
		ev := progress.Event{Status: uw.status}
		if uw.status < 400 {
			a := p.answer.ReadAnswer(uw.capture)
			if a.Detail != nil {
				rec.SetDetail(a.Detail, a.Size)
			}
			ev.Refused = a.Refused
		}
		u.end(ev)
	}
	if uw.status == 0 {
		ev := progress.Event{HandlerFailed: err != nil}
		var he caddyhttp.HandlerError
		if errors.As(err, &he) {
			ev.HandlerStatus = he.StatusCode
		}
		u.end(ev)
	}
	return err
}

// followFiles makes the record report the files of the upload: those of
// a multipart/form-data body, or the one file a raw upload names.
func followFiles(r *http.Request, rec *progress.Record, files protocolapi.FileReporter) {
	mediaType, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err == nil && mediaType == "multipart/form-data" {
		if s := multipart.NewScanner(params["boundary"]); s != nil {
			rec.FollowMultipart(s)
		}
		return
	}
	if name := files.FileName(r); name != "" {
		rec.SetFileName(name)
	}
}

// passUntracked lets an upload that cannot be tracked through, and says why.
func (h *Handler) passUntracked(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, p *protocol, reason string, err error) error {
	uploadsUntracked.WithLabelValues(h.Zone, p.name, reason).Inc()
	h.logger.Debug("upload passes untracked",
		zap.String("protocol", p.name), zap.String("reason", reason), zap.Error(err),
		zap.String("uri", r.RequestURI))
	return next.ServeHTTP(w, r)
}

// upload is one tracked upload in flight.
type upload struct {
	h    *Handler
	p    *protocol
	r    *http.Request
	rec  *progress.Record
	w    uploadWriter
	body progress.Body
	// line is the upload's fields in the request's access log line, and
	// vars its request variables; they live here so that adding them
	// allocates nothing more.
	line uploadFields
	vars uploadVars
}

// end ends the upload's record as ev says (unless the tracker ended it
// already: stalled), and reports how it ended, once, whoever ended it: in
// the metrics, in the request's access log line and in its variables.
func (u *upload) end(ev progress.Event) {
	ev.ClientGone = u.r.Context().Err() != nil
	o, report := u.h.tracker().End(u.rec, ev)
	if !report {
		return
	}
	u.line = uploadFields{protocol: u.p.name, key: u.rec.Key(), bytes: u.rec.Count(), total: u.rec.Total(), took: time.Since(u.rec.Started()), o: o}
	u.p.report(u.r, &u.line)
}

// answered implements answerer.
func (u *upload) answered(code int) { u.end(progress.Event{Status: code}) }

// report counts how a tracked request ended in p's metrics, and adds it to
// the request's access log line and variables. line lives as long as the
// request.
func (p *protocol) report(r *http.Request, line *uploadFields) {
	p.metrics.observeFinished(line.o, line.bytes, line.took)
	if extra, ok := r.Context().Value(caddyhttp.ExtraLogFieldsCtxKey).(*caddyhttp.ExtraLogFields); ok {
		extra.Add(zap.Inline(line))
	}
}

// answerer is what a tracked request does once the final status of its
// answer is written.
type answerer interface {
	answered(code int)
}

// maxCapture bounds how much of the origin's answer is kept for the
// protocol to read.
const maxCapture = protocolapi.MaxAnswer

// uploadWriter ends the record the moment the final response status is
// written, before the response body is copied: the origin's answer is
// what makes an upload done, and a client that polls right after its
// answer must see it. For protocols that read the origin's answer
// (capture is not nil) it keeps a bounded copy of the body as it passes,
// never holding it back, and the record ends once the body is through.
//
// It embeds caddyhttp.ResponseWriterWrapper (by value, to save an
// allocation) for Unwrap, through which http.ResponseController reaches
// Flush, deadlines and Hijack, and for Push; ReadFrom is its own.
type uploadWriter struct {
	caddyhttp.ResponseWriterWrapper
	u       answerer
	status  int
	capture []byte
}

func (w *uploadWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
		if w.capture == nil {
			w.u.answered(code)
		}
	}
	w.ResponseWriterWrapper.WriteHeader(code)
}

func (w *uploadWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.capture != nil {
		w.capture = append(w.capture, b[:min(len(b), maxCapture-len(w.capture))]...)
	}
	return w.ResponseWriterWrapper.Write(b)
}

// ReadFrom keeps the status hook when the response is copied with io.Copy.
func (w *uploadWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.capture != nil {
		return io.Copy(writerOnly{w}, r)
	}
	return w.ResponseWriterWrapper.ReadFrom(r)
}

// writerOnly hides ReadFrom so that io.Copy goes through Write.
type writerOnly struct{ io.Writer }
