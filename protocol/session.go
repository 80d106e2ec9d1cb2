package protocol

import (
	"context"
	"net/http"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// Sessions is a protocol whose uploads span many requests (tus PATCHes,
// the parts of a multi-part session, the chunks of a folder) that feed one
// session record. Its Tracks picks the requests of its sessions, uploads
// and the others whose answers it learns from; Exchange reads each of them.
// Its sessions' keys are its own, often learned from an answer: a key
// template does not apply to it.
type Sessions interface {
	// Exchange reads a request Tracks picked: what it is to its session.
	// false leaves the request alone; it passes on untracked.
	Exchange(r *http.Request) (*Exchange, bool)
}

// Exchange is one request of a session as its protocol reads it: which
// session it belongs to, whether its body is session bytes, and what to
// learn from the origin's answer. The request itself passes on unchanged.
type Exchange struct {
	// Key is the session's key; "" when only the answer names it (a
	// creation), which Answered.Open then opens.
	Key string
	// Open makes the session (with Spec) when the key holds none; without
	// it, a request of a session the proxy does not know passes untracked.
	Open bool
	Spec progress.SessionSpec
	// Stream makes the request's body a stream of the session, counted
	// byte by byte: Part is its part number (0: not numbered), From where
	// it starts in the upload (-1: it does not say).
	Stream bool
	Part   int
	From   int64
	// ReadBody asks for the start of the answer's body (at most MaxAnswer
	// bytes) in Answered.Body; Answer then runs once the answer has been
	// passed on, rather than when its status is written.
	ReadBody bool
	// Files follows the files of the stream's multipart/form-data body
	// (progress.StreamState.Files).
	Files bool
	// ReadRequest asks for the start of the request's body (at most
	// MaxAnswer bytes, as the origin reads it: nothing is read ahead of
	// it) in Answered.Request.
	ReadRequest bool
	// Local, if set, is asked before the request goes on, with the
	// session the proxy holds for its key (nil if none) and what the zone
	// shows of it (Answered.View: with a shared store, every node's view
	// merged): when it returns true, the proxy answers the request itself
	// with status and body (JSON), and the origin never sees it. A status
	// route the proxy answers while the origin knows nothing yet.
	Local func(rec *progress.Record, view progress.Snapshot) (status int, body any, ok bool)
	// Rewrite holds the answer back until Answer has run, which may then
	// replace its body (Answered.Replace): a status answer the protocol
	// lays its live view over. An answer longer than MaxAnswer is not
	// held: it passes on as it came, and Answer sees its start.
	Rewrite bool
	// Status marks the session's status route (Key names the session):
	// a request that carries a watch token in place of the credential
	// (watch_token=<token>) is answered by the proxy, with Render of what
	// it holds, as the origin cannot be asked without the credential; a
	// request with the credential and watch_token=1 gets a watch token
	// added to a 200 answer that is a JSON object.
	Status bool
	// Answer learns what the origin's answer says of the session; it may
	// be nil. It runs once per request, also when no answer came
	// (Answered.Status 0).
	Answer func(*Answered)
}

// Answered is the origin's answer to a request of a session, as Answer
// sees it.
type Answered struct {
	// Status is the answer's status, 0 when there was none (the origin
	// was unreachable, the client went away); Header its headers; Body the
	// start of its body when the exchange asked for it (inflated, where
	// the origin sent it gzipped), which may be cut short.
	Status int
	Header http.Header
	Body   []byte
	// Outcome is how the request ended, judged as an upload would be.
	Outcome progress.Outcome
	// Session is the session's record, nil when the proxy holds none for
	// the key (yet: Open makes it); Stream the request's stream, or nil.
	Session *progress.Record
	Stream  *progress.Stream
	// Accepted says the origin accepted the stream's bytes, so that they
	// count as acknowledged when it ends (see progress.Record.EndStream).
	// It starts as true for a 2xx answer; Answer may change it.
	Accepted bool
	// Request is the start of the request's body, for an exchange with
	// ReadRequest.
	Request []byte
	// Replace, set by the Answer of an exchange with Rewrite, is sent to
	// the client in place of the answer's body (Content-Length follows).
	Replace []byte

	opener SessionOpener
}

// SessionOpener opens and ends sessions for an exchange, as the handler's
// tracker and the request's owner allow.
type SessionOpener interface {
	Open(key string, spec progress.SessionSpec) *progress.Record
	Find(key string) *progress.Record
	End(rec *progress.Record, o progress.Outcome)
	// View is what the zone shows of rec's key: rec's own snapshot, or,
	// where proxies share the zone through a store, every node's view of
	// the session merged.
	View(rec *progress.Record) progress.Snapshot
}

// NewAnswered is how the handler hands an answer to Answer.
func NewAnswered(opener SessionOpener) *Answered { return &Answered{opener: opener} }

// Open returns the session of key for the request's owner, making it with
// spec if there is none; nil when the tracker cannot hold it (the request
// has passed anyway). It becomes a.Session.
func (a *Answered) Open(key string, spec progress.SessionSpec) *progress.Record {
	if rec := a.opener.Open(key, spec); rec != nil {
		a.Session = rec
	}
	return a.Session
}

// EndStream ends the request's stream now, as a.Accepted says, so that
// what Answer does next sees it counted (a numbered part accepted) rather
// than in flight. The handler's own end of the stream then does nothing.
func (a *Answered) EndStream() {
	if a.Stream != nil {
		a.Stream.Record().EndStream(a.Stream, a.Accepted)
	}
}

// View is what the zone shows of the request's session now (see
// SessionOpener.View): what an answer overlaid with the live view shows.
func (a *Answered) View() progress.Snapshot {
	if a.Session == nil {
		return progress.Snapshot{}
	}
	return a.opener.View(a.Session)
}

// Find returns the request's owner's session of key, or nil.
func (a *Answered) Find(key string) *progress.Record { return a.opener.Find(key) }

// End ends the session as o says (completed, aborted, failed). The
// request's own stream ends first, as a.Accepted says: it is answered, so
// what it brought is no longer in flight, and the ended session shows what
// the answer left of it rather than bytes the origin may have discarded.
func (a *Answered) End(o progress.Outcome) {
	if a.Session == nil {
		return
	}
	a.EndStream()
	a.opener.End(a.Session, o)
}

// StatusCoder is a protocol whose status replies carry an HTTP status of
// their own (404 for an unknown key). A watcher of a key whose reply is
// not 200 is refused with that reply before the WebSocket upgrade.
type StatusCoder interface {
	StatusCode(progress.Snapshot) int
}

// WatchRouter is a protocol whose WebSocket endpoint is no fixed path: it
// lies under each session's own URL. Its ParseStatus reads the key from
// the path.
type WatchRouter interface {
	// Watches reports whether r is a request for the WebSocket endpoint.
	Watches(r *http.Request) bool
}

// Refresher is a protocol whose origin moves a session on its own
// (completing to completed, expiry), which the proxy learns for the
// session's watchers by asking the origin: at most once a second per
// watched session, one request for all its watchers, only while none of
// its requests passes through the proxy.
type Refresher interface {
	// Refresh asks the origin about the session a.Session for the
	// watcher's request r, and applies the answer as Answer does for an
	// exchange (a.End, SetDetail). refused, when not "", says that the
	// origin refused the watcher's credential (401, 403, 404): the
	// session's watchers are then closed with 1008 and that reason. An
	// error (5xx, network) is retried at the same pace.
	Refresh(ctx context.Context, r *http.Request, a *Answered) (refused string, err error)
}
