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
	"go.uber.org/zap/zapcore"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// serveUpload tracks an upload on its way to next. Whatever happens to
// tracking, the request goes on to next unchanged but for its body being
// counted as it is read.
func (h *Handler) serveUpload(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, p *protocol) error {
	key, err := p.keyOf(r)
	if err != nil {
		return h.passUntracked(w, r, next, p, "no_key", err)
	}
	if err := progress.CheckKey(key); err != nil {
		return h.passUntracked(w, r, next, p, "invalid_key", errors.New("key "+err.Error()))
	}
	owner := progress.Anyone
	if !p.ownerless {
		cred := p.credentialOf(r)
		if cred == "" {
			return h.passUntracked(w, r, next, p, "no_credential", errors.New("missing "+p.credentialLabel))
		}
		owner = h.tracker().Owner(cred)
	}
	total := r.ContentLength
	if total < 0 {
		total = -1
	}
	rec, err := h.tracker().Begin(owner, key, total)
	if err != nil {
		reason := "tracker_full"
		if errors.Is(err, progress.ErrClosed) {
			reason = "tracker_closed"
		}
		return h.passUntracked(w, r, next, p, reason, err)
	}
	p.metrics.observeStarted()
	if p.files {
		followFiles(r, rec, p)
	}

	// One allocation holds the upload, its response writer and its body.
	u := &upload{h: h, p: p, r: r, rec: rec}
	u.body.Init(r.Body, rec)
	r.Body = &u.body
	uw := &u.w
	uw.ResponseWriter = w
	uw.u = u
	if p.originFiles != nil {
		uw.capture = make([]byte, 0, 4096)
	}

	// A failure while copying the response panics (http.ErrAbortHandler);
	// the record must still end, and the panic go on.
	defer func() {
		if v := recover(); v != nil {
			u.finish(progress.Event{Status: uw.status, Panicked: true})
			panic(v)
		}
	}()
	err = next.ServeHTTP(uw, r)
	if uw.capture != nil && uw.status != 0 {
		// The origin's answer has been passed on whole; what it says of
		// the stored files completes the record before it finishes.
		if files, ok := p.originFiles(uw.capture); ok {
			rec.SetOriginFiles(files)
		}
		u.finish(progress.Event{Status: uw.status})
	}
	if uw.status == 0 {
		ev := progress.Event{HandlerFailed: err != nil}
		var he caddyhttp.HandlerError
		if errors.As(err, &he) {
			ev.HandlerStatus = he.StatusCode
		}
		u.finish(ev)
	}
	return err
}

// followFiles makes the record report the files of the upload: those of
// a multipart/form-data body, or the one file a raw upload names.
func followFiles(r *http.Request, rec *progress.Record, p *protocol) {
	mediaType, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err == nil && mediaType == "multipart/form-data" {
		if s := multipart.NewScanner(params["boundary"]); s != nil {
			rec.FollowMultipart(s)
		}
		return
	}
	if p.fileName != nil {
		if name := p.fileName(r); name != "" {
			rec.SetFileName(name)
		}
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
	// line and field are the log line of the finished upload; field holds
	// it so that logging it allocates nothing (a variadic argument escapes
	// to the heap, an existing slice does not). They are written once.
	line  finishLine
	field [1]zap.Field
}

// finish judges the upload from ev plus what the body and the request
// context say, ends its record, and logs and counts it, once.
func (u *upload) finish(ev progress.Event) {
	ev.ReadErr = u.rec.ReadError()
	ev.ClientGone = u.r.Context().Err() != nil
	ev.Received = u.rec.Received()
	o := progress.Judge(ev)
	if !u.h.tracker().Finish(u.rec, o) {
		return
	}
	took := time.Since(u.rec.Started())
	n := u.rec.Count()
	u.p.metrics.observeFinished(o, n, took)
	if ce := u.h.logger.Check(zapcore.InfoLevel, "upload finished"); ce != nil {
		u.line = finishLine{protocol: u.p.name, key: u.rec.Key(), bytes: n, total: u.rec.Total(), took: took, o: o}
		u.field[0] = zap.Inline(&u.line)
		ce.Write(u.field[:]...)
	}
}

// finishLine is the log line of a finished upload. Its fields go in inline,
// exactly as if passed one by one, but as one zap.Field: the variadic
// slice of eight fields was an allocation of half a kilobyte per upload;
// the line lives in the upload, which is allocated anyway.
type finishLine struct {
	protocol, key string
	bytes, total  int64
	took          time.Duration
	o             progress.Outcome
}

func (l *finishLine) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("protocol", l.protocol)
	enc.AddString("key", l.key)
	enc.AddInt64("bytes", l.bytes)
	enc.AddInt64("total", l.total)
	enc.AddDuration("duration", l.took)
	enc.AddString("outcome", l.o.Reason)
	enc.AddInt("status", l.o.HTTPStatus)
	enc.AddString("error", l.o.Error)
	return nil
}

// maxCapture bounds how much of the origin's answer is kept to read file
// metadata from.
const maxCapture = 64 << 10

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
	u       *upload
	status  int
	capture []byte
}

func (w *uploadWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
		if w.capture == nil {
			w.u.finish(progress.Event{Status: code})
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
