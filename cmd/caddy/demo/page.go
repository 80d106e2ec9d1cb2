package demo

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(Page{})
}

// PagePaths are the request paths the page answers: the page itself at /
// (whatever the query: /?watch=… too) and its assets under /demo/. No
// progress API of the demo uses them.
var PagePaths = []any{"/", assetPrefix + "*"}

// assetPrefix is where the page's scripts, styles and the vendored Uppy are.
const assetPrefix = "/demo/"

// files is the page and its assets: everything it loads comes from here,
// so the demo needs no network.
//
//go:embed page
var files embed.FS

// Page serves the demo page and its assets from the binary.
type Page struct{}

// CaddyModule returns the Caddy module information.
func (Page) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.upload_progress_demo_page",
		New: func() caddy.Module { return new(Page) },
	}
}

// ServeHTTP answers / with the page and /demo/<file> with an asset, and
// anything else with 404: its route matches PagePaths only.
func (Page) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	page, _ := fs.Sub(files, "page")
	// The embedded files have no modification time: ask browsers to
	// check again, so a rebuilt demo is seen at once.
	w.Header().Set("Cache-Control", "no-cache")
	switch {
	case r.URL.Path == "/":
		http.ServeFileFS(w, r, page, "index.html")
	case strings.HasPrefix(r.URL.Path, assetPrefix) && !strings.HasSuffix(r.URL.Path, "/"):
		http.StripPrefix(strings.TrimSuffix(assetPrefix, "/"), http.FileServerFS(page)).ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
	return nil
}

// Interface guard.
var _ caddyhttp.MiddlewareHandler = (*Page)(nil)
