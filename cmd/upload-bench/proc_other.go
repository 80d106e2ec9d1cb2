//go:build !linux

package main

import "os/exec"

// setChildAttrs has no portable parent-death signal outside Linux; the
// origin child still exits when its stdin closes, and Caddy is stopped by
// the bench's deferred cleanup.
func setChildAttrs(cmd *exec.Cmd) {}
