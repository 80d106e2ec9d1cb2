package test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
	"github.com/caddy-upload-progress/caddy-upload-progress/protocol"
)

// echoProtocol is a progress API of a third party, defined outside this
// repository's protocol packages: uploads carry X-Echo-ID, and
// GET /echo?id=… answers {"id", "state", "bytes"}. It proves that adding a
// protocol touches neither the handler nor any other protocol.
type echoProtocol struct {
	protocol.Config
}

func init() {
	caddy.RegisterModule(echoProtocol{})
}

func (echoProtocol) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: protocol.Namespace + ".echo", New: func() caddy.Module { return new(echoProtocol) }}
}

func (e *echoProtocol) Provision(caddy.Context) error {
	e.SetDefaults("/echo", "/echo/ws")
	return nil
}

func (*echoProtocol) Tracks(r *http.Request) bool {
	return progress.HasBody(r) && r.Header.Get("X-Echo-ID") != ""
}

func (*echoProtocol) Key(r *http.Request) string { return r.Header.Get("X-Echo-ID") }

func (*echoProtocol) ParseStatus(r *http.Request) (progress.StatusQuery, *progress.Failure) {
	id := r.URL.Query().Get("id")
	if id == "" {
		return progress.StatusQuery{}, progress.BadRequestf("no id")
	}
	return progress.StatusQuery{Key: id, Step: 1}, nil
}

type echoReply struct {
	ID    string `json:"id,omitempty"`
	State string `json:"state"`
	Bytes int64  `json:"bytes"`
}

func (*echoProtocol) Render(s progress.Snapshot) any {
	return echoReply{ID: s.Key, State: s.State.String(), Bytes: s.Received}
}

func (*echoProtocol) Fail(f *progress.Failure) (int, any) {
	return f.HTTPStatus(), echoReply{State: "refused: " + f.Message}
}

func (e *echoProtocol) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return e.UnmarshalBlock(d, "echo", nil)
}

var _ protocol.Protocol = (*echoProtocol)(nil)

func TestThirdPartyProtocolModule(t *testing.T) {
	e := newEnv(t, "protocol echo shard")
	body := pattern(70000)
	if res := e.upload("/echo.bin", bytes.NewReader(body), int64(len(body)), "", goldenHeader("X-Echo-ID", "e1")); res.code != 201 {
		t.Fatalf("upload: %d %s", res.code, res.body)
	}
	if got := e.storedSHA256("/echo.bin"); got != sha256Hex(body) {
		t.Fatalf("the origin stored %s, want %s", got, sha256Hex(body))
	}
	resp, err := e.client.Get(e.proxy + "/echo?id=e1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var got echoReply
	if err := json.Unmarshal(b, &got); err != nil || resp.StatusCode != 200 || got != (echoReply{ID: "e1", State: "completed", Bytes: 70000}) {
		t.Fatalf("status: %d %s", resp.StatusCode, b)
	}
	if n := metricValue(e.scrape(), `caddy_upload_progress_uploads_finished_total{outcome="completed",protocol="echo",zone="default"}`); n != 1 {
		t.Errorf("uploads_finished_total of the echo protocol = %v, want 1", n)
	}
	// The protocol's own refusal shape.
	resp, err = e.client.Get(e.proxy + "/echo")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || string(bytes.TrimSpace(b)) != `{"state":"refused: no id","bytes":0}` {
		t.Fatalf("refusal: %d %s", resp.StatusCode, b)
	}
}
