// Package uploadprogress plugs upload-progress tracking into Caddy: the
// handler and every progress API this repository has.
//
// Build it in with
//
//	xcaddy build --with github.com/caddy-upload-progress/caddy-upload-progress
//
// The module is http.handlers.upload_progress, the Caddyfile directive
// upload_progress; the progress APIs are its guest modules in
// http.handlers.upload_progress.protocols (shard, pcloud, nginx, tus, sandbox, dstor), and
// a zone shared by many proxies is kept by http.handlers.upload_progress.stores.redis. It adds
// the command `caddy upload-progress` (package cli), the terminal client of
// those APIs. See package caddymodule, package protocol for adding one, and
// the README.
package uploadprogress

import (
	_ "embed"

	_ "github.com/caddy-upload-progress/caddy-upload-progress/caddymodule"
	_ "github.com/caddy-upload-progress/caddy-upload-progress/cli"
	_ "github.com/caddy-upload-progress/caddy-upload-progress/protocols/dstor"
	_ "github.com/caddy-upload-progress/caddy-upload-progress/protocols/nginx"
	_ "github.com/caddy-upload-progress/caddy-upload-progress/protocols/pcloud"
	_ "github.com/caddy-upload-progress/caddy-upload-progress/protocols/sandbox"
	_ "github.com/caddy-upload-progress/caddy-upload-progress/protocols/shard"
	_ "github.com/caddy-upload-progress/caddy-upload-progress/protocols/tus"
	_ "github.com/caddy-upload-progress/caddy-upload-progress/stores/redis"
)

// ExampleCaddyfile is Caddyfile.example, the configuration of the quickstart.
//
//go:embed Caddyfile.example
var ExampleCaddyfile []byte
