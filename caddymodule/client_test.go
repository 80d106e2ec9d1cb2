package caddymodule

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	jsclient "github.com/caddy-upload-progress/caddy-upload-progress/clients/js"
)

// clientHandler is a provisioned handler serving the client at
// /upload-progress.js, in front of a next handler that answers 404.
func clientHandler(t *testing.T) func(*http.Request) *http.Response {
	t.Helper()
	h := &Handler{Zone: uniqueZone(t), ClientPath: "/upload-progress.js"}
	provisionForTest(t, h)
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		http.NotFound(w, r)
		return nil
	})
	return func(r *http.Request) *http.Response {
		rec := httptest.NewRecorder()
		if err := h.ServeHTTP(rec, r, next); err != nil {
			t.Fatalf("ServeHTTP: %v", err)
		}
		return rec.Result()
	}
}

func TestClientServed(t *testing.T) {
	serve := clientHandler(t)
	res := serve(httptest.NewRequest(http.MethodGet, "/upload-progress.js", nil))
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || !bytes.Equal(body, jsclient.Source) {
		t.Fatalf("GET: %d, %d bytes, want 200 and the %d bytes of upload-progress.js", res.StatusCode, len(body), len(jsclient.Source))
	}
	if !bytes.Contains(body, []byte("export function watchUpload(")) || !bytes.Contains(body, []byte("export async function uploadWithProgress(")) {
		t.Fatal("the served module does not export watchUpload and uploadWithProgress")
	}
	want := map[string]string{
		"Content-Type":   "text/javascript; charset=utf-8",
		"ETag":           jsclient.ETag,
		"Cache-Control":  "public, max-age=300",
		"Content-Length": "",
	}
	for k, v := range want {
		got := res.Header.Get(k)
		if v == "" && got == "" || v != "" && got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if !strings.HasPrefix(jsclient.ETag, `"`) || len(jsclient.ETag) < 10 {
		t.Errorf("ETag %q is no strong entity tag", jsclient.ETag)
	}

	// A browser revalidating its copy gets 304 without the body.
	req := httptest.NewRequest(http.MethodGet, "/upload-progress.js", nil)
	req.Header.Set("If-None-Match", jsclient.ETag)
	res = serve(req)
	body, _ = io.ReadAll(res.Body)
	if res.StatusCode != http.StatusNotModified || len(body) != 0 || res.Header.Get("ETag") != jsclient.ETag {
		t.Fatalf("If-None-Match: %d with %d bytes, ETag %q; want 304, no body, the ETag", res.StatusCode, len(body), res.Header.Get("ETag"))
	}
	req.Header.Set("If-None-Match", `"something-older"`)
	if res = serve(req); res.StatusCode != http.StatusOK {
		t.Fatalf("If-None-Match of another version: %d, want 200", res.StatusCode)
	}

	// HEAD: the headers of GET, no body.
	res = serve(httptest.NewRequest(http.MethodHead, "/upload-progress.js", nil))
	body, _ = io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || len(body) != 0 || res.Header.Get("Content-Type") != "text/javascript; charset=utf-8" ||
		res.Header.Get("ETag") != jsclient.ETag {
		t.Fatalf("HEAD: %d with %d bytes, %v", res.StatusCode, len(body), res.Header)
	}

	res = serve(httptest.NewRequest(http.MethodPost, "/upload-progress.js", strings.NewReader("x")))
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST: %d, Allow %q; want 405 with Allow: GET, HEAD", res.StatusCode, res.Header.Get("Allow"))
	}

	// Other paths pass on.
	if res = serve(httptest.NewRequest(http.MethodGet, "/upload-progress.js/x", nil)); res.StatusCode != http.StatusNotFound {
		t.Fatalf("another path: %d, want the next handler's 404", res.StatusCode)
	}
}

// Without client_path (the default), nothing is served.
func TestClientNotServedByDefault(t *testing.T) {
	h := &Handler{Zone: uniqueZone(t)}
	provisionForTest(t, h)
	rec := httptest.NewRecorder()
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusTeapot)
		return nil
	})
	if err := h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/upload-progress.js", nil), next); err != nil || rec.Code != http.StatusTeapot {
		t.Fatalf("GET without client_path: %d, %v; want the next handler's answer", rec.Code, err)
	}
}

func TestClientPathOption(t *testing.T) {
	var h Handler
	d := caddyfile.NewTestDispenser("upload_progress {\n\tclient_path /js/upload-progress.js\n}")
	if err := h.UnmarshalCaddyfile(d); err != nil || h.ClientPath != "/js/upload-progress.js" {
		t.Fatalf("client_path: %q, %v", h.ClientPath, err)
	}
	for _, bad := range []struct{ path, want string }{
		{"upload-progress.js", "must start with /"},
		{"/progress", "is an endpoint of protocol shard"},
	} {
		h := &Handler{Zone: uniqueZone(t), ClientPath: bad.path}
		_, err := provisionHandler(t, h)
		if err == nil {
			err = h.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("client_path %q: %v, want an error saying %q", bad.path, err, bad.want)
		}
	}
}
