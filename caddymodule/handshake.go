package caddymodule

import (
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// checkHandshake refuses, in the protocol's shape, a request at a
// WebSocket endpoint that cannot become a watcher: one that is no
// WebSocket handshake (a plain GET, or a request over HTTP/2 or HTTP/3,
// where Caddy serves no WebSocket) and a cross-origin page that
// origin_patterns does not allow. The WebSocket library would answer both
// in plain text, with connection-specific headers that HTTP/3 clients
// reject. It leaves the finer points of a handshake to the library.
func checkHandshake(r *http.Request, originPatterns []string) *progress.Failure {
	if r.ProtoMajor != 1 || !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		return &progress.Failure{Kind: progress.UpgradeRequired, Message: "a WebSocket handshake over HTTP/1.1, or Accept: text/event-stream, is required here; poll the status endpoint otherwise"}
	}
	if !originAllowed(r, originPatterns) {
		return &progress.Failure{Kind: progress.Forbidden, Message: "this page's origin may not watch uploads here"}
	}
	return nil
}

// headerHasToken reports whether a comma-separated header holds token.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// originAllowed reports whether the page that opens the WebSocket may: a
// request with no Origin (no browser) or from the same host may, another
// only if one of patterns (path.Match, on the host, or on scheme://host
// when the pattern has a scheme) matches it. It is the rule the WebSocket
// library applies in Accept.
func originAllowed(r *http.Request, patterns []string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(r.Host, u.Host) {
		return true
	}
	for _, p := range patterns {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(target)); ok {
			return true
		}
	}
	return false
}
