// Package uploadprogress plugs upload-progress tracking into Caddy.
//
// Build it in with
//
//	xcaddy build --with github.com/caddy-upload-progress/caddy-upload-progress
//
// The module is http.handlers.upload_progress, the Caddyfile directive
// upload_progress; see package caddymodule and the README.
package uploadprogress

import (
	_ "embed"

	_ "github.com/caddy-upload-progress/caddy-upload-progress/caddymodule"
)

// ExampleCaddyfile is Caddyfile.example, the configuration of the quickstart.
//
//go:embed Caddyfile.example
var ExampleCaddyfile []byte
