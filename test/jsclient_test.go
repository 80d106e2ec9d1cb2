package test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/testkit"
)

// The tests here run the JavaScript client (clients/js/upload-progress.js)
// under node --test, against the real Caddy with every protocol in front
// of the reference origin: test/js/client/*.test.mjs upload through Caddy
// with uploadWithProgress and watch with watchUpload; this side checks
// what the origin stored.

// jsClientBlock is the upload_progress block of the tests: every protocol,
// the sessions' origin asked about watched sessions, the client served.
func jsClientBlock(origin string) string {
	return `protocol shard pcloud nginx tus
protocol sandbox {
	origin http://` + origin + `
}
protocol dstor {
	origin http://` + origin + `
}
update_interval 50ms
client_path /upload-progress.js`
}

// TestJSClient runs the client's tests of each protocol: uploads over the
// WebSocket (polling for nginx), the files the origin must then hold.
func TestJSClient(t *testing.T) {
	e := newJSClientEnv(t, "")
	stored := e.runNodeTests(t, "protocols.test.mjs")
	want := map[string]bool{"shard": true, "pcloud": true, "nginx": true, "tus": true, "sandbox": true, "dstor": true}
	for _, s := range stored {
		delete(want, s.Protocol)
		if got := e.storedSHA256(s.Stored); got != s.SHA256 {
			t.Errorf("%s: the origin holds %s with sha256 %s, the client sent %s", s.Protocol, s.Stored, got, s.SHA256)
		}
	}
	if len(want) > 0 {
		t.Errorf("no upload of %v reported by the node tests", want)
	}
}

// TestJSClientUnits runs the client's tests that need no server: the
// event-stream parser, each protocol's replies read as the normalised
// event, the transports' logic against a scripted fetch.
func TestJSClientUnits(t *testing.T) {
	testkit.RequireNode(t, "js")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "--test", "--test-reporter=spec", filepath.Join("..", "clients", "js", "test"))
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test clients/js/test: %v\n%s", err, out)
	}
}

// TestJSClientStreams runs the client's tests of Server-Sent Events and
// watch tokens: each protocol's stream read as SSE, and the WebSocket
// opened with a watch token in place of the credential, as in a browser.
func TestJSClientStreams(t *testing.T) {
	e := newJSClientEnv(t, "")
	for _, s := range e.runNodeTests(t, "streams.test.mjs") {
		if got := e.storedSHA256(s.Stored); got != s.SHA256 {
			t.Errorf("%s: the origin holds %s with sha256 %s, the client sent %s", s.Protocol, s.Stored, got, s.SHA256)
		}
	}
}

// TestJSClientFallsBackToSSE: a front that refuses the WebSocket (its
// upgrades reach the origin, which knows no such path) leaves the client
// Server-Sent Events at the same path.
func TestJSClientFallsBackToSSE(t *testing.T) {
	e := newJSClientEnv(t, `@upgrade {
	path /ws/progress
	header Connection *Upgrade*
}
rewrite @upgrade /no-websocket-here`)
	e.runNodeTestsExpecting(t, "sse")
}

// TestJSClientFallsBackToPolling: a front that refuses the WebSocket and
// Server-Sent Events leaves the client polling the REST endpoint.
func TestJSClientFallsBackToPolling(t *testing.T) {
	e := newJSClientEnv(t, `rewrite /ws/progress /no-stream-here`)
	e.runNodeTestsExpecting(t, "poll")
}

// newJSClientEnv starts the origin and Caddy with jsClientBlock and
// siteExtra, once node and the test packages are installed.
func newJSClientEnv(t *testing.T, siteExtra string) *env {
	t.Helper()
	testkit.RequireNode(t, "js")
	if _, err := os.Stat(filepath.Join("js", "node_modules", "ws", "package.json")); err != nil {
		t.Fatalf("ws is not installed in test/js (%v): run `npm ci --prefix test/js` from the repository root", err)
	}
	return newJSClientEnvFor(t, siteExtra)
}

// newJSClientEnvFor starts the origin and Caddy with jsClientBlock and
// siteExtra.
func newJSClientEnvFor(t *testing.T, siteExtra string) *env {
	t.Helper()
	originURL, originDir := startOrigin(t)
	return newEnvAt(t, jsClientBlock(originURL), siteExtra, false, originURL, originDir)
}

// storedUpload is a line of UP_RESULTS: what the origin must hold.
type storedUpload struct {
	Protocol string `json:"protocol"`
	Stored   string `json:"stored"`
	SHA256   string `json:"sha256"`
}

func (e *env) runNodeTestsExpecting(t *testing.T, transport string) {
	t.Helper()
	stored := e.runNodeTests(t, "fallback.test.mjs", "UP_EXPECT="+transport)
	for _, s := range stored {
		if got := e.storedSHA256(s.Stored); got != s.SHA256 {
			t.Errorf("%s: the origin holds %s with sha256 %s, the client sent %s", s.Protocol, s.Stored, got, s.SHA256)
		}
	}
	if len(stored) == 0 {
		t.Error("the node tests reported no upload")
	}
}

// runNodeTests runs node --test on test/js/client/file with the server's
// URL in the environment, within two minutes, and returns the uploads the
// tests reported. node's output goes to the test's log.
func (e *env) runNodeTests(t *testing.T, file string, env ...string) []storedUpload {
	t.Helper()
	results := filepath.Join(t.TempDir(), "results.jsonl")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "--test", "--test-reporter=spec", filepath.Join("js", "client", file))
	cmd.Env = append(os.Environ(), append(env, "UP_SERVER="+e.proxy, "UP_RESULTS="+results)...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	t.Logf("node --test %s:\n%s", file, out)
	if err != nil {
		t.Fatalf("node --test %s: %v", file, err)
	}
	f, err := os.Open(results)
	if err != nil {
		t.Fatalf("the node tests reported no upload: %v", err)
	}
	defer f.Close()
	var stored []storedUpload
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var s storedUpload
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil || s.Stored == "" || strings.Contains(s.Stored, "..") {
			t.Fatalf("results line %q: %v", sc.Text(), err)
		}
		stored = append(stored, s)
	}
	return stored
}
