package main

// W9's origin is the reference upload origin (cmd/upload-origin), whose
// dStor routes at /v1/upload/ keep a folder's chunks in a temporary folder
// and move its files into place after the last one, in a child process of
// its own for the reasons the sink origin is (see origin.go), storing into
// a directory of the bench's temporary directory.

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/caddy-upload-progress/caddy-upload-progress/cmd/upload-origin/origin"
)

// dstorChildArg, as the first argument, makes the binary the reference
// origin; the second argument is the directory it stores into.
const dstorChildArg = "-dstor-child"

// dstorStageDelay is how long each of the origin's stages after the last
// chunk (ADDING_TO_IPFS, SAVING_DATA) lasts: short, as W9 times the chunks,
// not the stages, and waits for DONE after each run.
const dstorStageDelay = time.Millisecond

// runDstorChild is the reference origin child's main, quiet (no log
// function: no line per request).
func runDstorChild(args []string) error {
	if len(args) != 1 || args[0] == "" {
		return errors.New("want the storage directory as the one argument")
	}
	h, err := origin.New(origin.Config{Dir: args[0], DstorStageDelay: dstorStageDelay})
	if err != nil {
		return err
	}
	defer h.Close()
	return serveChild(h)
}

// startDstorOrigin creates dir and runs the reference origin storing into
// it; it returns the child and the address the origin listens on.
func startDstorOrigin(ctx context.Context, dir string) (*child, string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", err
	}
	return startServerChild(ctx, "dstor origin", dstorChildArg, dir)
}
