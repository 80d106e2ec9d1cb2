package sandbox

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/protocoltest"
)

// The tokens of two API users.
var (
	alice = []string{"Authorization", "Bearer alice"}
	bob   = []string{"Authorization", "Bearer bob"}
)

// proxy is the upload_progress handler with a sandbox protocol in front of
// a scripted origin: what a client sends passes through the handler, as in
// Caddy, and the origin answers as the test says. Watchers reach the
// handler over a real connection.
type proxy struct {
	*protocoltest.Proxy
	start time.Time
	// srv serves the handler over HTTP for WebSocket watchers; made on
	// first use.
	srv *httptest.Server
}

// newProxy provisions a handler with the protocol object proto (JSON);
// it is cleaned up when the test ends.
func newProxy(t *testing.T, proto string) *proxy {
	t.Helper()
	return &proxy{Proxy: protocoltest.New(t, proto), start: time.Now()}
}

// The session every test follows, and its paths.
const (
	create = "/v1/sandboxes/sb/uploads"
	up     = "/v1/sandboxes/sb/uploads/u1"
	ws     = up + "/ws"
)

// createBody is a client's creation of a 40-byte file in 4 parts.
const createBody = `{"target_path":"/data/a.bin","content_length":40,"part_size":10,"kind":"file","conflict":"replace"}`

// object is the origin's session object of u1: 40 bytes in 4 parts of
// 10, accepted bytes of them accepted, next the next part it waits for.
func object(status string, accepted int64, next int) string {
	return fmt.Sprintf(`{"upload_id":"u1","kind":"file","target_path":"/data/a.bin","content_length":40,"accepted_bytes":%d,`+
		`"part_size":10,"part_count":4,"status":%q,"created_at":"2026-03-01T10:00:00Z","updated_at":"2026-03-01T10:00:00Z",`+
		`"expires_at":"2099-03-02T10:00:00Z","next_part":%d}`, accepted, status, next)
}

// lastByteTime stands, in an expected overlay, for the time of the last
// byte the proxy saw, which is later than the origin's updated_at.
const lastByteTime = "<last byte>"

// overlaid is the origin's object o as the proxy shows it: status and
// updated_at as given (updated "" keeps the origin's), received_bytes and
// parts_in_flight added.
func overlaid(o, status, updated string, received int64, inFlight string) string {
	o = regexp.MustCompile(`"status":"[^"]*"`).ReplaceAllLiteralString(o, `"status":"`+status+`"`)
	if updated != "" {
		o = regexp.MustCompile(`"updated_at":"[^"]*"`).ReplaceAllLiteralString(o, `"updated_at":"`+updated+`"`)
	}
	return strings.TrimSuffix(o, "}") + fmt.Sprintf(`,"received_bytes":%d,"parts_in_flight":%s}`, received, inFlight)
}

// errorBody is an origin's error answer.
func errorBody(code, msg string) string {
	return fmt.Sprintf(`{"error":{"code":%q,"message":%q}}`, code, msg)
}

// answer is what the origin answers.
type answer = protocoltest.Answer

// answered is the origin's answer: a status, a body, and headers (name,
// value pairs) besides the Content-Type and Content-Length of a JSON
// body, which they may replace.
func answered(status int, body string, header ...string) answer {
	if body != "" {
		header = append([]string{"Content-Type", "application/json", "Content-Length", strconv.Itoa(len(body))}, header...)
	}
	return answer{Status: status, Header: header, Body: body}
}

// status asks for the session's status (GET target) as a client would;
// the origin answers 200 with the object o. It returns the body the client
// got, checking that its headers say what it is.
func (p *proxy) status(target, o string, header ...string) string {
	p.T.Helper()
	w := p.Serve(protocoltest.Request(http.MethodGet, target, "", header...), &protocoltest.Origin{A: answered(http.StatusOK, o, "ETag", `"v1"`)})
	if w.Code != http.StatusOK {
		p.T.Fatalf("GET %s: the client got %d, want the origin's 200", target, w.Code)
	}
	if cl := w.Header().Get("Content-Length"); cl != strconv.Itoa(w.Body.Len()) {
		p.T.Errorf("GET %s: Content-Length %s for a body of %d bytes", target, cl, w.Body.Len())
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		p.T.Errorf("GET %s: Content-Type %q, want the origin's application/json", target, ct)
	}
	return w.Body.String()
}

// want checks that a GET of the session, which the origin answers with
// its object o, comes back as view (see sameView).
func (p *proxy) want(o, view string, header ...string) {
	p.T.Helper()
	p.sameView("GET "+up, p.status(up, o, header...), view)
}

// sameView checks the overlay got against want, where lastByteTime in
// want stands for a time between the start of the test and now.
func (p *proxy) sameView(what, got, want string) {
	p.T.Helper()
	if strings.Contains(want, lastByteTime) {
		m := regexp.MustCompile(`"updated_at":"([^"]*)"`).FindStringSubmatch(got)
		if m == nil {
			p.T.Fatalf("%s: no updated_at in %s", what, got)
		}
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil || at.Before(p.start.Add(-time.Second)) || at.After(time.Now()) || !strings.HasSuffix(m[1], "Z") {
			p.T.Errorf("%s: updated_at %s is not the time of the last byte, in UTC (%v)", what, m[1], err)
		}
		got = strings.Replace(got, m[0], `"updated_at":"`+lastByteTime+`"`, 1)
	}
	if got != want {
		p.T.Errorf("%s:\n got  %s\n want %s", what, got, want)
	}
	if err := uniqueKeys([]byte(got)); err != nil {
		p.T.Errorf("%s: %s: %v", what, got, err)
	}
}

// server serves the handler over HTTP on 127.0.0.1, for watchers; made on
// first use. A request it does not answer itself is the origin's: 502.
func (p *proxy) server() *httptest.Server {
	if p.srv == nil {
		p.srv = p.Server(caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			return caddyhttp.Error(http.StatusBadGateway, errors.New("no origin here"))
		}))
	}
	return p.srv
}

// watcher is a WebSocket client following a session.
type watcher struct{ *protocoltest.Watcher }

// watch opens a watcher of the session at path; it is closed when the
// test ends.
func (p *proxy) watch(path string, header ...string) *watcher {
	p.T.Helper()
	return &watcher{protocoltest.Watch(p.T, p.server(), path, header...)}
}

// refused opens a WebSocket at path that must be refused before the
// upgrade, and returns the HTTP status and body.
func (p *proxy) refused(path string, header ...string) (int, string) {
	p.T.Helper()
	return protocoltest.Refused(p.T, p.server(), path, header...)
}

// until reads messages until one has status, within 100 messages, and
// returns it.
func (w *watcher) until(status string) string {
	w.T.Helper()
	return w.Until("message with status "+status, 100, func(m string) bool {
		return strings.Contains(m, `"status":"`+status+`"`)
	})
}

func itoa(n int) string { return strconv.Itoa(n) }
