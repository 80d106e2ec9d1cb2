package test

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden replies in testdata/golden")

// goldenCase is one request whose whole reply (status, the headers a client
// acts on, body) is pinned byte for byte.
type goldenCase struct {
	name   string
	method string
	target string // path and query
	header http.Header
	body   string
}

// goldenHeaders are the reply headers a client of a progress API acts on.
var goldenHeaders = []string{"Allow", "Cache-Control", "Content-Type", "Expires"}

// checkGolden sends each case and compares its reply with
// testdata/golden/<file>; -update rewrites the file.
func (e *env) checkGolden(t *testing.T, file string, cases []goldenCase) {
	t.Helper()
	var got bytes.Buffer
	for _, c := range cases {
		req, err := http.NewRequest(c.method, e.proxy+c.target, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		if c.body == "" {
			req.Body = http.NoBody
		}
		for k, v := range c.header {
			req.Header[k] = v
		}
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Fprintf(&got, "=== %s: %s %s\n%d\n", c.name, c.method, c.target, resp.StatusCode)
		for _, h := range goldenHeaders {
			if v := resp.Header.Get(h); v != "" {
				fmt.Fprintf(&got, "%s: %s\n", h, v)
			}
		}
		fmt.Fprintf(&got, "%s\n", b)
	}
	path := filepath.Join("testdata", "golden", file)
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("replies differ from %s:\n--- got\n%s\n--- want\n%s", path, got.Bytes(), want)
	}
}

func goldenHeader(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// Every reply of the storage-node protocol: states and refusals.
func TestGoldenShardReplies(t *testing.T) {
	e := newEnv(t, "protocol shard")
	key := goldenHeader("x-user-api-key", apiKey)
	if res := e.upload("/golden/done.bin", bytes.NewReader(pattern(1000)), 1000, "", nil); res.code != 201 {
		t.Fatalf("upload: %d %s", res.code, res.body)
	}
	// The same path again, refused with 409 once the origin has read the
	// whole body: an origin that refuses before reading may or may not have
	// received the body, and the count would depend on that race.
	fail := goldenHeader("X-Origin-Fail", "409")
	if res := e.upload("/golden/done.bin", bytes.NewReader(pattern(10)), 10, "", fail); res.code != 409 {
		t.Fatalf("second upload: %d %s", res.code, res.body)
	}
	if res := e.upload("/golden/ok.bin", bytes.NewReader(pattern(2048)), 2048, "", nil); res.code != 201 {
		t.Fatalf("upload: %d %s", res.code, res.body)
	}
	e.checkGolden(t, "shard.txt", []goldenCase{
		{"completed", "GET", "/progress?path=/golden/ok.bin", key, ""},
		{"failed", "GET", "/progress?path=/golden/done.bin", key, ""},
		{"not_exist", "GET", "/progress?path=/golden/none.bin", key, ""},
		{"other owner", "GET", "/progress?path=/golden/ok.bin", goldenHeader("x-user-api-key", "other-key"), ""},
		{"head", "HEAD", "/progress?path=/golden/ok.bin", key, ""},
		{"no credential", "GET", "/progress?path=/golden/ok.bin", nil, ""},
		{"no path", "GET", "/progress", key, ""},
		{"relative path", "GET", "/progress?path=golden/ok.bin", key, ""},
		{"repeated path", "GET", "/progress?path=/a&path=/b", key, ""},
		{"bad rate", "GET", "/progress?path=/a&updatingRate=0", key, ""},
		{"bad unit", "GET", "/progress?path=/a&unitOfMeasurement=KB", key, ""},
		{"control character", "GET", "/progress?path=/a%01", key, ""},
		{"method", "POST", "/progress?path=/golden/ok.bin", key, "x"},
		{"websocket method", "POST", "/ws/progress?path=/golden/ok.bin", key, "x"},
		{"websocket no credential", "GET", "/ws/progress?path=/golden/ok.bin", nil, ""},
		{"websocket bad query", "GET", "/ws/progress", key, ""},
	})
}

// Every reply of the nginx protocol beside shard on /progress.
func TestGoldenNginxReplies(t *testing.T) {
	e := newEnv(t, "protocol nginx shard")
	if res := e.upload("/golden/n.bin", bytes.NewReader(pattern(500)), 500, "", goldenHeader("X-Progress-ID", "done1")); res.code != 201 {
		t.Fatalf("upload: %d %s", res.code, res.body)
	}
	if res := e.upload("/golden/n.bin", bytes.NewReader(pattern(5)), 5, "", goldenHeader("X-Progress-ID", "fail1")); res.code != 409 {
		t.Fatalf("second upload: %d %s", res.code, res.body)
	}
	e.checkGolden(t, "nginx.txt", []goldenCase{
		{"done", "GET", "/progress?X-Progress-ID=done1", nil, ""},
		{"error", "GET", "/progress?X-Progress-ID=fail1", nil, ""},
		{"starting", "GET", "/progress?X-Progress-ID=unknown", nil, ""},
		{"header id", "GET", "/progress", goldenHeader("X-Progress-ID", "done1"), ""},
		{"jsonp", "GET", "/progress?X-Progress-ID=done1&callback=jQuery_1.cb", nil, ""},
		{"bad callback", "GET", "/progress?X-Progress-ID=done1&callback=alert(1)", nil, ""},
		{"repeated id", "GET", "/progress?X-Progress-ID=a&X-Progress-ID=b", nil, ""},
		{"method", "DELETE", "/progress?X-Progress-ID=done1", nil, ""},
		{"shard beside it", "GET", "/progress?path=/golden/n.bin", goldenHeader("x-user-api-key", apiKey), ""},
	})
}

// Every reply of the pCloud protocol: found, finished with the origin's
// metadata, and its result codes.
func TestGoldenPcloudReplies(t *testing.T) {
	e := newEnv(t, "protocol pcloud")
	e.load("protocol pcloud", pcloudOrigin(t))
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.SetBoundary("goldenboundary")
	fw, _ := mw.CreateFormFile("file", "a.txt")
	fw.Write(pattern(300))
	mw.Close()
	req, _ := http.NewRequest("POST", e.proxy+"/uploadfile?progresshash=gold&auth=tok", bytes.NewReader(body.Bytes()))
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("upload: %d", resp.StatusCode)
	}
	form := goldenHeader("Content-Type", "application/x-www-form-urlencoded")
	e.checkGolden(t, "pcloud.txt", []goldenCase{
		{"finished", "GET", "/uploadprogress?progresshash=gold&auth=tok", nil, ""},
		{"bearer", "GET", "/uploadprogress?progresshash=gold", goldenHeader("Authorization", "Bearer tok"), ""},
		{"posted form", "POST", "/uploadprogress", form, "progresshash=gold&auth=tok"},
		{"not found", "GET", "/uploadprogress?progresshash=none&auth=tok", nil, ""},
		{"other owner", "GET", "/uploadprogress?progresshash=gold&auth=other", nil, ""},
		{"login required", "GET", "/uploadprogress?progresshash=gold", nil, ""},
		{"no hash", "GET", "/uploadprogress?auth=tok", nil, ""},
		{"repeated hash", "GET", "/uploadprogress?progresshash=a&progresshash=b&auth=tok", nil, ""},
		{"method", "PUT", "/uploadprogress?progresshash=gold&auth=tok", nil, "x"},
	})
}
