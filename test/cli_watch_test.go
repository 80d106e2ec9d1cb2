package test

import (
	"bytes"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/caddy-upload-progress/caddy-upload-progress/cmd/upload-origin/origin"
)

// watchArgs is `watch --json` of the proxy with protocol, key and
// credential.
func watchArgs(e *env, protocol, key, credential string, more ...string) []string {
	args := []string{"watch", "--server", e.proxy, "--protocol", protocol, "--key", key, "--json"}
	if credential != "" {
		args = append(args, "--api-key", credential)
	}
	return append(args, more...)
}

// A shard upload watched from before it starts (over the WebSocket, which
// waits for it): the command reports waiting, then the upload held
// midway, then completed with the whole count, and exits 0.
func TestCLIWatchShard(t *testing.T) {
	e := newEnv(t, "protocol shard")
	const size = 4 << 20
	transports := e.transports("shard")
	c := startCLI(t, watchArgs(e, "shard", "/cli/w.bin", apiKey)...)
	c.waitLine("waiting", func(l cliLine) bool { return l.Status == "waiting" })

	g := newDsGate(t)
	res := e.asyncUpload("/cli/w.bin", g.reader(pattern(size), size/2), size, "", nil)
	c.waitLine("midway", midway)
	g.open()
	if r := <-res; r.err != nil || r.code != http.StatusCreated {
		t.Fatalf("upload: %+v", r)
	}
	c.expectCompleted(size, size)
	transports(true)
}

// A pCloud multipart upload watched by its progresshash: midway, then
// completed with the body's length (the multipart framing included).
func TestCLIWatchPcloud(t *testing.T) {
	e := newEnv(t, "protocol pcloud")
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	fw, _ := mw.CreateFormFile("file", "p.bin")
	fw.Write(pattern(3 << 20))
	mw.Close()
	body := b.Bytes()

	g := newDsGate(t)
	res := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest("POST", e.proxy+"/uploadfile?progresshash=cli-p1&auth="+apiKey, g.reader(body, int64(len(body)/2)))
		req.ContentLength = int64(len(body))
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, err := e.client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != 200 {
				err = fmt.Errorf("uploadfile answered %d", resp.StatusCode)
			}
		}
		res <- err
	}()
	transports := e.transports("pcloud")
	c := startCLI(t, watchArgs(e, "pcloud", "cli-p1", apiKey)...)
	c.waitLine("midway", midway)
	g.open()
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	c.expectCompleted(int64(len(body)), int64(len(body)))
	transports(true)
}

// nginx has no WebSocket: the command polls /progress, sees the upload
// midway, then done, which carries no counts: the last line holds the
// length the upload had.
func TestCLIWatchNginx(t *testing.T) {
	e := newEnv(t, "protocol nginx")
	const size = 2 << 20
	transports := e.transports("nginx")
	c := startCLI(t, watchArgs(e, "nginx", "cli-n1", "")...)
	c.waitLine("waiting", func(l cliLine) bool { return l.Status == "waiting" })

	g := newDsGate(t)
	res := make(chan uploadResult, 1)
	go func() {
		req, _ := http.NewRequest("POST", e.proxy+"/upload?X-Progress-ID=cli-n1&filename=n.bin", g.reader(pattern(size), size/2))
		req.ContentLength = size
		req.Header.Set("X-User-Api-Key", apiKey)
		resp, err := e.client.Do(req)
		if err != nil {
			res <- uploadResult{err: err}
			return
		}
		resp.Body.Close()
		res <- uploadResult{code: resp.StatusCode}
	}()
	c.waitLine("midway", midway)
	g.open()
	if r := <-res; r.err != nil || r.code != http.StatusCreated {
		t.Fatalf("upload: %+v", r)
	}
	c.expectCompleted(size, size)
	transports(false)
}

// A tus upload watched by its upload URL, as the creation's Location gave
// it: midway through its PATCH, then completed at the server's offset.
func TestCLIWatchTus(t *testing.T) {
	e := newEnv(t, "protocol tus")
	const size = 3 << 20
	tc := e.tus(t)
	loc := tc.createURL(map[string]string{"Upload-Length": fmt.Sprint(size), "X-User-Api-Key": apiKey})
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	transports := e.transports("tus")
	c := startCLI(t, watchArgs(e, "tus", loc, "")...)
	g := newDsGate(t)
	res := make(chan error, 1)
	go func() {
		code, off, err := tc.patch(t.Context(), u.Path, 0, g.reader(pattern(size), size/2), size, map[string]string{"X-User-Api-Key": apiKey})
		if err == nil && (code != 204 || off != size) {
			err = fmt.Errorf("PATCH answered %d, offset %d", code, off)
		}
		res <- err
	}()
	c.waitLine("midway", midway)
	g.open()
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	c.expectCompleted(size, size)
	transports(true)
}

// A sandbox session watched by its path with the bearer token: its part
// held midway, then accepted, then the completion: the command follows the
// session (the proxy asking the origin once it completes on its own) to
// completed.
func TestCLIWatchSandbox(t *testing.T) {
	e := newSandboxEnv(t, origin.Config{})
	const size = 3 << 20
	session, _ := e.create("sb_cli", fileSession("/sandbox/cli.bin", size, size))
	transports := e.transports("sandbox")
	c := startCLI(t, watchArgs(e.env, "sandbox", session, apiKey)...)
	part := e.startPart(session, 1, size, nil)
	src := pattern(size)
	part.write(t, src[:size/2])
	c.waitLine("midway", midway)
	if a := part.finish(t, src[size/2:]); a.code != http.StatusOK {
		t.Fatalf("part: %d %s", a.code, a.body)
	}
	if a := e.do("POST", session+"/complete?mode=async", nil, nil); a.code != http.StatusAccepted {
		t.Fatalf("complete: %d %s", a.code, a.body)
	}
	c.expectCompleted(size, size)
	transports(true)
}

// A dstor folder upload watched by its token with its Authorization: the
// chunk held midway, then the origin's stages to DONE. dStor knows no
// folder's size: the total is -1 throughout.
func TestCLIWatchDstor(t *testing.T) {
	e := newDstorEnv(t, origin.Config{})
	tok := e.token(1, "/cli", nil)
	chunk := dsChunkOf([]dsFile{{"a.bin", dsContent(1, 300<<10)}, {"b.bin", dsContent(2, 600<<10)}}, 1)
	transports := e.transports("dstor")
	c := startCLI(t, watchArgs(e.env, "dstor", tok, "Bearer "+apiKey)...)
	g := newDsGate(t)
	res := make(chan error, 1)
	go func() {
		a, err := e.put(tok, chunk, g.reader(chunk.body, chunk.hold), nil)
		if err == nil && a.code != 200 {
			err = fmt.Errorf("chunk answered %d %s", a.code, a.body)
		}
		res <- err
	}()
	c.waitLine("midway", midway)
	g.open()
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	c.expectCompleted(int64(len(chunk.body)), -1)
	e.expectStoredFolder("/cli", chunk)
	transports(true)
}

// An upload the origin answers 500: the command reports it failed, says
// why, and exits 1, over the WebSocket (shard) and by polling (nginx).
func TestCLIWatchFailed(t *testing.T) {
	e := newEnv(t, "protocol shard nginx")
	fail := http.Header{"X-Origin-Fail": {"500"}}

	c := startCLI(t, watchArgs(e, "shard", "/cli/fail.bin", apiKey)...)
	c.waitLine("waiting", func(l cliLine) bool { return l.Status == "waiting" })
	if r := e.upload("/cli/fail.bin", bytes.NewReader(pattern(1<<20)), 1<<20, "", fail); r.code != 500 {
		t.Fatalf("upload: %+v", r)
	}
	c.expectExit(1)
	if l := c.jsonLines(); l[len(l)-1].Status != "failed" || !strings.Contains(c.err.String(), "500") {
		t.Fatalf("want a failed line and the origin's 500 on stderr; output:\n%s\nstderr: %s", c.out, c.err)
	}

	n := startCLI(t, watchArgs(e, "nginx", "cli-fail", "")...)
	n.waitLine("waiting", func(l cliLine) bool { return l.Status == "waiting" })
	req, _ := http.NewRequest("POST", e.proxy+"/upload?X-Progress-ID=cli-fail&filename=f.bin", bytes.NewReader(pattern(1<<20)))
	req.Header = http.Header{"X-User-Api-Key": {apiKey}, "X-Origin-Fail": {"500"}}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	n.expectExit(1)
	if l := n.jsonLines(); l[len(l)-1].Status != "failed" || !strings.Contains(n.err.String(), "500") {
		t.Fatalf("want a failed line and the status 500 on stderr; output:\n%s\nstderr: %s", n.out, n.err)
	}
}

// An upload that never comes: the command gives up after --wait with exit
// 3, whether it waits on a WebSocket that waits too (shard), polls (nginx),
// or polls because the WebSocket refuses what does not exist yet (tus).
func TestCLIWaitTimeout(t *testing.T) {
	e := newEnv(t, "protocol shard nginx tus")
	for _, tc := range []struct{ protocol, key, credential string }{
		{"shard", "/cli/never.bin", apiKey},
		{"nginx", "never", ""},
		{"tus", e.proxy + "/files/never", ""},
	} {
		t.Run(tc.protocol, func(t *testing.T) {
			code, c := runCLI(t, watchArgs(e, tc.protocol, tc.key, tc.credential, "--wait", "300ms")...)
			if code != 3 || !strings.Contains(c.err.String(), "did not appear within 300ms") {
				t.Fatalf("exit %d, want 3; output:\n%s\nstderr: %s", code, c.out, c.err)
			}
			if ls := c.jsonLines(); len(ls) != 1 || ls[0] != (cliLine{Total: -1, Status: "waiting"}) {
				t.Fatalf("want one waiting line: %v", ls)
			}
		})
	}
}

// Command lines that cannot run exit 2 and say why on stderr, before
// asking anything; so do requests the server refuses for what the user
// gave (no credential).
func TestCLIUsageErrors(t *testing.T) {
	e := newEnv(t, "protocol shard")
	file := t.TempDir() + "/f.bin"
	writeCLIFile(t, file, pattern(10))
	for _, tc := range []struct {
		name string
		args []string
		says string
	}{
		{"no command", nil, "usage"},
		{"unknown command", []string{"follow"}, "usage"},
		{"no server", []string{"watch", "--key", "/x"}, "--server is required"},
		{"server no URL", []string{"watch", "--server", "localhost:8080", "--key", "/x"}, "--server must be"},
		{"no key", []string{"watch", "--server", e.proxy}, "--key is required"},
		{"unknown protocol", []string{"watch", "--server", e.proxy, "--key", "/x", "--protocol", "ftp"}, `--protocol "ftp"`},
		{"unknown flag", []string{"watch", "--server", e.proxy, "--key", "/x", "--follow"}, "unknown flag"},
		{"bad wait", []string{"watch", "--server", e.proxy, "--key", "/x", "--wait", "soon"}, "--wait"},
		{"argument to watch", []string{"watch", "extra", "--server", e.proxy, "--key", "/x"}, "no arguments"},
		{"bad header", []string{"watch", "--server", e.proxy, "--key", "/x", "-H", "nocolon"}, "--header"},
		{"upload without file", []string{"upload", "--server", e.proxy, "--key", "/x"}, "one FILE"},
		{"upload missing file", []string{"upload", file + ".nope", "--server", e.proxy, "--key", "/x"}, "no such file"},
		{"shard upload without key", []string{"upload", file, "--server", e.proxy}, "--key is required"},
		{"tus upload with key", []string{"upload", file, "--server", e.proxy, "--protocol", "tus", "--key", "/x"}, "not used with tus"},
		{"upload nginx", []string{"upload", file, "--server", e.proxy, "--protocol", "nginx", "--key", "x"}, "upload sends files with"},
		{"no credential", []string{"watch", "--server", e.proxy, "--key", "/x"}, "missing x-user-api-key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, c := runCLI(t, tc.args...)
			if code != 2 || !strings.Contains(c.err.String(), tc.says) {
				t.Fatalf("exit %d, want 2 saying %q; stderr: %s", code, tc.says, c.err)
			}
		})
	}
	code, c := runCLI(t, "watch", "--help")
	if code != 0 || !strings.Contains(c.out.String(), "--wait duration") {
		t.Fatalf("--help: exit %d, output:\n%s", code, c.out)
	}
}

// A tus upload the proxy does not know yet (created at the server
// directly): its WebSocket refuses it, so the command polls; once a PATCH
// through the proxy opens the session, the command opens the WebSocket
// again and follows the upload there to completed.
func TestCLIWatchTusBeforeTheProxyKnowsIt(t *testing.T) {
	e := newEnv(t, "protocol tus")
	const size = 2 << 20
	src := pattern(size)
	req, _ := http.NewRequest("POST", "http://"+e.originURL+"/files/", nil)
	req.Header = http.Header{"Tus-Resumable": {"1.0.0"}, "Upload-Length": {fmt.Sprint(size)}, "X-User-Api-Key": {apiKey}}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if resp.StatusCode != http.StatusCreated || err != nil {
		t.Fatalf("creation at the origin: %d %v", resp.StatusCode, err)
	}

	rest, ws := e.statusRequests("tus", "rest"), e.statusRequests("tus", "websocket")
	c := startCLI(t, watchArgs(e, "tus", loc.Path, "")...)
	c.waitLine("waiting", func(l cliLine) bool { return l.Status == "waiting" })
	tc := e.tus(t)
	hdr := map[string]string{"X-User-Api-Key": apiKey}
	if code, off, err := tc.patch(t.Context(), loc.Path, 0, bytes.NewReader(src[:size/2]), size/2, hdr); err != nil || code != 204 || off != size/2 {
		t.Fatalf("first PATCH: %d %d %v", code, off, err)
	}
	// A resuming client's HEAD tells the proxy the length.
	if resp, err := tc.do(t.Context(), http.MethodHead, loc.Path, nil, 0, hdr); err != nil || resp.StatusCode != 200 {
		t.Fatalf("HEAD: %v %v", resp, err)
	}
	c.waitLine("paused at half", func(l cliLine) bool { return l.Status == "paused" && l.Uploaded == size/2 && l.Total == size })
	if code, off, err := tc.patch(t.Context(), loc.Path, size/2, bytes.NewReader(src[size/2:]), size/2, hdr); err != nil || code != 204 || off != size {
		t.Fatalf("second PATCH: %d %d %v", code, off, err)
	}
	c.expectCompleted(size, size)
	if dRest, dWS := e.statusRequests("tus", "rest")-rest, e.statusRequests("tus", "websocket")-ws; dRest < 1 || dWS < 1 {
		t.Fatalf("%v REST requests and %v WebSockets, want both", dRest, dWS)
	}
}
