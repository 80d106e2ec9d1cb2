package nginx

import (
	"encoding/json"
	"github.com/caddy-upload-progress/caddy-upload-progress/internal/progresstest"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
	"github.com/caddy-upload-progress/caddy-upload-progress/protocol"
)

func provision(m *Nginx) error { return progresstest.Provision(m) }

func TestNginxModule(t *testing.T) {
	m := progresstest.Registered(t, "nginx")
	if _, ok := m.(*Nginx); !ok {
		t.Fatalf("module New gives %T, want *Nginx", m)
	}
}

func TestNginxProvisionDefaults(t *testing.T) {
	n := new(Nginx)
	if err := provision(n); err != nil {
		t.Fatal(err)
	}
	c := n.Common()
	if c.StatusPath != "/progress" {
		t.Errorf("status path %q, want /progress", c.StatusPath)
	}
	if len(c.WebSocketPaths) != 0 {
		t.Errorf("websocket paths %q, want none", c.WebSocketPaths)
	}
	if c.Key != "" || c.Owner != "" || c.DisableOwnerCheck {
		t.Errorf("common options %+v, want key and owner unset", *c)
	}
	// nginx records have no owner of the protocol's own.
	if _, owned := any(n).(protocol.Owned); owned {
		t.Error("nginx is an Owned protocol; its records have no owner")
	}

	up := httptest.NewRequest(http.MethodPost, "/upload?X-Progress-ID=abc", strings.NewReader("x"))
	if !n.Tracks(up) || n.Key(up) != "abc" {
		t.Errorf("upload: tracks %v, key %q", n.Tracks(up), n.Key(up))
	}
	r := httptest.NewRequest(http.MethodGet, "/progress?X-Progress-ID=abc&callback=cb", nil)
	if !n.Claims(r) {
		t.Error("a status request with an id is not claimed")
	}
	if sq, f := n.ParseStatus(r); f != nil || sq.Key != "abc" || sq.Step != 1 {
		t.Errorf("ParseStatus = %+v, %v", sq, f)
	}
	body, ctype, err := n.Encode(r, n.Render(progress.Snapshot{Found: true, State: progress.Completed}))
	if err != nil || string(body) != `cb({"state":"done"});`+"\n" || ctype != "application/javascript" {
		t.Errorf("Encode = %q, %q, %v; want the JSONP reply", body, ctype, err)
	}
	h := http.Header{}
	n.SetHeaders(h)
	if h.Get("Cache-Control") != "no-cache" {
		t.Errorf("SetHeaders gave %v, want Cache-Control: no-cache", h)
	}
}

func TestNginxUnmarshalCaddyfile(t *testing.T) {
	var n Nginx
	d := caddyfile.NewTestDispenser(`protocol nginx {
		key {header.X-Upload-ID}
		owner {header.Cookie}
		status_path /upload/progress
		websocket_path /upload/progress/ws
	}`)
	if err := n.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	want := Nginx{Config: protocol.Config{
		Key:            "{header.X-Upload-ID}",
		Owner:          "{header.Cookie}",
		StatusPath:     "/upload/progress",
		WebSocketPaths: []string{"/upload/progress/ws"},
	}}
	got, _ := json.Marshal(n)
	wantJSON, _ := json.Marshal(want)
	if string(got) != string(wantJSON) {
		t.Errorf("unmarshalled\n got  %s\n want %s", got, wantJSON)
	}
	// Configured paths survive Provision.
	if err := provision(&n); err != nil {
		t.Fatal(err)
	}
	if n.StatusPath != "/upload/progress" || len(n.WebSocketPaths) != 1 {
		t.Errorf("after Provision: %q %q", n.StatusPath, n.WebSocketPaths)
	}
}

func TestNginxUnmarshalCaddyfileErrors(t *testing.T) {
	for _, tc := range []struct {
		input, want string
	}{
		{"protocol nginx {\n\tbogus 1\n}", `unknown option "bogus" for protocol nginx`},
		// The other protocols' own options are not nginx's.
		{"protocol nginx {\n\tupload_path /up\n}", `unknown option "upload_path" for protocol nginx`},
		{"protocol nginx {\n\texists_probe http://o/{key}\n}", `unknown option "exists_probe" for protocol nginx`},
		{"protocol nginx {\n\tkey\n}", "wrong argument count"},
		{"protocol nginx {\n\twebsocket_path\n}", "wrong argument count"},
	} {
		var n Nginx
		err := n.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one saying %q", tc.input, err, tc.want)
		}
	}
}
