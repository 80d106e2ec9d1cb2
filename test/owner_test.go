package test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// With owner {http.request.header.X-Tenant}, records are bound to that
// header's value: the same tenant sees the upload whatever its API key,
// another tenant sees what a never-used path shows, a request without the
// header is refused, and an upload without it passes untracked.
func TestOwnerFromHeader(t *testing.T) {
	e := newEnv(t, "owner {http.request.header.X-Tenant}")
	before := e.scrape()
	data := pattern(10 << 10)
	if res := e.upload("/tenant.bin", bytes.NewReader(data), int64(len(data)), "", http.Header{"X-Tenant": {"acme"}}); res.code != http.StatusCreated {
		t.Fatalf("upload: %d %s %v", res.code, res.body, res.err)
	}
	const notExist = `{"total_size":0,"uploaded":0,"status":"not_exist","error":""}`
	for _, c := range []struct {
		name string
		hdr  http.Header
		code int
		want string
	}{
		{"same tenant", http.Header{"X-Tenant": {"acme"}}, 200, `{"total_size":10240,"uploaded":10240,"status":"completed","error":""}`},
		{"same tenant, another API key", http.Header{"X-Tenant": {"acme"}, "X-User-Api-Key": {"other-key"}}, 200, `{"total_size":10240,"uploaded":10240,"status":"completed","error":""}`},
		{"another tenant, the uploader's API key", http.Header{"X-Tenant": {"globex"}, "X-User-Api-Key": {apiKey}}, 200, notExist},
		{"no tenant", http.Header{"X-User-Api-Key": {apiKey}}, 401, `{"error":"missing credential"}`},
	} {
		if code, body := e.statusWith("/tenant.bin", c.hdr); code != c.code || body != c.want {
			t.Errorf("%s: %d %s, want %d %s", c.name, code, body, c.code, c.want)
		}
	}

	// An upload without the header passes untracked.
	if res := e.upload("/no-tenant.bin", bytes.NewReader(data), int64(len(data)), "", nil); res.code != http.StatusCreated {
		t.Fatalf("upload without a tenant: %d %s %v", res.code, res.body, res.err)
	}
	series := `caddy_upload_progress_uploads_untracked_total{protocol="shard",reason="no_credential",zone="default"}`
	if d := grew(before, e.scrape(), series); d != 1 {
		t.Fatalf("%s grew by %v, want 1", series, d)
	}
}

// With owner {http.auth.user.id} after basic_auth, records are bound to
// the authenticated user.
func TestOwnerFromBasicAuthUser(t *testing.T) {
	hash := func(password string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	e := newEnvWith(t, "owner {http.auth.user.id}",
		"basic_auth {\n\t\talice "+hash("alice-pw")+"\n\t\tbob "+hash("bob-pw")+"\n\t}", false)
	as := func(user, password string) http.Header {
		req, _ := http.NewRequest(http.MethodGet, "/", nil)
		req.SetBasicAuth(user, password)
		return http.Header{"Authorization": req.Header["Authorization"]}
	}
	data := pattern(10 << 10)
	if res := e.upload("/alice.bin", bytes.NewReader(data), int64(len(data)), "", as("alice", "alice-pw")); res.code != http.StatusCreated {
		t.Fatalf("upload as alice: %d %s %v", res.code, res.body, res.err)
	}
	for _, c := range []struct {
		name string
		hdr  http.Header
		code int
		want string
	}{
		{"alice", as("alice", "alice-pw"), 200, `"status":"completed"`},
		{"bob", as("bob", "bob-pw"), 200, `"status":"not_exist"`},
		{"nobody", nil, 401, ""},
		{"alice, wrong password", as("alice", "bob-pw"), 401, ""},
	} {
		code, body := e.statusWith("/alice.bin", c.hdr)
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s, want %d with %s", c.name, code, body, c.code, c.want)
		}
	}
}

// anyPathOrigin takes uploads to any path, as pCloud-like origins do, and
// answers {"result":0}.
func anyPathOrigin(t *testing.T) string {
	return startFaultyOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"result": 0, "path": r.URL.Path})
	})
}

// pCloud's upload_path moves the tracked upload route: uploads to it are
// tracked, those to /uploadfile no longer are.
func TestPcloudUploadPath(t *testing.T) {
	e := newEnv(t, "")
	e.load("protocol pcloud {\n\tupload_path /custom\n}", anyPathOrigin(t))
	before := e.scrape()
	post := func(path string) {
		t.Helper()
		resp, err := e.client.Post(e.proxy+path, "application/octet-stream", bytes.NewReader(pattern(10<<10)))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("upload to %s: %s", path, resp.Status)
		}
	}
	post("/custom?progresshash=to-custom&auth=tok&filename=a.bin")
	post("/uploadfile?progresshash=to-default&auth=tok&filename=b.bin")

	if p, raw := e.pcloudProgress("progresshash=to-custom&auth=tok"); p.Result != 0 || !p.Finished || p.Uploaded != 10<<10 {
		t.Fatalf("upload to the configured upload_path: %s, want it tracked and finished", raw)
	}
	if p, raw := e.pcloudProgress("progresshash=to-default&auth=tok"); p.Result != 1900 {
		t.Fatalf("upload to /uploadfile with upload_path /custom: %s, want result 1900 (not tracked)", raw)
	}
	started := `caddy_upload_progress_uploads_started_total{protocol="pcloud",zone="default"}`
	if d := grew(before, e.scrape(), started); d != 1 {
		t.Fatalf("%s grew by %v, want 1", started, d)
	}
}

// upload_path mistakes are refused when the config loads, with the reason.
func TestUploadPathErrors(t *testing.T) {
	e := newEnv(t, "")
	for block, want := range map[string]string{
		"protocol pcloud {\n\tupload_path custom\n}": `upload_path "custom" must start with /`,
		"protocol shard {\n\tupload_path /up\n}":     `unknown option "upload_path" for protocol shard`,
	} {
		if err := e.tryLoad(block, e.originURL); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error containing %q", block, err, want)
		}
	}
}
