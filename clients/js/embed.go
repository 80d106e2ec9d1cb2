// Package jsclient holds the JavaScript client of caddy-upload-progress,
// upload-progress.js, for the upload_progress handler to serve at its
// client_path: the module a page imports is the one this build was
// tested with.
package jsclient

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
)

// Source is upload-progress.js, an ES module.
//
//go:embed upload-progress.js
var Source []byte

// ETag is the strong entity tag of Source: its SHA-256, quoted.
var ETag = etag(Source)

func etag(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}
