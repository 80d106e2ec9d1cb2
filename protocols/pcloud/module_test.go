package pcloud

import (
	"encoding/json"
	"github.com/caddy-upload-progress/caddy-upload-progress/internal/progresstest"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-upload-progress/caddy-upload-progress/protocol"
)

func provision(m *Pcloud) error { return progresstest.Provision(m) }

func TestPcloudModule(t *testing.T) {
	m := progresstest.Registered(t, "pcloud")
	if _, ok := m.(*Pcloud); !ok {
		t.Fatalf("module New gives %T, want *Pcloud", m)
	}
}

func TestPcloudProvisionDefaults(t *testing.T) {
	p := new(Pcloud)
	if err := provision(p); err != nil {
		t.Fatal(err)
	}
	c := p.Common()
	if c.StatusPath != "/uploadprogress" {
		t.Errorf("status path %q, want /uploadprogress", c.StatusPath)
	}
	if want := []string{"/uploadprogress/ws"}; !slices.Equal(c.WebSocketPaths, want) {
		t.Errorf("websocket paths %q, want %q", c.WebSocketPaths, want)
	}
	if p.UploadPath != "/uploadfile" {
		t.Errorf("upload path %q, want /uploadfile", p.UploadPath)
	}
	if c.Key != "" || c.Owner != "" || c.DisableOwnerCheck {
		t.Errorf("common options %+v, want key and owner unset", *c)
	}
	// The module tracks uploads to its upload path only.
	up := httptest.NewRequest(http.MethodPost, "/uploadfile?progresshash=h&auth=a&filename=f.txt", strings.NewReader("x"))
	if !p.Tracks(up) || p.Key(up) != "h" || p.Credential(up) != "auth:a" || p.FileName(up) != "f.txt" {
		t.Errorf("upload: tracks %v, key %q, credential %q, file name %q", p.Tracks(up), p.Key(up), p.Credential(up), p.FileName(up))
	}
	if other := httptest.NewRequest(http.MethodPost, "/api/upload?progresshash=h", strings.NewReader("x")); p.Tracks(other) {
		t.Error("an upload to another path is tracked")
	}
}

func TestPcloudProvisionUploadPath(t *testing.T) {
	p := &Pcloud{UploadPath: "/api/upload"}
	if err := provision(p); err != nil {
		t.Fatal(err)
	}
	if p.UploadPath != "/api/upload" {
		t.Errorf("upload path %q, want the configured /api/upload", p.UploadPath)
	}
	if r := httptest.NewRequest(http.MethodPost, "/api/upload?progresshash=h", strings.NewReader("x")); !p.Tracks(r) {
		t.Error("an upload to the configured path is not tracked")
	}
	if r := httptest.NewRequest(http.MethodPost, "/uploadfile?progresshash=h", strings.NewReader("x")); p.Tracks(r) {
		t.Error("an upload to the default path is tracked with another one configured")
	}

	p = &Pcloud{UploadPath: "uploadfile"}
	if err := provision(p); err == nil || !strings.Contains(err.Error(), "must start with /") {
		t.Errorf("upload_path without a leading /: Provision = %v, want an error", err)
	}
}

func TestPcloudUnmarshalCaddyfile(t *testing.T) {
	var p Pcloud
	d := caddyfile.NewTestDispenser(`protocol pcloud {
		key {query.progresshash}
		owner {header.X-Session}
		status_path /api/uploadprogress
		websocket_path /api/uploadprogress/ws
		upload_path /api/uploadfile
	}`)
	if err := p.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	want := Pcloud{
		Config: protocol.Config{
			Key:            "{query.progresshash}",
			Owner:          "{header.X-Session}",
			StatusPath:     "/api/uploadprogress",
			WebSocketPaths: []string{"/api/uploadprogress/ws"},
		},
		UploadPath: "/api/uploadfile",
	}
	got, _ := json.Marshal(p)
	wantJSON, _ := json.Marshal(want)
	if string(got) != string(wantJSON) {
		t.Errorf("unmarshalled\n got  %s\n want %s", got, wantJSON)
	}
	// The protocol's own option sits beside the common ones in its JSON.
	if !strings.Contains(string(got), `"upload_path":"/api/uploadfile"`) || !strings.Contains(string(got), `"status_path":"/api/uploadprogress"`) {
		t.Errorf("JSON %s lacks upload_path or status_path", got)
	}
}

func TestPcloudUnmarshalCaddyfileErrors(t *testing.T) {
	for _, tc := range []struct {
		input, want string
	}{
		{"protocol pcloud {\n\tbogus 1\n}", `unknown option "bogus" for protocol pcloud`},
		{"protocol pcloud {\n\texists_probe http://o/{key}\n}", `unknown option "exists_probe" for protocol pcloud`},
		{"protocol pcloud {\n\tupload_path\n}", "wrong argument count"},
		{"protocol pcloud {\n\tupload_path /a /b\n}", "wrong argument count"},
	} {
		var p Pcloud
		err := p.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one saying %q", tc.input, err, tc.want)
		}
	}
}
