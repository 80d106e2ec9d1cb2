// Package testkit holds what both the end-to-end tests (test/) and the
// benchmark (cmd/upload-bench) need around a proxy under test: a sink
// origin, free loopback ports, the WebSocket URL of a site, medians.
package testkit

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
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
