package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/caddy-upload-progress/caddy-upload-progress/internal/testkit"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"go.uber.org/goleak"
)

// demoChildEnv makes the test binary run as the caddy command, so that
// the tests run `caddy demo` as a process of its own: its exit is the
// process's.
const demoChildEnv = "UPLOAD_PROGRESS_DEMO_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(demoChildEnv) == "1" {
		main() // exits by itself
		return
	}
	goleak.VerifyTestMain(m)
}

// How long the demo may take to start and to stop on a loaded machine.
const (
	demoStartTimeout = 2 * time.Minute
	demoStopTimeout  = time.Minute
)

// runningDemo is `caddy demo` running as a child process on free
// loopback ports.
type runningDemo struct {
	t           *testing.T
	cmd         *exec.Cmd
	site, admin string // base URLs
	tmp         string // the demo's TMPDIR
	logPath     string // its stderr
	exited      chan error

	mu     sync.Mutex
	stdout strings.Builder
	more   chan struct{} // a line was added to stdout
}

// freeAddrs returns n loopback addresses that were free a moment ago.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs
}

// startDemo runs the demo with args added to its command line and waits
// for its banner. The demo is stopped when the test ends, if the test has
// not stopped it.
func startDemo(t *testing.T, args ...string) *runningDemo {
	t.Helper()
	root := t.TempDir()
	d := &runningDemo{
		t:       t,
		tmp:     filepath.Join(root, "tmp"),
		logPath: filepath.Join(root, "demo.log"),
		exited:  make(chan error, 1),
		more:    make(chan struct{}, 1),
	}
	if err := os.Mkdir(d.tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	addrs := freeAddrs(t, 3)
	d.site, d.admin = "http://"+addrs[0], "http://"+addrs[2]
	args = append([]string{"demo", "--listen", addrs[0], "--origin", addrs[1], "--admin", addrs[2]}, args...)

	log, err := os.Create(d.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	out, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(os.Args[0], args...)
	// Caddy keeps its autosaved config and its data under HOME and XDG
	// directories: the test's own, not the user's.
	d.cmd.Env = append(os.Environ(), demoChildEnv+"=1", "TMPDIR="+d.tmp,
		"HOME="+filepath.Join(root, "home"),
		"XDG_CONFIG_HOME="+filepath.Join(root, "config"),
		"XDG_DATA_HOME="+filepath.Join(root, "data"))
	d.cmd.Stdout, d.cmd.Stderr = outW, log
	err = d.cmd.Start()
	outW.Close()
	if err != nil {
		out.Close()
		t.Fatal(err)
	}
	go d.read(out)
	go func() { d.exited <- d.cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			d.cmd.Process.Kill()
			<-d.exited
		}
	})

	// The banner ends with the metrics command.
	last := "curl -s " + d.admin + "/metrics | grep ^caddy_upload_progress_uploads\n"
	timeout := time.After(demoStartTimeout)
	for !strings.Contains(d.output(), last) {
		select {
		case <-d.more:
		case err := <-d.exited:
			d.exited <- err
			t.Fatalf("the demo exited before its banner (%v):\n%s\n%s", err, d.output(), d.log())
		case <-timeout:
			t.Fatalf("no banner after %v:\n%s\n%s", demoStartTimeout, d.output(), d.log())
		}
	}
	return d
}

// read collects the demo's stdout until it exits.
func (d *runningDemo) read(out *os.File) {
	defer out.Close()
	s := bufio.NewScanner(out)
	for s.Scan() {
		d.mu.Lock()
		d.stdout.WriteString(s.Text() + "\n")
		d.mu.Unlock()
		select {
		case d.more <- struct{}{}:
		default:
		}
	}
}

func (d *runningDemo) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stdout.String()
}

func (d *runningDemo) log() string {
	b, _ := os.ReadFile(d.logPath)
	return string(b)
}

// storeDir is the directory the banner says the origin stores into.
func (d *runningDemo) storeDir() string {
	d.t.Helper()
	m := regexp.MustCompile(`stores them in (\S+) \(`).FindStringSubmatch(d.output())
	if m == nil {
		d.t.Fatalf("the banner names no store:\n%s", d.output())
	}
	return m[1]
}

// stop sends sig and waits for the demo to exit with 0.
func (d *runningDemo) stop(sig os.Signal) {
	d.t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatal(err)
	}
	select {
	case err := <-d.exited:
		d.exited <- err
		if err != nil {
			d.t.Fatalf("the demo exited with %v after %v:\n%s", err, sig, d.log())
		}
	case <-time.After(demoStopTimeout):
		d.t.Fatalf("the demo still runs %v after %v:\n%s", demoStopTimeout, sig, d.log())
	}
}

// client talks to the demo like a user's program.
type client struct {
	t *testing.T
	c *http.Client
}

func newClient(t *testing.T) *client {
	c := &http.Client{Transport: &http.Transport{}, Timeout: time.Minute}
	t.Cleanup(c.CloseIdleConnections)
	return &client{t: t, c: c}
}

// do sends a request, fails the test unless the status is want, and
// returns the body.
func (c *client) do(method, url string, header map[string]string, body []byte, want int) []byte {
	c.t.Helper()
	_, b := c.send(method, url, header, body, want)
	return b
}

// send is do that returns the answer too, its body read.
func (c *client) send(method, url string, header map[string]string, body []byte, want int) (*http.Response, []byte) {
	c.t.Helper()
	r, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	resp, err := c.c.Do(r)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s: %s, want %d (body %s)", method, url, resp.Status, want, b)
	}
	return resp, b
}

// decode is do for a JSON reply.
func (c *client) decode(method, url string, header map[string]string, body []byte, want int, v any) []byte {
	c.t.Helper()
	b := c.do(method, url, header, body, want)
	if err := json.Unmarshal(b, v); err != nil {
		c.t.Fatalf("%s %s: %s: %v", method, url, b, err)
	}
	return b
}

// expectFinalOverWebSocket opens the WebSocket at pathAndQuery of site
// with header, and fails the test unless the server sends want (an
// upload's final state, as the status endpoint gave it), then closes
// normally.
func (c *client) expectFinalOverWebSocket(site, pathAndQuery string, header http.Header, want []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(site, "http")+pathAndQuery, &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		c.t.Fatal(err)
	}
	defer ws.CloseNow()
	if _, msg, err := ws.Read(ctx); err != nil || !bytes.Equal(bytes.TrimSpace(msg), bytes.TrimSpace(want)) {
		c.t.Errorf("websocket: %s (%v), want %s", msg, err, want)
	}
	if _, _, err := ws.Read(ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		c.t.Errorf("websocket did not close normally: %v", err)
	}
}

func multipartBody(t *testing.T, files map[string][]byte, order ...string) (body []byte, contentType string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, name := range order {
		w, err := mw.CreateFormFile("file", name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(files[name])
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), mw.FormDataContentType()
}

type shardStatus struct {
	TotalSize int64  `json:"total_size"`
	Uploaded  int64  `json:"uploaded"`
	Status    string `json:"status"`
	Error     string `json:"error"`
}

type pcloudFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

type pcloudStatus struct {
	Result     int               `json:"result"`
	Error      string            `json:"error"`
	Total      int64             `json:"total"`
	Uploaded   int64             `json:"uploaded"`
	FileNumber int               `json:"filenumber"`
	Finished   bool              `json:"finished"`
	Files      []json.RawMessage `json:"files"`
}

// demoPage checks that the banner names the page and that the page is
// there, with its assets, from the binary alone.
func demoPage(t *testing.T, d *runningDemo) {
	if want := "upload-progress demo: the demo page is at " + d.site + "/\n"; !strings.Contains(d.output(), want) {
		t.Errorf("the banner does not say %q:\n%s", want, d.output())
	}
	c := newClient(t)
	if page := c.do(http.MethodGet, d.site+"/", nil, nil, http.StatusOK); !bytes.Contains(page, []byte(`src="/demo/demo.js"`)) {
		t.Errorf("GET /: %.200s", page)
	}
	for _, asset := range []string{"/upload-progress.js", "/demo/demo.js", "/demo/uploads.js", "/demo/format.js", "/demo/demo.css", "/demo/vendor/uppy.mjs"} {
		c.do(http.MethodGet, d.site+asset, nil, nil, http.StatusOK)
	}
}

// The demo serves every progress API, each in front of the origin's
// matching route; the commands it prints work as printed, twice; and it
// removes its temporary store when it stops.
func TestDemoServesEveryProtocol(t *testing.T) {
	d := startDemo(t)
	store := d.storeDir()
	if filepath.Dir(store) != d.tmp {
		t.Fatalf("store %s is not a new directory in the demo's TMPDIR %s", store, d.tmp)
	}
	if _, err := os.Stat(store); err != nil {
		t.Fatalf("the store: %v", err)
	}
	if !strings.Contains(d.output(), "(removed when the demo stops)") {
		t.Errorf("the banner does not say the store goes with the demo:\n%s", d.output())
	}

	t.Run("page", func(t *testing.T) { demoPage(t, d) })
	t.Run("shard", func(t *testing.T) { demoShard(t, d) })
	t.Run("pcloud", func(t *testing.T) { demoPcloud(t, d) })
	t.Run("nginx", func(t *testing.T) { demoNginx(t, d) })
	t.Run("tus", func(t *testing.T) { demoTus(t, d) })
	t.Run("sandbox", func(t *testing.T) { demoSandbox(t, d) })
	t.Run("dstor", func(t *testing.T) { demoDstor(t, d) })
	t.Run("printed commands", func(t *testing.T) { demoPrintedCommands(t, d) })

	metrics := string(newClient(t).do(http.MethodGet, d.admin+"/metrics", nil, nil, http.StatusOK))
	for _, p := range []string{"shard", "pcloud", "nginx", "tus", "sandbox", "dstor"} {
		series := `caddy_upload_progress_uploads_finished_total{outcome="completed",protocol="` + p + `",zone="default"} `
		if !strings.Contains(metrics, series) {
			t.Errorf("metrics lack %s", series)
		}
	}

	d.stop(os.Interrupt)
	if _, err := os.Stat(store); !os.IsNotExist(err) {
		t.Errorf("the store is still there after Ctrl-C (%v)", err)
	}
	if left, _ := os.ReadDir(d.tmp); len(left) != 0 {
		t.Errorf("left in TMPDIR after Ctrl-C: %v", left)
	}
}

func demoShard(t *testing.T, d *runningDemo) {
	c := newClient(t)
	key := map[string]string{"x-user-api-key": "demo"}
	data := testkit.RandomBytes(1<<20+3, 7)
	c.do(http.MethodPost, d.site+"/fso?path=/go/shard.bin&informProgress=true&overwrite=true", key, data, http.StatusCreated)

	var st shardStatus
	raw := c.decode(http.MethodGet, d.site+"/progress?path=/go/shard.bin", key, nil, http.StatusOK, &st)
	if want := (shardStatus{int64(len(data)), int64(len(data)), "completed", ""}); st != want {
		t.Errorf("status %s, want %+v", raw, want)
	}
	// The same over the WebSocket: the final state, then a normal close.
	c.expectFinalOverWebSocket(d.site, "/ws/progress?path=/go/shard.bin", http.Header{"X-User-Api-Key": {"demo"}}, raw)
	// The origin stored it.
	if got := c.do(http.MethodGet, d.site+"/fso?path=/go/shard.bin", key, nil, http.StatusOK); !bytes.Equal(got, data) {
		t.Error("the stored file differs from the upload")
	}
}

func demoPcloud(t *testing.T, d *runningDemo) {
	c := newClient(t)
	files := map[string][]byte{"one.bin": testkit.RandomBytes(700_000, 7), "two.txt": []byte("two\n")}
	body, ct := multipartBody(t, files, "one.bin", "two.txt")
	var answer struct {
		Result   int               `json:"result"`
		Metadata []json.RawMessage `json:"metadata"`
	}
	raw := c.decode(http.MethodPost, d.site+"/uploadfile?progresshash=go-multi&auth=demo&path=/go",
		map[string]string{"Content-Type": ct}, body, http.StatusOK, &answer)
	if answer.Result != 0 || len(answer.Metadata) != 2 {
		t.Fatalf("uploadfile: %s", raw)
	}
	for i, name := range []string{"one.bin", "two.txt"} {
		var f pcloudFile
		json.Unmarshal(answer.Metadata[i], &f)
		if f != (pcloudFile{name, int64(len(files[name])), testkit.SHA256(files[name])}) {
			t.Errorf("uploadfile file %d: %s", i, answer.Metadata[i])
		}
	}

	var st pcloudStatus
	raw = c.decode(http.MethodGet, d.site+"/uploadprogress?progresshash=go-multi&auth=demo", nil, nil, http.StatusOK, &st)
	if st.Result != 0 || !st.Finished || st.Uploaded != int64(len(body)) || st.Total != int64(len(body)) ||
		st.FileNumber != 2 || len(st.Files) != 2 {
		t.Fatalf("uploadprogress: %s", raw)
	}
	for i := range st.Files {
		if !bytes.Equal(st.Files[i], answer.Metadata[i]) {
			t.Errorf("uploadprogress file %d: %s, the origin said %s", i, st.Files[i], answer.Metadata[i])
		}
	}
	// Another token does not see it.
	var other pcloudStatus
	c.decode(http.MethodGet, d.site+"/uploadprogress?progresshash=go-multi&auth=someone-else", nil, nil, http.StatusOK, &other)
	if other.Result != 1900 {
		t.Errorf("another token's uploadprogress: %+v, want result 1900", other)
	}

	// A raw upload names its file with filename.
	data := testkit.RandomBytes(300_000, 7)
	c.do(http.MethodPost, d.site+"/uploadfile?progresshash=go-raw&auth=demo&path=/go&filename=raw.bin", nil, data, http.StatusOK)
	st = pcloudStatus{}
	raw = c.decode(http.MethodGet, d.site+"/uploadprogress?progresshash=go-raw&auth=demo", nil, nil, http.StatusOK, &st)
	var f pcloudFile
	if st.Result != 0 || !st.Finished || len(st.Files) != 1 || json.Unmarshal(st.Files[0], &f) != nil ||
		f != (pcloudFile{"raw.bin", int64(len(data)), testkit.SHA256(data)}) {
		t.Fatalf("uploadprogress of a raw upload: %s", raw)
	}
}

func demoNginx(t *testing.T, d *runningDemo) {
	c := newClient(t)
	// The id in the query, a raw body.
	data := testkit.RandomBytes(500_000, 7)
	c.do(http.MethodPost, d.site+"/upload?X-Progress-ID=go-raw&path=/go&filename=nginx.bin", nil, data, http.StatusCreated)
	if got := string(c.do(http.MethodGet, d.site+"/progress?X-Progress-ID=go-raw", nil, nil, http.StatusOK)); strings.TrimSpace(got) != `{"state":"done"}` {
		t.Errorf("progress: %s, want done", got)
	}
	// The id in a header, a multipart body.
	body, ct := multipartBody(t, map[string][]byte{"form.bin": data}, "form.bin")
	c.do(http.MethodPost, d.site+"/upload?path=/go", map[string]string{"X-Progress-ID": "go-form", "Content-Type": ct}, body, http.StatusCreated)
	if got := string(c.do(http.MethodGet, d.site+"/progress?X-Progress-ID=go-form", nil, nil, http.StatusOK)); strings.TrimSpace(got) != `{"state":"done"}` {
		t.Errorf("progress: %s, want done", got)
	}
	// An id nobody uploaded to is starting, as nginx says.
	if got := string(c.do(http.MethodGet, d.site+"/progress?X-Progress-ID=nobody", nil, nil, http.StatusOK)); strings.TrimSpace(got) != `{"state":"starting"}` {
		t.Errorf("progress of an unknown id: %s, want starting", got)
	}
	key := map[string]string{"x-user-api-key": "demo"}
	for _, p := range []string{"/go/nginx.bin", "/go/form.bin"} {
		if got := c.do(http.MethodGet, d.site+"/fso?path="+p, key, nil, http.StatusOK); !bytes.Equal(got, data) {
			t.Errorf("%s: the stored file differs from the upload", p)
		}
	}
}

// demoPrintedCommands runs the commands the banner prints, twice, as a
// user pasting them would, but with a smaller file, and each upload
// awaited instead of run in the background: every status command then
// reports its upload complete.
func demoPrintedCommands(t *testing.T, d *runningDemo) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("the printed commands need curl")
	}
	const size = 3_000_000
	var cmds []string
	for line := range strings.Lines(d.output()) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "head ") || strings.HasPrefix(line, "curl ") || strings.HasPrefix(line, "sleep 1; curl ") {
			cmds = append(cmds, line)
		}
	}
	if len(cmds) != 18 {
		t.Fatalf("%d commands in the banner, want 18 (a file, two per protocol but three for tus and dstor and four for sandbox, the metrics):\n%s", len(cmds), d.output())
	}
	const makeFile = "head -c 200000000 /dev/urandom > big.bin"
	if cmds[0] != makeFile {
		t.Fatalf("first command %q, want %q", cmds[0], makeFile)
	}
	cmds[0] = fmt.Sprintf("head -c %d /dev/urandom > big.bin", size)

	work := t.TempDir()
	run := func(cmd string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c := exec.CommandContext(ctx, "sh", "-c", cmd)
		c.Dir = work
		var stderr bytes.Buffer
		c.Stderr = &stderr
		out, err := c.Output()
		if err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, stderr.Bytes())
		}
		return string(out)
	}
	for round := 1; round <= 2; round++ {
		var statuses []string
		for _, cmd := range cmds {
			if status, ok := strings.CutPrefix(cmd, "sleep 1; "); ok {
				statuses = append(statuses, run(status))
				continue
			}
			upload, background := strings.CutSuffix(cmd, " &")
			if background != strings.Contains(cmd, "--limit-rate 20M") {
				t.Fatalf("%q: uploads, and only they, run throttled in the background", cmd)
			}
			out := run(upload)
			if strings.Contains(cmd, "/metrics") && !strings.Contains(out, "caddy_upload_progress_uploads_finished_total") {
				t.Errorf("round %d: the metrics command shows no finished uploads:\n%s", round, out)
			}
		}
		big, err := os.ReadFile(filepath.Join(work, "big.bin"))
		if err != nil || len(big) != size {
			t.Fatalf("big.bin: %d bytes (%v)", len(big), err)
		}
		if len(statuses) != 6 {
			t.Fatalf("%d status commands, want one per protocol", len(statuses))
		}
		var shard shardStatus
		if json.Unmarshal([]byte(statuses[0]), &shard) != nil || shard != (shardStatus{size, size, "completed", ""}) {
			t.Errorf("round %d: shard status %s, want completed", round, statuses[0])
		}
		var pc pcloudStatus
		var f pcloudFile
		if json.Unmarshal([]byte(statuses[1]), &pc) != nil || pc.Result != 0 || !pc.Finished || len(pc.Files) != 1 ||
			json.Unmarshal(pc.Files[0], &f) != nil || f != (pcloudFile{"big.bin", size, testkit.SHA256(big)}) {
			t.Errorf("round %d: pcloud status %s, want big.bin finished", round, statuses[1])
		}
		if strings.TrimSpace(statuses[2]) != `{"state":"done"}` {
			t.Errorf("round %d: nginx status %s, want done", round, statuses[2])
		}
		// tus: the upload the creation command made, its URL in tus.url.
		up, err := os.ReadFile(filepath.Join(work, "tus.url"))
		if err != nil || !strings.HasPrefix(string(up), d.site+"/files/") {
			t.Fatalf("round %d: tus.url holds %q (%v), want an upload URL", round, up, err)
		}
		var tus tusStatus
		want := tusStatus{strings.TrimPrefix(string(up), d.site), size, size, size, "completed", map[string]string{"filename": "big.bin"}, ""}
		if json.Unmarshal([]byte(statuses[3]), &tus) != nil || !sameTus(tus, want) {
			t.Errorf("round %d: tus status %s, want %+v", round, statuses[3], want)
		}
		// sandbox: the session the creation command made, its path in
		// sandbox.path; its one part (the file is smaller than a part) is in.
		sb, err := os.ReadFile(filepath.Join(work, "sandbox.path"))
		id, ok := strings.CutPrefix(string(sb), "/v1/sandboxes/sb_demo/uploads/")
		if err != nil || !ok || id == "" {
			t.Fatalf("round %d: sandbox.path holds %q (%v), want a session's path", round, sb, err)
		}
		var sst sandboxStatus
		if json.Unmarshal([]byte(statuses[4]), &sst) != nil || sst.UploadID != id || sst.Status != "staged" || sst.ContentLength != size ||
			sst.AcceptedBytes != size || sst.received() != size || sst.inFlight() != "[]" {
			t.Errorf("round %d: sandbox status %s, want session %s staged with received_bytes %d", round, statuses[4], id, size)
		}
		// dstor: its one chunk is in, so the origin answers, on its way
		// to DONE, with the proxy's counts added (the body is big.bin and
		// its multipart framing).
		var ds dstorStatus
		if json.Unmarshal([]byte(statuses[5]), &ds) != nil || !slices.Contains([]string{"ADDING_TO_IPFS", "SAVING_DATA", "DONE"}, ds.Status) ||
			ds.ChunksNumber != 1 || ds.ChunksUploaded != 1 || ds.FilesUploaded != 1 || ds.FolderPath != "/demo" ||
			ds.BytesUploaded <= size || ds.BytesUploaded > size+1024 {
			t.Errorf("round %d: dstor status %s, want the origin's stage after its one chunk of big.bin", round, statuses[5])
		}
	}
}

// A store the user names is the user's: the demo leaves it, and makes no
// temporary one. SIGTERM stops the demo as Ctrl-C does.
func TestDemoKeepsAGivenDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "my-store")
	d := startDemo(t, "--dir", dir)
	if got := d.storeDir(); got != dir {
		t.Fatalf("the banner names store %s, want %s", got, dir)
	}
	if !strings.Contains(d.output(), dir+" (kept)") {
		t.Errorf("the banner does not say the store is kept:\n%s", d.output())
	}
	newClient(t).do(http.MethodPost, d.site+"/upload?X-Progress-ID=k&filename=kept.txt", nil, []byte("kept"), http.StatusCreated)

	d.stop(syscall.SIGTERM)
	if got, err := os.ReadFile(filepath.Join(dir, "kept.txt")); err != nil || string(got) != "kept" {
		t.Errorf("after SIGTERM the given store lost its file: %q (%v)", got, err)
	}
	if left, _ := os.ReadDir(d.tmp); len(left) != 0 {
		t.Errorf("the demo made %v in TMPDIR although given --dir", left)
	}
}
