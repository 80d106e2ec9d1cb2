// Package testkit holds what both the end-to-end tests (test/) and the
// benchmark (cmd/upload-bench) need around a proxy under test: a sink
// origin, free loopback ports, the WebSocket URL of a site, medians; and,
// for the end-to-end tests that drive a JavaScript client, the check that
// node and test/js's npm packages are there.
package testkit

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// FreePort returns a loopback port the kernel just handed out and released:
// nobody listens on it right now. Another process could take it before the
// caller binds it; a server started on it then fails to start, and says so.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// WebSocketURL returns the ws:// URL of an http:// URL, or the wss:// URL
// of an https:// URL: where a WebSocket client dials the same site.
func WebSocketURL(httpURL string) string {
	return "ws" + strings.TrimPrefix(httpURL, "http")
}

// Median returns the middle of xs (the mean of the two middle values for
// an even count), or NaN for no values. xs is not modified.
func Median(xs []float64) float64 {
	n := len(xs)
	if n == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// sinkBufs are the sink's read buffers.
var sinkBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// Sink is an origin that reads and discards the request body at full speed
// and answers 201 with a tiny JSON naming the bytes it read
// ({"ok":true,"bytes":N}), the same for every request: with it, what is
// measured is the proxy, not a disk.
func Sink(w http.ResponseWriter, r *http.Request) {
	buf := sinkBufs.Get().(*[]byte)
	// io.CopyBuffer into io.Discard hidden behind a plain Writer: io.Discard's
	// own ReadFrom reads in 8 KiB steps; a 256 KiB buffer keeps the sink's
	// syscall count low so that the proxy, not the sink, is what limits.
	n, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, r.Body, *buf)
	sinkBufs.Put(buf)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	body := `{"ok":true,"bytes":` + strconv.FormatInt(n, 10) + "}\n"
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, body)
}

// RandomBytes is n bytes of random content, the same for the same seed.
func RandomBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

// SHA256 is the hex sha256 of b, as the reference origin reports it.
func SHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// RequireNode fails t unless node is on PATH and dir (test/js, as seen from
// the test's working directory) has tus-js-client installed in its
// node_modules: the end-to-end tests that run a real tus client need both.
// It fails rather than skips, so that a machine without them cannot pass
// those tests by not running them; the message names the fix,
// `npm ci --prefix test/js` from the repository root (.ci/run does it).
func RequireNode(t testing.TB, dir string) {
	t.Helper()
	const fix = "run `npm ci --prefix test/js` from the repository root (.ci/run does it; it needs Node.js and npm)"
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is not on PATH (%v): install Node.js, then %s", err, fix)
	}
	pkg := filepath.Join(dir, "node_modules", "tus-js-client", "package.json")
	if _, err := os.Stat(pkg); err != nil {
		t.Fatalf("tus-js-client is not installed in %s (%v): %s", dir, err, fix)
	}
}
