package caddymodule

import (
	"bytes"
	"net/http"
	"time"

	jsclient "github.com/caddy-upload-progress/caddy-upload-progress/clients/js"
)

// clientCacheControl lets browsers and caches keep the client for five
// minutes, then revalidate it with its ETag (a 304 costs a few bytes): a
// new build of Caddy reaches pages within minutes.
const clientCacheControl = "public, max-age=300"

// serveClient answers GET and HEAD of client_path with the JavaScript
// client built into this binary.
func (h *Handler) serveClient(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed: use GET", http.StatusMethodNotAllowed)
		return nil
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "text/javascript; charset=utf-8")
	hdr.Set("ETag", jsclient.ETag)
	hdr.Set("Cache-Control", clientCacheControl)
	hdr.Set("X-Content-Type-Options", "nosniff")
	// ServeContent answers If-None-Match (304), HEAD and ranges.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(jsclient.Source))
	return nil
}
