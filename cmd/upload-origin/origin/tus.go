package origin

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/exp/slog"

	"github.com/tus/tusd/v2/pkg/filestore"
	tushandler "github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/memorylocker"
)

// TusPath is where the origin serves tus 1.0: creations are POSTed to it,
// and the upload URLs it hands out lie under it.
const TusPath = "/files/"

// TusDir is the directory under Config.Dir where tus uploads are stored,
// each as <id> (the bytes) and <id>.info (tusd's description of it). It is
// made with the first upload.
const TusDir = ".tus"

// tusGrace is how long tusd lets the store finish a request's work after
// the request ended (a PATCH cut off saves what it had read). The file
// store writes to a local disk: a second is plenty, and tusd keeps a
// goroutine per request for that long (its default is 10 s).
const tusGrace = time.Second

// newTus is tusd's own handler (the reference tus server) with its file
// store in dir, termination and concatenation on, as a tus client meets
// it behind a proxy. Its logs at WARN and above go to logf.
func newTus(dir string, logf func(format string, args ...any)) (http.Handler, error) {
	composer := tushandler.NewStoreComposer()
	filestore.New(dir).UseIn(composer)
	memorylocker.New().UseIn(composer)
	h, err := tushandler.NewHandler(tushandler.Config{
		BasePath:                         TusPath,
		StoreComposer:                    composer,
		GracefulRequestCompletionTimeout: tusGrace,
		Logger:                           slog.New(slog.NewTextHandler(logfWriter(logf), &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return nil, fmt.Errorf("origin: tus: %w", err)
	}
	// tusd routes on the path below its base path.
	return http.StripPrefix(strings.TrimSuffix(TusPath, "/"), h), nil
}

// tusStore is where newTus keeps the uploads of an origin storing in dir.
func tusStore(dir string) string { return filepath.Join(dir, TusDir) }

// isTus reports whether a request is for the tus endpoint.
func isTus(r *http.Request) bool {
	return r.URL.Path+"/" == TusPath || strings.HasPrefix(r.URL.Path, TusPath)
}

// serveTus passes a tus request to tusd once it has checked the caller
// and the upload it names. The test hooks do not apply: tus requests are
// answered as tusd answers them.
func (s *Server) serveTus(w http.ResponseWriter, r *http.Request) int {
	// A CORS preflight carries no credential.
	if r.Method != http.MethodOptions {
		if msg := s.checkKey(r); msg != "" {
			writeJSON(w, http.StatusUnauthorized, ErrorResponse{Error: msg})
			return http.StatusUnauthorized
		}
	}
	// tusd's file store maps an upload id onto a file path as it is: one
	// that is not a plain name, or a concatenation that names one, could
	// reach files outside the store.
	if id := strings.TrimPrefix(r.URL.Path, TusPath); !plainID(id) {
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: "no such upload"})
		return http.StatusNotFound
	}
	if strings.Contains(r.Header.Get("Upload-Concat"), "..") {
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: "invalid Upload-Concat"})
		return http.StatusBadRequest
	}
	sw := &statusWriter{ResponseWriter: w}
	s.tus.ServeHTTP(sw, r)
	return sw.status
}

// plainID reports whether id is "" (the creation endpoint) or a single
// path segment, as the ids tusd makes are.
func plainID(id string) bool {
	return id == "" || id != "." && id != ".." && !strings.ContainsAny(id, "/\\\x00")
}

// statusWriter notes the status of the answer for the log. tusd sets read
// deadlines through http.ResponseController, which finds the connection's
// writer through Unwrap.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logfWriter writes each line it is given to logf.
type logfWriter func(format string, args ...any)

func (f logfWriter) Write(b []byte) (int, error) {
	f("origin: tusd: %s", strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}
