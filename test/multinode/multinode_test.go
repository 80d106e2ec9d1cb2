// Package multinode runs several Caddy processes, built from ./cmd/caddy,
// in front of one reference origin and sharing one redis-server, as
// proxies behind a load balancer would, and checks that every node answers
// for uploads any of them carries, and what each failure looks like.
package multinode

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/caddy-upload-progress/caddy-upload-progress/cmd/upload-origin/origin"
	"github.com/caddy-upload-progress/caddy-upload-progress/internal/redistest"
	"github.com/caddy-upload-progress/caddy-upload-progress/internal/testkit"
)

const (
	apiKey = "test-key"
	// lease and flush are the nodes' store settings: short, so that the
	// tests of a dead node wait little.
	lease = time.Second
	flush = 50 * time.Millisecond
	// within bounds every wait for something to show on a node.
	within = 15 * time.Second
)

// caddyBin is the Caddy built for the package's tests.
var caddyBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "upload-progress-multinode")
	if err != nil {
		panic(err)
	}
	caddyBin = filepath.Join(dir, "caddy")
	build := exec.Command("go", "build", "-o", caddyBin, "github.com/caddy-upload-progress/caddy-upload-progress/cmd/caddy")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	code := 1
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "building caddy: %v\n", err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// startOrigin runs the reference origin on a loopback port.
func startOrigin(t *testing.T) (addr, dir string) {
	t.Helper()
	dir = t.TempDir()
	o, err := origin.New(origin.Config{Dir: dir, APIKeys: []string{apiKey}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: o}
	go srv.Serve(l)
	t.Cleanup(func() {
		srv.Close()
		o.Close()
	})
	return l.Addr().String(), dir
}

// cluster is a redis-server and a reference origin, shared by the nodes
// of one protocol setting started in front of the origin.
type cluster struct {
	redis      *redistest.Server
	originAddr string
	originDir  string
	protocols  string
}

// startCluster starts the redis-server and the origin of nodes that
// serve protocols.
func startCluster(t *testing.T, protocols string) *cluster {
	t.Helper()
	c := &cluster{redis: redistest.Start(t), protocols: protocols}
	c.originAddr, c.originDir = startOrigin(t)
	return c
}

// node starts a node of c.
func (c *cluster) node(t *testing.T) *caddyNode {
	t.Helper()
	return startNode(t, c.protocols, c.redis.Addr, c.originAddr)
}

// caddyNode is one Caddy process.
type caddyNode struct {
	url string
	cmd *exec.Cmd
	log string
	dir string
}

// startNode runs Caddy with upload_progress for protocols, on the Redis
// at redisAddr, in front of originAddr.
func startNode(t *testing.T, protocols, redisAddr, originAddr string) *caddyNode {
	t.Helper()
	port, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`{
	admin off
	storage file_system %s
}
http://127.0.0.1:%d {
	bind 127.0.0.1
	handle /metrics {
		metrics
	}
	upload_progress {
		protocol %s
		store redis {
			address %s
			secret {env.UPLOAD_PROGRESS_SECRET}
			flush_interval %s
			lease %s
		}
	}
	reverse_proxy %s
}
`, filepath.Join(dir, "storage"), port, protocols, redisAddr, flush, lease, originAddr)
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	n := &caddyNode{url: "http://127.0.0.1:" + strconv.Itoa(port), log: filepath.Join(dir, "caddy.log"), dir: dir}
	logf, err := os.Create(n.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	n.cmd = exec.Command(caddyBin, "run", "--config", path, "--adapter", "caddyfile")
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	n.cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"XDG_DATA_HOME="+filepath.Join(dir, "data"), "UPLOAD_PROGRESS_SECRET=the-nodes-shared-secret")
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.kill)
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(n.url + "/metrics")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return n
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(n.log)
			t.Fatalf("caddy not ready within %v: %v\n%s", within, err, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill stops the node at once (SIGKILL), as a crash would.
func (n *caddyNode) kill() {
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Kill()
	_ = n.cmd.Wait()
	n.cmd = nil
}

// get asks the node with apiKey and returns the status and the decoded
// JSON reply.
func (n *caddyNode) get(t *testing.T, path string) (int, map[string]any) {
	t.Helper()
	return n.getAs(t, path, apiKey)
}

// getAs asks the node with key as x-user-api-key, or with no credential
// if key is empty.
func (n *caddyNode) getAs(t *testing.T, path, key string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, n.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("x-user-api-key", key)
	}
	return doJSON(t, req)
}

// doJSON sends req and returns the status and the decoded JSON reply.
func doJSON(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &v)
	return resp.StatusCode, v
}

// waitFor polls path on n with apiKey until ok says the reply is as wanted.
func (n *caddyNode) waitFor(t *testing.T, path, what string, ok func(code int, v map[string]any) bool) map[string]any {
	t.Helper()
	return n.waitForAs(t, path, apiKey, what, ok)
}

// waitForAs is waitFor with key as the credential (none if empty).
func (n *caddyNode) waitForAs(t *testing.T, path, key, what string, ok func(code int, v map[string]any) bool) map[string]any {
	t.Helper()
	return poll(t, n.url+" "+path, what, func() (int, map[string]any) { return n.getAs(t, path, key) }, ok)
}

// poll calls get until ok says the reply is as wanted, for at most
// within, and returns the reply; where names what get asks.
func poll(t *testing.T, where, what string, get func() (int, map[string]any), ok func(code int, v map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, v := get()
		if ok(code, v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not %s within %v; last %d %v", where, what, within, code, v)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// metric returns the value of the sample of the node's /metrics line that
// starts with prefix, or -1.
func (n *caddyNode) metric(t *testing.T, prefix string) float64 {
	t.Helper()
	resp, err := http.Get(n.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, prefix) {
			f, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			return f
		}
	}
	return -1
}

// slowUpload is an upload whose body the test writes piece by piece.
type slowUpload struct {
	w    *io.PipeWriter
	done chan *http.Response
	errc chan error
}

func startShardUpload(t *testing.T, n *caddyNode, path string, size int) *slowUpload {
	t.Helper()
	return startSlow(t, http.MethodPost, n.url+"/fso?informProgress=true&path="+path, size, http.Header{"X-User-Api-Key": {apiKey}})
}

// startSlow sends a request of method to url, with hdr, whose body of
// size bytes the test writes piece by piece.
func startSlow(t *testing.T, method, url string, size int, hdr http.Header) *slowUpload {
	t.Helper()
	pr, pw := io.Pipe()
	req, err := http.NewRequest(method, url, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(size)
	for k, v := range hdr {
		req.Header[k] = v
	}
	u := &slowUpload{w: pw, done: make(chan *http.Response, 1), errc: make(chan error, 1)}
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			u.errc <- err
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		u.done <- resp
	}()
	t.Cleanup(func() { pw.CloseWithError(io.ErrUnexpectedEOF) })
	return u
}

func (u *slowUpload) write(t *testing.T, b []byte) {
	t.Helper()
	if _, err := u.w.Write(b); err != nil {
		t.Fatalf("writing the upload's body: %v", err)
	}
}

// finish writes the rest and waits for the answer.
func (u *slowUpload) finish(t *testing.T, rest []byte) int {
	t.Helper()
	u.write(t, rest)
	u.w.Close()
	select {
	case resp := <-u.done:
		return resp.StatusCode
	case err := <-u.errc:
		t.Fatalf("upload: %v", err)
	case <-time.After(within):
		t.Fatal("the upload got no answer")
	}
	return 0
}

func uploaded(v map[string]any) float64 { f, _ := v["uploaded"].(float64); return f }

func TestShardUploadOnOneNodeShowsOnTheOther(t *testing.T) {
	c := startCluster(t, "shard")
	a, b := c.node(t), c.node(t)
	body := testkit.RandomBytes(3<<20, 7)
	u := startShardUpload(t, a, "/multi.bin", len(body))
	u.write(t, body[:1<<20])
	for _, n := range []*caddyNode{a, b} {
		n.waitFor(t, "/progress?path=/multi.bin", "uploading 1 MiB", func(code int, v map[string]any) bool {
			return code == 200 && v["status"] == "uploading" && uploaded(v) == 1<<20 && v["total_size"] == float64(len(body))
		})
	}
	if code := u.finish(t, body[1<<20:]); code != http.StatusCreated {
		t.Fatalf("upload answered %d", code)
	}
	want := a.waitFor(t, "/progress?path=/multi.bin", "completed", func(code int, v map[string]any) bool { return v["status"] == "completed" })
	got := b.waitFor(t, "/progress?path=/multi.bin", "completed", func(code int, v map[string]any) bool { return v["status"] == "completed" })
	if fmt.Sprint(want) != fmt.Sprint(got) {
		t.Fatalf("final states differ: carrying node %v, other %v", want, got)
	}
	stored, err := os.ReadFile(filepath.Join(c.originDir, "multi.bin"))
	if err != nil || !bytes.Equal(stored, body) {
		t.Fatalf("the origin stored %d bytes (%v), not the upload", len(stored), err)
	}
	// Another owner sees nothing on either node.
	req, _ := http.NewRequest(http.MethodGet, b.url+"/progress?path=/multi.bin", nil)
	req.Header.Set("x-user-api-key", "other-key")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	json.NewDecoder(resp.Body).Decode(&v)
	resp.Body.Close()
	if v["status"] != "not_exist" {
		t.Fatalf("another owner sees %v on the other node", v)
	}
}

func TestStoreKilledMidUpload(t *testing.T) {
	c := startCluster(t, "shard")
	a, b := c.node(t), c.node(t)
	body := testkit.RandomBytes(2<<20, 9)
	u := startShardUpload(t, a, "/failopen.bin", len(body))
	u.write(t, body[:1<<20])
	b.waitFor(t, "/progress?path=/failopen.bin", "uploading", func(code int, v map[string]any) bool { return uploaded(v) == 1<<20 })
	c.redis.Kill()
	u.write(t, body[1<<20:3<<19])
	a.waitFor(t, "/progress?path=/failopen.bin", "right on its own node", func(code int, v map[string]any) bool {
		return code == 200 && v["status"] == "uploading" && uploaded(v) == 3<<19
	})
	if code := u.finish(t, body[3<<19:]); code != http.StatusCreated {
		t.Fatalf("upload answered %d with the store down", code)
	}
	stored, err := os.ReadFile(filepath.Join(c.originDir, "failopen.bin"))
	if err != nil || !bytes.Equal(stored, body) {
		t.Fatalf("the origin stored %d bytes (%v), not the upload", len(stored), err)
	}
	a.waitFor(t, "/progress?path=/failopen.bin", "completed on its own node", func(code int, v map[string]any) bool {
		return code == 200 && v["status"] == "completed" && uploaded(v) == float64(len(body))
	})
	for _, path := range []string{"/failopen.bin", "/never-uploaded"} {
		b.waitFor(t, "/progress?path="+path, "503", func(code int, v map[string]any) bool {
			return code == http.StatusServiceUnavailable && v["error"] == "progress store unavailable"
		})
	}
	if up := a.metric(t, `caddy_upload_progress_store_up{zone="default"}`); up != 0 {
		t.Fatalf("store_up with the store down: %v", up)
	}
	if errs := a.metric(t, `caddy_upload_progress_store_errors_total{op="listen",zone="default"}`); errs < 1 {
		t.Fatalf("store_errors_total{op=listen} with the store down: %v", errs)
	}
	c.redis.Restart()
	b.waitFor(t, "/progress?path=/failopen.bin", "seen again", func(code int, v map[string]any) bool {
		return code == 200 && v["status"] == "completed" && uploaded(v) == float64(len(body))
	})
	deadline := time.Now().Add(within)
	for a.metric(t, `caddy_upload_progress_store_up{zone="default"}`) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("store_up not 1 after the store came back")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNodeKilledMidUpload(t *testing.T) {
	c := startCluster(t, "shard")
	a, b := c.node(t), c.node(t)
	u := startShardUpload(t, a, "/orphan.bin", 1<<20)
	u.write(t, make([]byte, 1000))
	b.waitFor(t, "/progress?path=/orphan.bin", "uploading", func(code int, v map[string]any) bool { return uploaded(v) == 1000 })
	killed := time.Now()
	a.kill()
	v := b.waitFor(t, "/progress?path=/orphan.bin", "failed", func(code int, v map[string]any) bool { return v["status"] == "failed" })
	if v["error"] != "proxy node went away" || uploaded(v) != 1000 {
		t.Fatalf("the upload of a dead node shows %v", v)
	}
	// Its lease had at most lease to run from the node's last write. The
	// slack is for a loaded machine's polling, not for the store.
	if took := time.Since(killed); took > lease+flush+2*time.Second {
		t.Fatalf("reported failed %v after the node died; lease %v, flush_interval %v", took, lease, flush)
	}
	// The node comes back (a new process): the record is still there.
	again := c.node(t)
	if v := again.waitFor(t, "/progress?path=/orphan.bin", "failed", func(code int, v map[string]any) bool { return v["status"] == "failed" }); v["error"] != "proxy node went away" {
		t.Fatalf("the restarted node shows %v", v)
	}
}

// tusCreate creates a tus upload of size through n and returns its URL path.
func tusCreate(t *testing.T, n *caddyNode, size int) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, n.url+"/files/", nil)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Length", strconv.Itoa(size))
	req.Header.Set("Upload-Metadata", "filename YmlnLmJpbg==")
	req.Header.Set("x-user-api-key", apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("tus create: %s", resp.Status)
	}
	loc := resp.Header.Get("Location")
	if i := strings.Index(loc, "/files/"); i >= 0 {
		loc = loc[i:]
	}
	return loc
}

// tusPatch sends body at offset through n, from a pipe the test feeds.
func tusPatch(t *testing.T, n *caddyNode, upload string, offset int, size int) *slowUpload {
	t.Helper()
	return startSlow(t, http.MethodPatch, n.url+upload, size, http.Header{
		"Tus-Resumable":  {"1.0.0"},
		"Upload-Offset":  {strconv.Itoa(offset)},
		"Content-Type":   {"application/offset+octet-stream"},
		"X-User-Api-Key": {apiKey},
	})
}

func num(v map[string]any, k string) float64 { f, _ := v[k].(float64); return f }

func TestTusPatchesAlternatingNodes(t *testing.T) {
	c := startCluster(t, "tus")
	a, b := c.node(t), c.node(t)
	const size = 3 << 20
	body := testkit.RandomBytes(size, 3)
	upload := tusCreate(t, a, size)
	status := "/tus/progress?upload=" + upload
	b.waitFor(t, status, "created", func(code int, v map[string]any) bool {
		return code == 200 && num(v, "length") == size
	})
	// Three PATCHes of 1 MiB: through a, b, a. While each is half sent,
	// both nodes show it; once answered, both show the offset.
	for i, n := range []*caddyNode{a, b, a} {
		off := i << 20
		p := tusPatch(t, n, upload, off, 1<<20)
		p.write(t, body[off:off+1<<19])
		for _, m := range []*caddyNode{a, b} {
			m.waitFor(t, status, "half of PATCH "+strconv.Itoa(i+1), func(code int, v map[string]any) bool {
				return v["status"] == "uploading" && num(v, "received") == float64(off+1<<19) && num(v, "offset") == float64(off)
			})
		}
		if code := p.finish(t, body[off+1<<19:off+1<<20]); code != http.StatusNoContent {
			t.Fatalf("PATCH %d answered %d", i+1, code)
		}
	}
	var final []map[string]any
	for _, m := range []*caddyNode{a, b} {
		final = append(final, m.waitFor(t, status, "completed", func(code int, v map[string]any) bool {
			return v["status"] == "completed" && num(v, "offset") == size && num(v, "received") == size
		}))
	}
	if fmt.Sprint(final[0]) != fmt.Sprint(final[1]) {
		t.Fatalf("final states differ: %v and %v", final[0], final[1])
	}
	if md, _ := final[1]["metadata"].(map[string]any); md["filename"] != "big.bin" {
		t.Fatalf("the other node lost the upload's metadata: %v", final[1])
	}
}

// rawUpload starts a raw upload to target through n, owned by apiKey.
func rawUpload(t *testing.T, n *caddyNode, target string, size int, header map[string]string) *slowUpload {
	t.Helper()
	hdr := http.Header{}
	hdr.Set("x-user-api-key", apiKey)
	for k, v := range header {
		hdr.Set(k, v)
	}
	return startSlow(t, http.MethodPost, n.url+target, size, hdr)
}

func TestSingleRequestProtocolsOnTheOtherNode(t *testing.T) {
	c := startCluster(t, "pcloud nginx")
	a, b := c.node(t), c.node(t)
	const size = 1 << 20
	for _, c := range []struct {
		name, upload, status string
		half, done           func(v map[string]any) bool
	}{{
		name:   "pcloud",
		upload: "/uploadfile?progresshash=h1&filename=p.bin&auth=" + apiKey,
		status: "/uploadprogress?progresshash=h1&auth=" + apiKey,
		half:   func(v map[string]any) bool { return num(v, "uploaded") == size/2 && v["finished"] == false },
		done:   func(v map[string]any) bool { return v["finished"] == true && num(v, "uploaded") == size },
	}, {
		name:   "nginx",
		upload: "/upload?filename=n.bin&X-Progress-ID=n1",
		status: "/progress?X-Progress-ID=n1",
		half:   func(v map[string]any) bool { return v["state"] == "uploading" && num(v, "received") == size/2 },
		done:   func(v map[string]any) bool { return v["state"] == "done" },
	}} {
		t.Run(c.name, func(t *testing.T) {
			u := rawUpload(t, a, c.upload, size, nil)
			u.write(t, make([]byte, size/2))
			for _, n := range []*caddyNode{a, b} {
				n.waitFor(t, c.status, "half", func(_ int, v map[string]any) bool { return c.half(v) })
			}
			if code := u.finish(t, make([]byte, size/2)); code >= 300 {
				t.Fatalf("upload answered %d", code)
			}
			var final []string
			for _, n := range []*caddyNode{a, b} {
				final = append(final, fmt.Sprint(n.waitFor(t, c.status, "done", func(_ int, v map[string]any) bool { return c.done(v) })))
			}
			if final[0] != final[1] {
				t.Fatalf("final states differ:\n%s\n%s", final[0], final[1])
			}
		})
	}
}

func TestWatcherOnTheOtherNode(t *testing.T) {
	c := startCluster(t, "shard")
	a, b := c.node(t), c.node(t)
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	read := watchWS(t, ctx, testkit.WebSocketURL(b.url)+"/ws/progress?path=/watched.bin", keyHeader)
	if v := read(); v["status"] != "not_exist" {
		t.Fatalf("first message %v", v)
	}
	u := startShardUpload(t, a, "/watched.bin", 2<<20)
	u.write(t, make([]byte, 1<<20))
	for v := read(); uploaded(v) < 1<<20; v = read() {
	}
	u.finish(t, make([]byte, 1<<20))
	for v := read(); v["status"] != "completed"; v = read() {
		if v["status"] != "uploading" {
			t.Fatalf("the watcher saw %v", v)
		}
	}
}

// watchWS dials the WebSocket watcher at url with hdr and returns the
// reader of its messages, each decoded as JSON, which fails the test when
// a read fails. The connection is closed when the test ends.
func watchWS(t *testing.T, ctx context.Context, url string, hdr http.Header) func() map[string]any {
	t.Helper()
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return func() map[string]any {
		t.Helper()
		_, msg, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("watcher on the other node: %v", err)
		}
		var v map[string]any
		json.Unmarshal(msg, &v)
		return v
	}
}

// sandboxDo sends a request of the sandbox API through n with the bearer
// token and returns the status and the decoded JSON reply.
func sandboxDo(t *testing.T, n *caddyNode, method, path string, body []byte) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, n.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	return doJSON(t, req)
}

func TestSandboxPartsToTwoNodesAtOnce(t *testing.T) {
	c := startCluster(t, "sandbox")
	a, b := c.node(t), c.node(t)
	const part = 1 << 20
	code, obj := sandboxDo(t, a, http.MethodPost, "/v1/sandboxes/sb1/uploads",
		[]byte(fmt.Sprintf(`{"target_path":"/two.bin","content_length":%d,"part_size":%d,"kind":"file","conflict":"replace"}`, 2*part, part)))
	if code != http.StatusCreated {
		t.Fatalf("creation: %d %v", code, obj)
	}
	session := "/v1/sandboxes/sb1/uploads/" + obj["upload_id"].(string)
	status := func(n *caddyNode, what string, ok func(v map[string]any) bool) map[string]any {
		t.Helper()
		return poll(t, n.url+" "+session, what, func() (int, map[string]any) {
			return sandboxDo(t, n, http.MethodGet, session, nil)
		}, func(code int, v map[string]any) bool { return code == http.StatusOK && ok(v) })
	}
	// Part 1 through a, part 2 through b, both half sent.
	putPart := func(n *caddyNode, num int) *slowUpload {
		t.Helper()
		return startSlow(t, http.MethodPut, n.url+session+"/parts/"+strconv.Itoa(num), part, http.Header{"Authorization": {"Bearer " + apiKey}})
	}
	p1, p2 := putPart(a, 1), putPart(b, 2)
	p1.write(t, make([]byte, part/2))
	p2.write(t, make([]byte, part/4))
	for _, n := range []*caddyNode{a, b} {
		v := status(n, "both parts in flight", func(v map[string]any) bool {
			parts, _ := v["parts_in_flight"].([]any)
			return num(v, "received_bytes") == part/2+part/4 && len(parts) == 2
		})
		if v["status"] != "uploading" {
			t.Fatalf("status with two parts streaming through two nodes: %v", v)
		}
	}
	if code := p1.finish(t, make([]byte, part/2)); code != http.StatusOK {
		t.Fatalf("part 1 answered %d", code)
	}
	for _, n := range []*caddyNode{a, b} {
		status(n, "part 1 accepted, part 2 in flight", func(v map[string]any) bool {
			parts, _ := v["parts_in_flight"].([]any)
			return num(v, "received_bytes") == part+part/4 && len(parts) == 1
		})
	}
	if code := p2.finish(t, make([]byte, 3*part/4)); code != http.StatusOK {
		t.Fatalf("part 2 answered %d", code)
	}
	var final []string
	for _, n := range []*caddyNode{a, b} {
		v := status(n, "both parts accepted", func(v map[string]any) bool {
			parts, _ := v["parts_in_flight"].([]any)
			return num(v, "received_bytes") == 2*part && num(v, "accepted_bytes") == 2*part && len(parts) == 0
		})
		delete(v, "updated_at") // the origin's, or the last byte's as each node saw it
		final = append(final, fmt.Sprint(v))
	}
	if final[0] != final[1] {
		t.Fatalf("the nodes answer differently:\n%s\n%s", final[0], final[1])
	}
}

func TestDstorChunksToTwoNodesAtOnce(t *testing.T) {
	c := startCluster(t, "dstor")
	a, b := c.node(t), c.node(t)
	do := func(n *caddyNode, method, path, token, contentType string, body io.Reader) (*http.Request, error) {
		req, err := http.NewRequest(method, n.url+path, body)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", apiKey)
		if token != "" {
			req.Header.Set("x-dstor-upload-token", token)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		return req, nil
	}
	req, _ := do(a, http.MethodPost, "/v1/upload/get-token", "", "application/json", strings.NewReader(`{"chunks_number":2,"folder_path":"/photos"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if tok.Token == "" {
		t.Fatalf("get-token: %s", resp.Status)
	}
	chunk := func(n *caddyNode, name string, size int) (*slowUpload, []byte) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		f, _ := mw.CreateFormFile("file", name)
		f.Write(make([]byte, size))
		mw.Close()
		u := startSlow(t, http.MethodPost, n.url+"/v1/upload/", buf.Len(), http.Header{
			"Authorization":        {apiKey},
			"X-Dstor-Upload-Token": {tok.Token},
			"Content-Type":         {mw.FormDataContentType()},
		})
		return u, buf.Bytes()
	}
	status := func(n *caddyNode, what string, ok func(v map[string]any) bool) map[string]any {
		t.Helper()
		return poll(t, n.url+" get-status", what, func() (int, map[string]any) {
			req, err := do(n, http.MethodGet, "/v1/upload/get-status/", tok.Token, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			return doJSON(t, req)
		}, func(code int, v map[string]any) bool { return code == http.StatusOK && ok(v) })
	}
	c1, body1 := chunk(a, "2024/one.jpg", 256<<10)
	c2, body2 := chunk(b, "2024/two.jpg", 256<<10)
	c1.write(t, body1[:100<<10])
	c2.write(t, body2[:50<<10])
	for _, n := range []*caddyNode{a, b} {
		status(n, "both chunks in flight", func(v map[string]any) bool {
			return v["status"] == "UPLOADING" && num(v, "bytesUploaded") == 150<<10 && num(v, "chunksInFlight") == 2
		})
	}
	if code := c1.finish(t, body1[100<<10:]); code >= 300 {
		t.Fatalf("chunk 1 answered %d", code)
	}
	for _, n := range []*caddyNode{a, b} {
		status(n, "chunk 1 in, chunk 2 in flight", func(v map[string]any) bool {
			return num(v, "chunksUploaded") == 1 && num(v, "chunksInFlight") == 1 && num(v, "bytesUploaded") == float64(len(body1)+50<<10)
		})
	}
	if code := c2.finish(t, body2[50<<10:]); code >= 300 {
		t.Fatalf("chunk 2 answered %d", code)
	}
	for _, n := range []*caddyNode{a, b} {
		status(n, "both chunks in", func(v map[string]any) bool {
			return num(v, "chunksUploaded") == 2 && num(v, "bytesUploaded") == float64(len(body1)+len(body2)) && num(v, "filesUploaded") == 2
		})
	}
}

func TestTusWatcherOnTheOtherNode(t *testing.T) {
	c := startCluster(t, "tus")
	a, b := c.node(t), c.node(t)
	const size = 1 << 20
	upload := tusCreate(t, a, size)
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	read := watchWS(t, ctx, testkit.WebSocketURL(b.url)+"/tus/progress/ws?upload="+upload, nil)
	if v := read(); v["status"] != "created" || num(v, "length") != size {
		t.Fatalf("first message on the other node: %v", v)
	}
	p := tusPatch(t, a, upload, 0, size)
	p.write(t, make([]byte, size/2))
	for v := read(); num(v, "received") < size/2; v = read() {
	}
	if code := p.finish(t, make([]byte, size/2)); code != http.StatusNoContent {
		t.Fatalf("PATCH answered %d", code)
	}
	for v := read(); v["status"] != "completed"; v = read() {
		if v["status"] != "uploading" {
			t.Fatalf("the watcher saw %v", v)
		}
	}
}

func TestWatcherStaysThroughAStoreOutage(t *testing.T) {
	c := startCluster(t, "shard")
	a, b := c.node(t), c.node(t)
	u := startShardUpload(t, a, "/outage.bin", 3<<20)
	u.write(t, make([]byte, 1<<20))
	b.waitFor(t, "/progress?path=/outage.bin", "uploading", func(code int, v map[string]any) bool { return uploaded(v) == 1<<20 })
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	read := watchWS(t, ctx, testkit.WebSocketURL(b.url)+"/ws/progress?path=/outage.bin", keyHeader)
	if v := read(); uploaded(v) != 1<<20 {
		t.Fatalf("first message %v", v)
	}
	c.redis.Kill()
	for v := read(); v["error"] != "progress store unavailable"; v = read() {
		if v["status"] == "not_exist" {
			t.Fatalf("the watcher was told the upload does not exist: %v", v)
		}
	}
	// A whole step (1 MiB) more: once the store is back, the watcher may
	// first hear the state from before the outage, and then only a step
	// more is news.
	u.write(t, make([]byte, 1<<20))
	c.redis.Restart()
	for v := read(); uploaded(v) != 2<<20; v = read() {
		if v["status"] == "not_exist" {
			t.Fatalf("the watcher was told the upload does not exist: %v", v)
		}
	}
	u.finish(t, make([]byte, 1<<20))
	for v := read(); v["status"] != "completed"; v = read() {
	}
}
