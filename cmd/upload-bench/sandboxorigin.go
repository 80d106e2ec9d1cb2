package main

// W8's origin is the reference origin (cmd/upload-origin/origin), whose
// /v1/sandboxes/ routes serve the sandbox's resumable upload sessions, in a
// child process of its own for the reasons the sink origin is (see
// origin.go), storing into a directory of the bench's temporary directory.

import (
	"context"
	"errors"
	"os"

	"github.com/caddy-upload-progress/caddy-upload-progress/cmd/upload-origin/origin"
)

// sandboxOriginChildArg, as the first argument, makes the binary the
// reference origin; the second argument is the directory it stores into.
const sandboxOriginChildArg = "-sandbox-origin-child"

// runSandboxOriginChild is the reference origin child's main: the origin
// with its defaults (the sandbox at /v1, its default limits), storing into
// dir, logging nothing (a line per request would cost it as much as the
// proxy's work being measured).
func runSandboxOriginChild(args []string) error {
	if len(args) != 1 || args[0] == "" {
		return errors.New("want the store directory as the one argument")
	}
	h, err := origin.New(origin.Config{Dir: args[0]})
	if err != nil {
		return err
	}
	defer h.Close()
	return serveChild(h)
}

// startSandboxOrigin creates dir and runs the reference origin storing into
// it; it returns the child and the address the origin listens on.
func startSandboxOrigin(ctx context.Context, dir string) (*child, string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", err
	}
	return startServerChild(ctx, "sandbox origin", sandboxOriginChildArg, dir)
}
