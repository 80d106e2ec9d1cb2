// Command upload-origin runs the reference upload backend that the Caddy
// upload-progress proxy sits in front of in the quickstart demo and the
// end-to-end tests: a storage node's /fso, pCloud's /uploadfile, the
// plain /upload store behind nginx's upload progress module, tus 1.0 at
// /files/ (tusd), a sandbox's resumable upload sessions at
// /v1/sandboxes/, and dStor's chunked folder uploads at /v1/upload/. See
// package origin for the HTTP API.
//
// Usage:
//
//	upload-origin [-listen 127.0.0.1:9000] [-dir DIR] [-api-keys k1,k2]
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/caddy-upload-progress/caddy-upload-progress/cmd/upload-origin/origin"
)

// shutdownGrace is how long in-flight uploads may finish after a signal.
const shutdownGrace = 30 * time.Second

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "address to listen on")
	dir := flag.String("dir", "", "storage directory (default: a new temporary directory)")
	keys := flag.String("api-keys", "", "comma-separated keys accepted in the x-user-api-key header (on /fso, /upload and /files/), and as pCloud's auth or access_token on /uploadfile, and as the bearer token on /v1/sandboxes/, and as the Authorization header (raw or bearer) on /v1/upload/ (default: no key needed; the sandbox routes still want a bearer token, the dStor routes an Authorization header)")
	flag.Parse()

	if err := run(*listen, *dir, splitKeys(*keys)); err != nil {
		log.Fatal(err)
	}
}

func splitKeys(s string) []string {
	var keys []string
	for k := range strings.SplitSeq(s, ",") {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

func run(listen, dir string, keys []string) error {
	if dir == "" {
		// Kept after exit on purpose, so uploads can be inspected.
		d, err := os.MkdirTemp("", "upload-origin-")
		if err != nil {
			return err
		}
		dir = d
	}
	h, err := origin.New(origin.Config{Dir: dir, APIKeys: keys, Logf: log.Printf})
	if err != nil {
		return err
	}
	defer h.Close()

	// Listen before announcing, so the log shows the real address (e.g.
	// with port 0) and a client that read it can connect at once.
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	// No ReadTimeout or WriteTimeout: large uploads may legitimately take
	// long. ReadHeaderTimeout still stops idle half-open connections.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Printf("upload-origin: storing uploads in %s", dir)
	log.Printf("upload-origin: listening on http://%s (tus at %s, sandbox uploads at %s/sandboxes/, dStor uploads at %s/)", ln.Addr(), origin.TusPath, origin.DefaultSandboxPrefix, origin.DefaultDstorPrefix)
	if len(keys) > 0 {
		log.Printf("upload-origin: %d API key(s) required (x-user-api-key; auth or access_token on /uploadfile)", len(keys))
	}

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	stop() // a second signal now kills the process the default way
	log.Printf("upload-origin: shutting down (waiting up to %s for uploads)", shutdownGrace)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
