package dstor

import (
	"bytes"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/caddy-upload-progress/caddy-upload-progress/caddymodule"
	"github.com/caddy-upload-progress/caddy-upload-progress/internal/protocoltest"
)

// The credentials of the tests' two users: the Authorization header
// dStor's clients send with every request.
var (
	alice = []string{"Authorization", "Bearer alice-key"}
	bob   = []string{"Authorization", "Bearer bob-key"}
)

// proxy is the upload_progress handler with a dstor protocol in front of
// a scripted dStor origin: what a client sends passes through the handler,
// as in Caddy, and the origin answers as the test says.
type proxy struct{ *protocoltest.Proxy }

// newProxy provisions a handler with the protocol object proto (JSON),
// tuned by tune, and checks it is valid; it is cleaned up when the test
// ends.
func newProxy(t *testing.T, proto string, tune ...func(*caddymodule.Handler)) *proxy {
	t.Helper()
	p := protocoltest.New(t, proto, tune...)
	if err := p.H.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return &proxy{p}
}

// answer is what the origin answers.
type answer = protocoltest.Answer

// answered is the origin's JSON answer: a status, a body and headers
// (name, value pairs) after its Content-Type, which they may replace.
func answered(status int, body string, header ...string) answer {
	return answer{Status: status, Header: append([]string{"Content-Type", "application/json"}, header...), Body: body}
}

// accepted is the origin's answer to a chunk it took.
var accepted = answered(http.StatusOK, `{"message":"ok"}`)

// token asks for a token of chunks chunks into folder, as JSON, and the
// origin gives tok.
func (p *proxy) token(tok string, chunks int, folder string, header ...string) {
	p.T.Helper()
	body := fmt.Sprintf(`{"chunks_number":%d,"folder_path":%q}`, chunks, folder)
	p.Send("POST", "/v1/upload/get-token", body, answered(http.StatusOK, `{"message":"ok","token":"`+tok+`"}`),
		append([]string{"Content-Type", "application/json"}, header...)...)
}

// chunk sends a chunk under tok, answered a.
func (p *proxy) chunk(tok string, c chunkBody, a answer, header ...string) *protocoltest.Origin {
	p.T.Helper()
	return p.Send("POST", "/v1/upload/", c.body, a, chunkHeader(tok, c, header...)...)
}

// chunkHeader is the headers of a chunk c under tok, then header.
func chunkHeader(tok string, c chunkBody, header ...string) []string {
	return append([]string{HeaderToken, tok, "Content-Type", c.contentType}, header...)
}

// unanswered passes a chunk through the proxy to an origin it cannot
// reach: the handler chain fails before any answer.
func (p *proxy) unanswered(tok string, c chunkBody, header ...string) {
	p.T.Helper()
	p.Unanswered("POST", "/v1/upload/", c.body, chunkHeader(tok, c, header...)...)
}

// streaming sends a chunk under tok whose body the origin reads n bytes
// of, then holds. It returns once those bytes are read; release lets the
// origin read the rest and answer a, and returns once the request is
// through.
func (p *proxy) streaming(tok string, c chunkBody, n int, a answer, header ...string) (release func()) {
	p.T.Helper()
	return p.Streaming("POST", "/v1/upload/", c.body, n, a, chunkHeader(tok, c, header...)...)
}

// statusRequest is a get-status request for tok ("": no token header),
// with alice's credential unless header gives one.
func statusRequest(method, tok string, header ...string) *http.Request {
	h := append([]string(nil), header...)
	if !hasHeader(h, "Authorization") {
		h = append(h, alice...)
	}
	if tok != "" {
		h = append(h, HeaderToken, tok)
	}
	return protocoltest.Request(method, "/v1/upload/get-status/", "", h...)
}

func hasHeader(header []string, name string) bool {
	for i := 0; i < len(header); i += 2 {
		if strings.EqualFold(header[i], name) {
			return true
		}
	}
	return false
}

// status asks get-status about tok as a client would, while the proxy
// answers it itself, and returns the HTTP status and the reply without
// its newline.
func (p *proxy) status(tok string, header ...string) (int, string) {
	p.T.Helper()
	return p.Status(statusRequest("GET", tok, header...))
}

// want checks the proxy's own get-status reply of tok: 200 and exactly reply.
func (p *proxy) want(tok, reply string, header ...string) {
	p.T.Helper()
	code, got := p.status(tok, header...)
	if code != http.StatusOK || got != reply {
		p.T.Errorf("get-status of %s: %d\n got  %s\n want 200 %s", tok, code, got, reply)
	}
}

// notFoundReply is the proxy's answer for a token it does not know.
const notFoundReply = `{"status":"ERROR","errorExplanation":"upload not found","errorAtStage":"UPLOADING"}`

// wantNotFound checks that the proxy knows no upload of tok for the
// credential.
func (p *proxy) wantNotFound(tok string, header ...string) {
	p.T.Helper()
	code, got := p.status(tok, header...)
	if code != http.StatusNotFound || got != notFoundReply {
		p.T.Errorf("get-status of %s: %d %s, want 404 %s", tok, code, got, notFoundReply)
	}
}

// statusFromOrigin asks get-status about tok once every chunk is in: the
// request goes to the origin, which answers a; it returns what the client
// got (status, body as it came) and the origin.
func (p *proxy) statusFromOrigin(tok string, a answer, header ...string) (int, string, *protocoltest.Origin) {
	p.T.Helper()
	o := &protocoltest.Origin{A: a}
	w := p.Serve(statusRequest("GET", tok, header...), o)
	if !o.Called {
		p.T.Fatalf("get-status of %s was not passed to the origin", tok)
	}
	if cl := w.Header().Get("Content-Length"); cl != "" && cl != fmt.Sprint(w.Body.Len()) {
		p.T.Errorf("get-status of %s: Content-Length %s for a %d-byte body", tok, cl, w.Body.Len())
	}
	return w.Code, w.Body.String(), o
}

// file is a file of a chunk: its path in the folder and its size.
type file struct {
	path string
	size int
}

// chunkBody is a chunk's multipart body and its content type.
type chunkBody struct {
	body, contentType string
}

// newChunk builds a chunk of files, with a fixed boundary.
func newChunk(files ...file) chunkBody {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	_ = mw.SetBoundary("dstor-chunk-boundary")
	for _, f := range files {
		fw, _ := mw.CreateFormFile("file", f.path)
		_, _ = fw.Write(bytes.Repeat([]byte{'x'}, f.size))
	}
	_ = mw.Close()
	return chunkBody{b.String(), mw.FormDataContentType()}
}

// into is where a chunk's body is into the content of its nth file (from
// 1), after k bytes of it.
func (c chunkBody) into(nth, k int) int {
	at := 0
	for range nth {
		i := strings.Index(c.body[at:], "\r\n\r\n")
		if i < 0 {
			panic("no such file in the chunk")
		}
		at += i + 4
	}
	return at + k
}

// uploading is the proxy's UPLOADING reply for the counts given.
func uploading(chunks, uploaded, inFlight, bytes, files int, current, folder string) string {
	s := fmt.Sprintf(`{"status":"UPLOADING","chunksNumber":%d,"chunksUploaded":%d,"chunksInFlight":%d,"bytesUploaded":%d,"filesUploaded":%d`, chunks, uploaded, inFlight, bytes, files)
	if current != "" {
		s += `,"currentFile":"` + current + `"`
	}
	if folder != "" {
		s += `,"folderPath":"` + folder + `"`
	}
	return s + "}"
}

// failing is uploading as an ERROR reply: a rejected chunk, why.
func failing(why string, chunks, uploaded, inFlight, bytes, files int, folder string) string {
	s := uploading(chunks, uploaded, inFlight, bytes, files, "", folder)
	return `{"status":"ERROR","errorExplanation":"` + why + `","errorAtStage":"UPLOADING",` + strings.TrimPrefix(s, `{"status":"UPLOADING",`)
}

// watcher is a WebSocket client of get-status/ws.
type watcher struct{ *protocoltest.Watcher }

// watchHeader is the headers of a watcher of tok ("": none): header, and
// the token's.
func watchHeader(tok string, header ...string) []string {
	if tok != "" {
		header = append(header[:len(header):len(header)], HeaderToken, tok)
	}
	return header
}

// watch opens a watcher of tok at srv with alice's credential unless
// header gives one.
func watch(t *testing.T, srv *httptest.Server, tok string, header ...string) *watcher {
	t.Helper()
	if !hasHeader(header, "Authorization") {
		header = append(header, alice...)
	}
	return &watcher{protocoltest.Watch(t, srv, "/v1/upload/get-status/ws", watchHeader(tok, header...)...)}
}

// refused opens a watcher of tok at srv that must be refused before the
// upgrade, and returns the status and body.
func refused(t *testing.T, srv *httptest.Server, tok string, header ...string) (int, string) {
	t.Helper()
	return protocoltest.Refused(t, srv, "/v1/upload/get-status/ws", watchHeader(tok, header...)...)
}

// until reads messages until one is reply, within bound messages; it
// fails the test if the connection ends first.
func (w *watcher) until(reply string, bound int) {
	w.T.Helper()
	w.Until(reply, bound, func(m string) bool { return m == reply })
}

// closed checks that the watcher is closed next, with code and reason.
func (w *watcher) closed(code websocket.StatusCode, reason string) {
	w.T.Helper()
	if got, why := w.CloseNext(); got != code || why != reason {
		w.T.Fatalf("watcher closed with %d %q, want %d %q", got, why, code, reason)
	}
}
