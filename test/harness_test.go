// Package test runs the real Caddy, loaded in this process from a
// Caddyfile, in front of the reference upload origin, and checks what a
// user of the product would: the bytes the origin stores, the answers of the
// progress endpoints, the metrics.
package test

import (
	"bytes"
	"context"
	"crypto/sha256"
	cryptotls "crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	"github.com/coder/websocket"
	"go.uber.org/goleak"

	_ "github.com/caddy-upload-progress/caddy-upload-progress"
	"github.com/caddy-upload-progress/caddy-upload-progress/cmd/upload-origin/origin"
	"github.com/caddy-upload-progress/caddy-upload-progress/internal/testkit"
)

const apiKey = "test-key"

// storageDir is Caddy's storage (certificates, locks) for the tests, so
// that they never touch the user's.
var storageDir string

func TestMain(m *testing.M) {
	// Caddy keeps its state under these; tests must not touch the user's.
	dir, err := os.MkdirTemp("", "upload-progress-e2e")
	if err != nil {
		panic(err)
	}
	storageDir = filepath.Join(dir, "storage")
	os.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	os.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	code := m.Run()
	// caddy.Stop leaves the admin endpoint up; a config without one
	// takes it down.
	if err := caddy.Load([]byte(`{"admin":{"disabled":true,"config":{"persist":false}}}`), true); err != nil {
		fmt.Fprintf(os.Stderr, "loading an empty config: %v\n", err)
		code = 1
	}
	caddy.Stop()
	// Once Caddy has stopped, nothing of it or of the tests may be left
	// running: watchers, janitors, connections, probes.
	if code == 0 {
		if err := findLeaks(); err != nil {
			fmt.Fprintf(os.Stderr, "goroutines left behind after caddy stop: %v\n", err)
			code = 1
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// leakWait is how long findLeaks gives goroutines on their way out to end.
// goleak's own retries last about 0.4 s, but some of Caddy's and net/http's
// goroutines end later than that after caddy stop, by design: a connection
// that net/http closes after answering without reading the whole body
// lingers 500 ms (and Caddy's server shutdown, which caddy stop does not
// wait for, waits for it); certmagic's file-lock refresher, started when
// Caddy cleans its storage, sleeps 5 s between looks at its lock.
const leakWait = 10 * time.Second

// findLeaks is goleak.Find retried until nothing is left or leakWait has
// passed; each Find waits between its own tries.
func findLeaks() error {
	deadline := time.Now().Add(leakWait)
	for {
		err := goleak.Find()
		if err == nil || time.Now().After(deadline) {
			return err
		}
	}
}

// env is one Caddy in front of one origin.
type env struct {
	t         testing.TB
	originDir string
	originURL string
	proxy     string // http://127.0.0.1:port
	admin     string // 127.0.0.1:port
	port      string
	block     string
	client    *http.Client
	// siteExtra are directives added to the site block; tls serves the
	// site over HTTPS with Caddy's internal CA (HTTP/2 with ALPN).
	siteExtra string
	tls       bool
}

// freePort returns a loopback port nobody listens on right now, over TCP
// nor UDP: an HTTPS site serves HTTP/3 on the UDP port of the same number.
func freePort(t testing.TB) string {
	t.Helper()
	portsGiven.Lock()
	defer portsGiven.Unlock()
	for range 20 {
		port, err := testkit.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if portsGiven.m[port] {
			continue
		}
		if pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			pc.Close()
			portsGiven.m[port] = true
			return fmt.Sprint(port)
		}
	}
	t.Fatal("no loopback port free over both TCP and UDP in 20 tries")
	return ""
}

// portsGiven are the ports freePort has handed out: the kernel may offer
// a port again once its probe socket is closed, and two listeners of
// Caddy's on one port (a site and the admin endpoint, which Caddy binds
// with SO_REUSEPORT) would share its connections.
var portsGiven = struct {
	sync.Mutex
	m map[int]bool
}{m: map[int]bool{}}

// startOrigin runs the reference origin on a loopback port.
func startOrigin(t testing.TB) (url, dir string) {
	t.Helper()
	url, dir, _ = startOriginWith(t, origin.Config{}, nil)
	return url, dir
}

// startOriginWith is startOrigin with the test's settings: cfg, whose Dir
// and APIKeys are the harness's, and wrap, if set, around the origin's
// handler (to note what it is asked and answers). It returns the origin
// too, for tests that move it on themselves (expiry).
func startOriginWith(t testing.TB, cfg origin.Config, wrap func(http.Handler) http.Handler) (url, dir string, o *origin.Server) {
	t.Helper()
	dir = t.TempDir()
	cfg.Dir, cfg.APIKeys = dir, []string{apiKey, "other-key"}
	o, err := origin.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = o
	if wrap != nil {
		h = wrap(h)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	t.Cleanup(func() {
		srv.Close()
		o.Close()
	})
	return "127.0.0.1:" + fmt.Sprint(l.Addr().(*net.TCPAddr).Port), dir, o
}

// newEnv starts an origin and loads Caddy with an upload_progress block
// (the lines inside `upload_progress { }`) in front of it.
func newEnv(t testing.TB, block string) *env {
	t.Helper()
	return newEnvWith(t, block, "", false)
}

// newEnvWith is newEnv with extra site directives, over TLS if tls is set.
func newEnvWith(t testing.TB, block, siteExtra string, tls bool) *env {
	t.Helper()
	originURL, originDir := startOrigin(t)
	return newEnvAt(t, block, siteExtra, tls, originURL, originDir)
}

// newEnvAt is newEnvWith in front of an origin the test started
// (startOriginWith), listening at originURL (host:port) and storing into
// originDir.
func newEnvAt(t testing.TB, block, siteExtra string, tls bool, originURL, originDir string) *env {
	t.Helper()
	e := &env{t: t, port: freePort(t), admin: "127.0.0.1:" + freePort(t), block: block, siteExtra: siteExtra, tls: tls}
	e.originURL, e.originDir = originURL, originDir
	e.proxy = "http://127.0.0.1:" + e.port
	e.client = &http.Client{Timeout: 60 * time.Second}
	if tls {
		e.proxy = "https://127.0.0.1:" + e.port
		e.client.Transport = &http.Transport{
			TLSClientConfig:   &cryptotls.Config{InsecureSkipVerify: true},
			ForceAttemptHTTP2: true,
		}
	}
	e.load(block, e.originURL)
	if tls {
		e.waitForCertificate()
	}
	t.Cleanup(func() {
		if err := caddy.Stop(); err != nil {
			t.Errorf("stopping caddy: %v", err)
		}
		e.client.CloseIdleConnections()
	})
	return e
}

// forTest is e for a subtest: failures end the subtest, not its parent.
func (e *env) forTest(t testing.TB) *env {
	c := *e
	c.t = t
	return &c
}

// waitForCertificate waits until the site's certificate, which Caddy's
// internal CA issues in the background, is served.
func (e *env) waitForCertificate() {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := e.client.Get(e.proxy + "/healthz")
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no certificate served within 20 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// load (re)loads Caddy with block in front of upstream.
func (e *env) load(block, upstream string) {
	e.t.Helper()
	if err := e.tryLoad(block, upstream); err != nil {
		e.t.Fatal(err)
	}
}

// tryLoad is load that returns the error of a config Caddy refuses; the
// config running before goes on.
func (e *env) tryLoad(block, upstream string) error {
	e.t.Helper()
	if block != "" {
		block = "\t\t" + strings.ReplaceAll(block, "\n", "\n\t\t")
	}
	global, site := "auto_https off", "http://127.0.0.1:"+e.port
	if e.tls {
		global, site = "auto_https disable_redirects\n\tskip_install_trust\n\tdefault_sni 127.0.0.1", "https://127.0.0.1:"+e.port
	}
	cf := fmt.Sprintf(`{
	admin %s
	persist_config off
	storage file_system %s
	%s
	metrics
}

%s {
	bind 127.0.0.1
	%s
	upload_progress {
%s
	}
	reverse_proxy %s
}
`, e.admin, storageDir, global, site, e.siteExtra, block, upstream)
	cfg, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(caddyfile.Format([]byte(cf)), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return fmt.Errorf("adapting Caddyfile: %v\n%s", err, cf)
	}
	for _, w := range warnings {
		e.t.Logf("caddyfile warning: %s", w)
	}
	if err := caddy.Load(cfg, true); err != nil {
		return fmt.Errorf("loading config: %v", err)
	}
	e.waitForOldListeners()
	return nil
}

// waitForOldListeners waits until the sockets of the config before the
// one just loaded are closed. Caddy binds new sockets for each config
// (SO_REUSEPORT) and closes the old ones once it has loaded the new, the
// admin endpoint's in the background: a connection the kernel queued on
// an old socket in between is reset, so requests wait until only the new
// ones listen.
func (e *env) waitForOldListeners() {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	_, adminPort, _ := net.SplitHostPort(e.admin)
	for _, port := range []string{e.port, adminPort} {
		for {
			n := listeningSockets(port)
			if n == 1 || n < 0 {
				break
			}
			if time.Now().After(deadline) {
				e.t.Fatalf("%d sockets listen on port %s 10 s after a config load, want 1", n, port)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// listeningSockets counts the TCP sockets listening on port, from the
// kernel's tables where it shows them (Linux); -1 elsewhere.
func listeningSockets(port string) int {
	p, _ := strconv.Atoi(port)
	suffix := fmt.Sprintf(":%04X", p)
	n := -1
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		n = max(n, 0)
		for _, line := range strings.Split(string(b), "\n")[1:] {
			// sl local_address rem_address st ...; st 0A is LISTEN.
			f := strings.Fields(line)
			if len(f) > 3 && strings.HasSuffix(f[1], suffix) && f[3] == "0A" {
				n++
			}
		}
	}
	return n
}

// progressReply is the storage node's progress JSON.
type progressReply struct {
	TotalSize int64  `json:"total_size"`
	Uploaded  int64  `json:"uploaded"`
	Status    string `json:"status"`
	Error     string `json:"error"`
}

// progress asks GET /progress?path= with the given key; it returns the
// status code and the decoded reply.
func (e *env) progress(path, key string) (int, progressReply, string) {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.proxy+"/progress?path="+url.QueryEscape(path), nil)
	if key != "" {
		req.Header.Set("x-user-api-key", key)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("progress request: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var p progressReply
	if err := json.Unmarshal(body, &p); err != nil {
		e.t.Fatalf("progress reply %d is not JSON: %q", resp.StatusCode, body)
	}
	return resp.StatusCode, p, string(body)
}

// status is progress with the test's key, failing the test on non-200.
func (e *env) status(path string) progressReply {
	e.t.Helper()
	code, p, body := e.progress(path, apiKey)
	if code != 200 {
		e.t.Fatalf("progress of %s: %d %s", path, code, body)
	}
	return p
}

// waitStatus polls the progress endpoint until ok accepts a reply, or fails
// the test after 10 s.
func (e *env) waitStatus(path string, ok func(progressReply) bool) progressReply {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p := e.status(path)
		if ok(p) {
			return p
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("progress of %s never got there; last: %+v", path, p)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// uploadResult is what the client got for an upload.
type uploadResult struct {
	code int
	body string
	err  error
}

// upload sends body to POST /fso?path=…&informProgress=true with size as
// Content-Length (-1: chunked) and extra query and headers.
func (e *env) upload(path string, body io.Reader, size int64, query string, hdr http.Header) uploadResult {
	u := e.proxy + "/fso?path=" + url.QueryEscape(path) + "&informProgress=true"
	if query != "" {
		u += "&" + query
	}
	req, err := http.NewRequest("POST", u, body)
	if err != nil {
		return uploadResult{err: err}
	}
	req.ContentLength = size
	req.Header.Set("x-user-api-key", apiKey)
	req.Header.Set("Content-Type", "application/octet-stream")
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return uploadResult{err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return uploadResult{code: resp.StatusCode, body: string(b)}
}

// asyncUpload runs upload on its own goroutine.
func (e *env) asyncUpload(path string, body io.Reader, size int64, query string, hdr http.Header) <-chan uploadResult {
	ch := make(chan uploadResult, 1)
	go func() { ch <- e.upload(path, body, size, query, hdr) }()
	return ch
}

// expectNoStoredFile fails the test unless the origin answers HEAD of
// path with 404: an aborted upload leaves no partial file behind.
func (e *env) expectNoStoredFile(path string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodHead, "http://"+e.originURL+"/fso?path="+url.QueryEscape(path), nil)
	req.Header.Set("x-user-api-key", apiKey)
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		e.t.Fatalf("origin answers HEAD of %s with %d, want 404 (no file)", path, resp.StatusCode)
	}
}

// storedSHA256 returns the sha256 of the file the origin stored at path.
func (e *env) storedSHA256(path string) string {
	e.t.Helper()
	f, err := os.Open(filepath.Join(e.originDir, filepath.FromSlash(path)))
	if err != nil {
		e.t.Fatalf("origin has no file %s: %v", path, err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil))
}

// watch opens the progress WebSocket at wsPath for path and collects every
// message until the server closes it.
func (e *env) watch(ctx context.Context, wsPath, path, query string) (*watcher, error) {
	u := testkit.WebSocketURL(e.proxy) + wsPath + "?path=" + url.QueryEscape(path)
	if query != "" {
		u += "&" + query
	}
	c, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{
		HTTPHeader: http.Header{"X-User-Api-Key": {apiKey}},
	})
	if err != nil {
		return nil, err
	}
	return &watcher{newSocket[progressReply](ctx, c, 1<<16)}, nil
}

// watcher is a WebSocket client of the progress endpoint.
type watcher struct{ *socket[progressReply] }

// all waits for the server to close and returns every message it sent
// that the test had not taken yet.
func (w *watcher) all(t *testing.T) []progressReply {
	t.Helper()
	return w.rest(t, 60*time.Second)
}

// pattern makes n deterministic bytes that differ at every offset modulo a
// large prime, so a shifted or repeated chunk changes the hash.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((i * 7919) >> 3)
	}
	return b
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// pacedReader hands out data in chunks with a pause between them, so that
// a large upload lasts long enough to be watched.
type pacedReader struct {
	r     *bytes.Reader
	chunk int
	pause time.Duration
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if len(b) > p.chunk {
		b = b[:p.chunk]
	}
	n, err := p.r.Read(b)
	if n > 0 && p.pause > 0 {
		time.Sleep(p.pause)
	}
	return n, err
}

// scrape returns Caddy's /metrics text from the admin endpoint.
func (e *env) scrape() string {
	e.t.Helper()
	resp, err := e.client.Get("http://" + e.admin + "/metrics")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
