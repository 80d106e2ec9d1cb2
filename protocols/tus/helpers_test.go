package tus

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/protocoltest"
)

// proxy is the upload_progress handler with a tus protocol in front of a
// scripted tus server: what a client sends passes through the handler, as
// in Caddy, and the server answers as the test says.
type proxy struct{ *protocoltest.Proxy }

// newProxy provisions a handler with the protocol object proto (JSON);
// it is cleaned up when the test ends.
func newProxy(t *testing.T, proto string) *proxy {
	t.Helper()
	return &proxy{protocoltest.New(t, proto)}
}

// answer is what the tus server answers: a status and headers, no body.
type answer = protocoltest.Answer

// answered is the tus server's answer status with header (name, value
// pairs).
func answered(status int, header ...string) answer {
	return answer{Status: status, Header: header}
}

// status asks the REST status endpoint about upload, as a client would
// (header: name, value pairs), and returns the HTTP status and the reply
// without its newline.
func (p *proxy) status(upload string, header ...string) (int, string) {
	p.T.Helper()
	target := "/tus/progress"
	if upload != "" {
		target += "?upload=" + url.QueryEscape(upload)
	}
	return p.Status(protocoltest.Request(http.MethodGet, target, "", header...))
}

// want checks the status reply of upload: 200 and exactly reply.
func (p *proxy) want(upload, reply string, header ...string) {
	p.T.Helper()
	code, got := p.status(upload, header...)
	if code != http.StatusOK || got != reply {
		p.T.Errorf("status of %s: %d\n got  %s\n want 200 %s", upload, code, got, reply)
	}
}

// wantNone checks that the proxy knows no upload at upload.
func (p *proxy) wantNone(upload string, header ...string) {
	p.T.Helper()
	code, got := p.status(upload, header...)
	if want := `{"upload":"` + upload + `","status":"not_exist"}`; code != http.StatusNotFound || got != want {
		p.T.Errorf("status of %s: %d %s, want 404 %s", upload, code, got, want)
	}
}
