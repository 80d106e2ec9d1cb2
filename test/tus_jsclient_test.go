package test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/testkit"
)

// The tests here run tus-js-client (test/js/tus-upload.mjs, under node)
// through Caddy to the real tusd while a WebSocket watcher follows the
// upload, as a web page showing an upload's progress would.

// A 24 MiB upload in 4 MiB PATCHes.
func TestTusJSChunked(t *testing.T) { runJSUpload(t, 4<<20, 6) }

// The same upload in one PATCH (chunkSize Infinity).
func TestTusJSOnePatch(t *testing.T) { runJSUpload(t, 0, 1) }

// runJSUpload uploads 24 MiB with tus-js-client in chunks of chunk bytes
// (0: one PATCH), which makes patches PATCHes, and checks what the
// watcher saw, what tusd stored and what the client said.
func runJSUpload(t *testing.T, chunk, patches int) {
	testkit.RequireNode(t, "js")
	const size = 24 << 20
	const name = "holiday video.mp4"
	src := pattern(size)
	file := filepath.Join(t.TempDir(), "source.bin")
	if err := os.WriteFile(file, src, 0o600); err != nil {
		t.Fatal(err)
	}
	tusd := startTusd(t)
	gate := startJSGate(t, tusd.addr)
	e := newEnv(t, "")
	e.load("protocol tus", gate.addr)

	js := startJSUpload(t, e.proxy+"/files/", file, chunk, name)
	upURL := js.line(t, "url")
	up, err := url.Parse(upURL)
	// tusd names the upload by a full URL at the Host it was asked at:
	// Caddy's, so that every PATCH passes through it.
	if err != nil || !up.IsAbs() || "http://"+up.Host != e.proxy || up.Path == "" {
		t.Fatalf("tus-js-client printed upload URL %q, want a full URL under %s", upURL, e.proxy)
	}

	// The first PATCH waits at the gate until the watcher has its first
	// message: the upload cannot be over before it is watched.
	w := e.watchTus(upURL)
	first := w.next(t)
	gate.release()
	if first.Status != "created" && first.Status != "uploading" || first.Offset != 0 ||
		first.Length != size || first.Metadata["filename"] != name {
		t.Fatalf("watcher's first message %+v", first)
	}
	msgs, code := w.all(t, 50*time.Second)
	if len(msgs) == 1 {
		t.Fatalf("watcher closed with %d after one message, %+v", code, first)
	}
	last := msgs[len(msgs)-1]
	if last.Status != "completed" || last.Offset != size || last.Received != size || last.Length != size ||
		last.Metadata["filename"] != name || last.Error != "" || last.Upload != up.Path {
		t.Fatalf("watcher's last message %+v", last)
	}
	for i, m := range msgs {
		if m.Received < m.Offset {
			t.Fatalf("message %d of %d: received %d is short of offset %d", i, len(msgs), m.Received, m.Offset)
		}
		if i > 0 && (m.Offset < msgs[i-1].Offset || m.Received < msgs[i-1].Received) {
			t.Fatalf("message %d of %d went back: %+v after %+v", i, len(msgs), m, msgs[i-1])
		}
	}
	if code != websocket.StatusNormalClosure {
		t.Fatalf("watcher closed with %d after %d messages, want 1000", code, len(msgs))
	}
	t.Logf("%d watcher messages", len(msgs))

	if got := js.line(t, "done"); got != upURL {
		t.Fatalf("tus-js-client printed done %q, want %q", got, upURL)
	}
	if stderr, err := js.wait(); err != nil {
		t.Fatalf("tus-js-client: %v\n%s", err, stderr)
	}
	if got := tusd.stored(t, up.Path); !bytes.Equal(got, src) {
		t.Fatalf("tusd stored %d bytes, not the source", len(got))
	}
	want := []string{"POST /files/"}
	for range patches {
		want = append(want, "PATCH "+up.Path)
	}
	if got := tusd.seen(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("tusd got %v, want what tus-js-client sends: %v", got, want)
	}
}

// jsGate passes requests on to tusd, keeping their Host (tusd makes the
// upload URL from it), but holds every PATCH until release: on loopback
// the whole upload could otherwise be over before a watcher is in place.
type jsGate struct {
	addr string
	open chan struct{}
	once sync.Once
}

func startJSGate(t *testing.T, tusdAddr string) *jsGate {
	t.Helper()
	g := &jsGate{open: make(chan struct{})}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: tusdAddr})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPatch {
			select {
			case <-g.open:
			case <-r.Context().Done():
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		g.release() // a held PATCH must end for Close to return
		ts.Close()
	})
	g.addr = strings.TrimPrefix(ts.URL, "http://")
	return g
}

// release lets the PATCHes through, now and from now on.
func (g *jsGate) release() { g.once.Do(func() { close(g.open) }) }

// jsUpload is one run of test/js/tus-upload.mjs.
type jsUpload struct {
	ctx    context.Context
	cmd    *exec.Cmd
	lines  chan string // stdout, line by line; closed at its end
	stderr bytes.Buffer

	once    sync.Once
	waitErr error
}

// startJSUpload runs tus-upload.mjs for file, to be done within 60 s; it
// is killed, if need be, and waited for when the test ends.
func startJSUpload(t *testing.T, endpoint, file string, chunk int, name string) *jsUpload {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	j := &jsUpload{ctx: ctx, lines: make(chan string, 16)}
	j.cmd = exec.CommandContext(ctx, "node", "js/tus-upload.mjs", endpoint, file, strconv.Itoa(chunk), name)
	j.cmd.Env = append(os.Environ(), "TUS_PROGRESS=0")
	j.cmd.Stderr = &j.stderr
	j.cmd.WaitDelay = 5 * time.Second
	out, err := j.cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := j.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		defer close(j.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case j.lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel() // kills node if it still runs
		j.wait()
	})
	return j
}

// line returns what follows word on the next stdout line that starts
// with it, failing the test if node's output ends first or the run's time
// is up.
func (j *jsUpload) line(t *testing.T, word string) string {
	t.Helper()
	for {
		select {
		case l, ok := <-j.lines:
			if !ok {
				stderr, err := j.wait()
				t.Fatalf("tus-js-client ended (%v) before printing %s:\n%s", err, word, stderr)
			}
			if v, found := strings.CutPrefix(l, word+" "); found {
				return v
			}
		case <-j.ctx.Done():
			t.Fatalf("tus-js-client printed no %s line within 60 s", word)
		}
	}
}

// wait waits for node to exit, once, and returns what it wrote to stderr
// and how it ended. The rest of stdout is read first, as exec requires.
func (j *jsUpload) wait() (string, error) {
	j.once.Do(func() {
		for range j.lines {
		}
		j.waitErr = j.cmd.Wait()
	})
	return j.stderr.String(), j.waitErr
}
