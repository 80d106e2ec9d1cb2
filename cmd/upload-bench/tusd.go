package main

// W7's origin is the real tusd (its handler, file store and in-memory
// locker, as a tus deployment runs it), in a child process of its own for
// the reasons the sink origin is (see origin.go), storing its uploads in a
// directory of the bench's temporary directory.

import (
	"context"
	"errors"
	"net/http"
	"os"

	"golang.org/x/exp/slog"

	"github.com/tus/tusd/v2/pkg/filestore"
	tushandler "github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/memorylocker"
)

// tusdChildArg, as the first argument, makes the binary tusd; the second
// argument is the directory it stores uploads in.
const tusdChildArg = "-tusd-child"

// tusdBase is tusd's endpoint, the tus module's default upload_path.
const tusdBase = "/files/"

// runTusdChild is the tusd child's main: tusd with its file store in dir,
// at /files/, logging warnings and errors only (its line per request would
// cost the origin as much as the proxy's work being measured).
func runTusdChild(args []string) error {
	if len(args) != 1 || args[0] == "" {
		return errors.New("want the upload directory as the one argument")
	}
	composer := tushandler.NewStoreComposer()
	filestore.New(args[0]).UseIn(composer)
	memorylocker.New().UseIn(composer)
	h, err := tushandler.NewHandler(tushandler.Config{
		BasePath:      tusdBase,
		StoreComposer: composer,
		Logger:        slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	return serveChild(http.StripPrefix("/files", h))
}

// startTusd creates dir and runs tusd storing into it; it returns the child
// and the address tusd listens on.
func startTusd(ctx context.Context, dir string) (*child, string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", err
	}
	return startServerChild(ctx, "tusd", tusdChildArg, dir)
}
