package test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/caddy-upload-progress/caddy-upload-progress/cmd/upload-origin/origin"
)

// sbEnv is Caddy with `protocol sandbox` (its `origin` option set) in front
// of a reference origin the test configured, whose answers it notes.
type sbEnv struct{ *apiEnv }

// newSandboxEnv starts an origin with cfg (Dir and APIKeys are the
// harness's), noting every answer it sends, and Caddy in front of it with
// `protocol sandbox`, which asks that origin about watched sessions.
func newSandboxEnv(t *testing.T, cfg origin.Config) *sbEnv {
	t.Helper()
	return &sbEnv{newAPIEnv(t, "sandbox", cfg)}
}

// object decodes the answer's session object, failing the test if it is
// none.
func (a apiAnswer) object(t testing.TB) sbObject {
	t.Helper()
	o, err := decodeObject(a.body)
	if err != nil {
		t.Fatalf("answer %d is no JSON object: %v: %s", a.code, err, a.body)
	}
	return o
}

// do is send through the proxy, failing the test on a transport error.
func (e *sbEnv) do(method, path string, body []byte, hdr http.Header) apiAnswer {
	e.t.Helper()
	a, err := e.send(e.proxy, method, path, bytes.NewReader(body), int64(len(body)), hdr)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	return a
}

// direct is send to the origin itself, bypassing the proxy.
func (e *sbEnv) direct(method, path string, hdr http.Header) apiAnswer {
	e.t.Helper()
	a, err := e.send("http://"+e.originURL, method, path, nil, 0, hdr)
	if err != nil {
		e.t.Fatalf("%s %s at the origin: %v", method, path, err)
	}
	return a
}

// sbCreate is the body of a session's creation.
type sbCreate struct {
	TargetPath    string `json:"target_path"`
	ContentLength int64  `json:"content_length"`
	PartSize      int64  `json:"part_size"`
	Kind          string `json:"kind"`
	Conflict      string `json:"conflict"`
	User          string `json:"user,omitempty"`
}

// fileSession is the creation of a file session of length bytes in parts
// of part bytes at target.
func fileSession(target string, length, part int64) sbCreate {
	return sbCreate{TargetPath: target, ContentLength: length, PartSize: part, Kind: "file", Conflict: "replace"}
}

// create creates a session in sandbox through the proxy and returns its
// path and the creation's answer.
func (e *sbEnv) create(sandbox string, c sbCreate) (string, apiAnswer) {
	e.t.Helper()
	b, _ := json.Marshal(c)
	a := e.do("POST", "/v1/sandboxes/"+sandbox+"/uploads", b, nil)
	if a.code != http.StatusCreated {
		e.t.Fatalf("creating a session: %d %s", a.code, a.body)
	}
	return "/v1/sandboxes/" + sandbox + "/uploads/" + a.object(e.t).str("upload_id"), a
}

// status asks the session's status through the proxy, failing the test
// unless it is 200.
func (e *sbEnv) status(session string) sbObject {
	e.t.Helper()
	a := e.do("GET", session, nil, nil)
	if a.code != http.StatusOK {
		e.t.Fatalf("status of %s: %d %s", session, a.code, a.body)
	}
	return a.object(e.t)
}

// originStatus asks the origin itself how the session stands.
func (e *sbEnv) originStatus(session string) sbObject {
	e.t.Helper()
	a := e.direct("GET", session, nil)
	if a.code != http.StatusOK {
		e.t.Fatalf("the origin's status of %s: %d %s", session, a.code, a.body)
	}
	return a.object(e.t)
}

// waitStatus asks the session's status through the proxy until ok accepts
// it, failing the test after 10 s.
func (e *sbEnv) waitStatus(session, what string, ok func(sbObject) bool) sbObject {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		o := e.status(session)
		if ok(o) {
			return o
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("status of %s never %s; last: %v", session, what, o)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// heldPart is a part whose body the test writes when it likes, so that it
// can look at the session while the part is held mid-body.
type heldPart struct {
	pw   *io.PipeWriter
	res  chan partResult
	done chan struct{}
}

// partResult is how a part's request ended.
type partResult struct {
	a   apiAnswer
	err error
}

// errPartOver ends the body of a part whose answer has come, or whose test
// has ended.
var errPartOver = errors.New("the part is over")

// startPart sends part n of session through the proxy, size bytes as its
// Content-Length (-1: chunked), its body to be written with write and
// finish. The request is ended, if still going, when the test ends.
func (e *sbEnv) startPart(session string, n int, size int64, hdr http.Header) *heldPart {
	pr, pw := io.Pipe()
	p := &heldPart{pw: pw, res: make(chan partResult, 1), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		a, err := e.send(e.proxy, "PUT", fmt.Sprintf("%s/parts/%d", session, n), pr, size, hdr)
		// A writer the request no longer reads is let go.
		pr.CloseWithError(errPartOver)
		p.res <- partResult{a, err}
	}()
	e.t.Cleanup(func() {
		pw.CloseWithError(errPartOver)
		<-p.done
	})
	return p
}

// write writes b into the part's body, failing the test if the request
// has ended.
func (p *heldPart) write(t testing.TB, b []byte) {
	t.Helper()
	if _, err := p.pw.Write(b); err != nil {
		t.Fatalf("writing a part: %v", err)
	}
}

// finish writes rest and ends the body, then returns the answer, failing
// the test on a transport error or after 30 s. The origin may answer
// before it has read rest (a part refused at its limit): what it did not
// read is dropped then.
func (p *heldPart) finish(t testing.TB, rest []byte) apiAnswer {
	t.Helper()
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		if _, err := p.pw.Write(rest); err == nil {
			p.pw.Close()
		}
	}()
	var r partResult
	select {
	case r = <-p.res:
	case <-time.After(30 * time.Second):
		t.Fatal("no answer to a part within 30 s")
	}
	<-wrote // the request's end let the writer go, if it waited
	if r.err != nil {
		t.Fatalf("sending a part: %v", r.err)
	}
	return r.a
}

// sbWatcher is a WebSocket watcher of a session.
type sbWatcher struct{ *socket[sbObject] }

// dialWatch opens a watcher of session with the headers hdr.
func (e *sbEnv) dialWatch(ctx context.Context, session string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	return e.dialWS(ctx, session+"/ws", hdr)
}

// watch opens a watcher of session with the test's bearer token, failing
// the test if it is refused. It is closed, and its reader ended, when the
// test ends.
func (e *sbEnv) watch(session string) *sbWatcher {
	e.t.Helper()
	return &sbWatcher{openSocket[sbObject](e.t, session, 1<<12, func(ctx context.Context) (*websocket.Conn, *http.Response, error) {
		return e.dialWatch(ctx, session, http.Header{"Authorization": {"Bearer " + apiKey}})
	})}
}

// sbObject is a session object as JSON decodes it.
type sbObject map[string]any

// decodeObject decodes a JSON object, its numbers as json.Number.
func decodeObject(b []byte) (sbObject, error) {
	var o sbObject
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&o); err != nil {
		return nil, err
	}
	if o == nil {
		return nil, errors.New("null")
	}
	return o, nil
}

// str is the member name as a string, "" if it is none.
func (o sbObject) str(name string) string {
	s, _ := o[name].(string)
	return s
}

// num is the member name as an integer, -1 if it is none.
func (o sbObject) num(name string) int64 {
	switch v := o[name].(type) {
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return n
		}
	case float64:
		return int64(v)
	}
	return -1
}

// sbPart is an entry of parts_in_flight.
type sbPart struct {
	PartNumber int   `json:"part_number"`
	Received   int64 `json:"received"`
	Size       int64 `json:"size"`
}

// inFlight is parts_in_flight, or nil (and ok false) when it is no array
// of parts.
func (o sbObject) inFlight() (parts []sbPart, ok bool) {
	if _, isArray := o["parts_in_flight"].([]any); !isArray {
		return nil, false
	}
	b, _ := json.Marshal(o["parts_in_flight"])
	if err := json.Unmarshal(b, &parts); err != nil {
		return nil, false
	}
	return parts, true
}

// inFlightIs reports whether parts_in_flight lists exactly want.
func (o sbObject) inFlightIs(want ...sbPart) bool {
	parts, ok := o.inFlight()
	return ok && fmt.Sprint(parts) == fmt.Sprint(append([]sbPart{}, want...))
}

// passedAsIs fails the test unless the client's answer a is the origin's
// answer to its request, status and bytes, without the live view.
func (e *sbEnv) passedAsIs(what string, a apiAnswer) {
	e.t.Helper()
	o := e.log.answerTo(e.t, a.id)
	if a.code != o.status || !bytes.Equal(a.body, o.body) {
		e.t.Fatalf("%s: the client got %d %q, the origin sent %d %q", what, a.code, a.body, o.status, o.body)
	}
	if bytes.Contains(a.body, []byte(`"received_bytes"`)) || bytes.Contains(a.body, []byte(`"parts_in_flight"`)) {
		e.t.Fatalf("%s: the answer has the live view: %s", what, a.body)
	}
}

// errorCode is the code of an answer in the sandbox's error shape, "" if
// it is none.
func (a apiAnswer) errorCode() string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	json.Unmarshal(a.body, &e)
	return e.Error.Code
}

// bearer is the Authorization header of token.
func bearer(token string) http.Header {
	if token == "" {
		return http.Header{"Authorization": {""}}
	}
	return http.Header{"Authorization": {"Bearer " + token}}
}

// refusal decodes the error of a refused handshake: its code.
func refusal(t testing.TB, resp *http.Response) string {
	t.Helper()
	if resp == nil {
		t.Fatal("the handshake got no answer")
	}
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("refusal %d is not {\"error\":{\"code\",\"message\"}}: %s", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("refusal %d has Content-Type %q, want JSON", resp.StatusCode, ct)
	}
	return e.Error.Code
}
