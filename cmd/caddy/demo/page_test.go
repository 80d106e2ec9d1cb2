package demo

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The page answers / (with or without a watch query) and its assets, and
// 404 for what it does not have.
func TestPageServesThePageAndItsAssets(t *testing.T) {
	for _, c := range []struct {
		path, status, contentType, contains string
	}{
		{"/", "200", "text/html", `<script type="module" src="/demo/demo.js">`},
		{"/?watch=shard:/demo/a.bin", "200", "text/html", `id="watch-form"`},
		{"/demo/demo.js", "200", "text/javascript", "watchUpload"},
		{"/demo/vendor/uppy.mjs", "200", "text/javascript", "MIT licensed"},
		{"/demo/demo.css", "200", "text/css", "progress"},
		{"/demo/nope.js", "404", "", ""},
		{"/demo/", "404", "", ""},
	} {
		rec := httptest.NewRecorder()
		if err := (Page{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, c.path, nil), nil); err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		body, _ := io.ReadAll(rec.Body)
		if got := rec.Result().Status[:3]; got != c.status ||
			!strings.HasPrefix(rec.Header().Get("Content-Type"), c.contentType) || !strings.Contains(string(body), c.contains) {
			t.Errorf("GET %s: %s %q, %d bytes; want %s %s containing %q", c.path, got, rec.Header().Get("Content-Type"), len(body), c.status, c.contentType, c.contains)
		}
	}
}

// The page's route comes first and claims only its own paths, so that
// every progress API and upload route still reaches upload_progress.
func TestConfigPutsThePageFirstOnItsOwnPaths(t *testing.T) {
	cfg, err := Config("127.0.0.1:18001", "127.0.0.1:18002", "127.0.0.1:18003")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes []struct {
						Match  []map[string][]string `json:"match"`
						Handle []map[string]any      `json:"handle"`
					} `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(cfg, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Apps.HTTP.Servers) != 1 {
		t.Fatalf("servers: %+v", v.Apps.HTTP.Servers)
	}
	for _, srv := range v.Apps.HTTP.Servers {
		if len(srv.Routes) != 2 {
			t.Fatalf("routes: %+v", srv.Routes)
		}
		page, rest := srv.Routes[0], srv.Routes[1]
		if len(page.Match) != 1 || strings.Join(page.Match[0]["path"], " ") != "/ /demo/*" ||
			len(page.Handle) != 1 || page.Handle[0]["handler"] != "upload_progress_demo_page" {
			t.Errorf("first route %+v, want the page on / and /demo/*", page)
		}
		if len(rest.Handle) == 0 || rest.Handle[0]["handler"] != "upload_progress" {
			t.Errorf("second route %+v, want upload_progress", rest)
		}
	}
}
