package test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// nginxGet asks the nginx-style endpoint; it returns code, body and headers.
func (e *env) nginxGet(query string) (int, string, http.Header) {
	e.t.Helper()
	resp, err := e.client.Get(e.proxy + "/progress?" + query)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), resp.Header
}

// The nginx upload progress module's JSON sequence during a throttled
// upload, beside the storage-node protocol on the same /progress path.
func TestNginxProtocolSequence(t *testing.T) {
	e := newEnv(t, "protocol nginx shard")
	if code, body, hdr := e.nginxGet("X-Progress-ID=abc123"); code != 200 || body != `{"state":"starting"}` ||
		hdr.Get("Cache-Control") != "no-cache" || hdr.Get("Expires") != "Thu, 01 Jan 1970 00:00:01 GMT" {
		t.Fatalf("before the upload: %d %s %v", code, body, hdr)
	}

	pr, pw := io.Pipe()
	done := e.asyncUpload("/nginx.bin", pr, 2<<20, "", http.Header{"X-Progress-Id": {"abc123"}})
	pw.Write(pattern(1 << 20))
	want := `{"state":"uploading","received":1048576,"size":2097152}`
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		_, body, _ := e.nginxGet("X-Progress-ID=abc123")
		if body == want {
			break
		}
		if !strings.HasPrefix(body, `{"state":"uploading"`) && body != `{"state":"starting"}` || time.Now().After(deadline) {
			t.Fatalf("while uploading: %s, want %s", body, want)
		}
	}
	// JSONP, as the module's JavaScript clients ask for it.
	code, body, hdr := e.nginxGet("X-Progress-ID=abc123&callback=jQuery_123.cb")
	if want := `jQuery_123.cb({"state":"uploading","received":1048576,"size":2097152});`; code != 200 || body != want ||
		hdr.Get("Content-Type") != "application/javascript" {
		t.Fatalf("JSONP: %d %s (%s), want %s", code, body, hdr.Get("Content-Type"), want)
	}
	pw.Write(pattern(1 << 20))
	pw.Close()
	if res := <-done; res.code != 201 {
		t.Fatalf("upload: %d %s", res.code, res.body)
	}
	if _, body, _ := e.nginxGet("X-Progress-ID=abc123"); body != `{"state":"done"}` {
		t.Fatalf("after the upload: %s", body)
	}
	// The id in a header works for status requests too.
	req, _ := http.NewRequest("GET", e.proxy+"/progress", nil)
	req.Header.Set("X-Progress-ID", "abc123")
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(b)) != `{"state":"done"}` {
		t.Fatalf("status by header: %s", b)
	}
	// The storage-node protocol still answers on the same path.
	if p := e.status("/nginx.bin"); p.Status != "not_exist" {
		t.Fatalf("shard sees the nginx upload under its path: %+v", p)
	}
}

func TestNginxProtocolErrors(t *testing.T) {
	e := newEnv(t, "protocol nginx")
	data := pattern(4096)
	// A reused id never fails the upload; the id shows the newest one.
	for i, fail := range []string{"", "500"} {
		hdr := http.Header{"X-Progress-Id": {"same-id"}}
		if fail != "" {
			hdr.Set("X-Origin-Fail", fail)
		}
		res := e.upload("/reused-"+string(rune('a'+i))+".bin", bytes.NewReader(data), 4096, "", hdr)
		if res.err != nil || res.code == 0 {
			t.Fatalf("upload %d: %v", i, res.err)
		}
	}
	if _, body, _ := e.nginxGet("X-Progress-ID=same-id"); body != `{"state":"error","status":500}` {
		t.Fatalf("after a failed re-upload under the same id: %s", body)
	}
	cases := map[string]string{
		"callback=alert(1)//&X-Progress-ID=x": `{"state":"error","status":400,"error":"callback must be a JavaScript identifier"}`,
		"":                                    `{"state":"error","status":400,"error":"missing X-Progress-ID"}`,
		"X-Progress-ID=a&X-Progress-ID=b":     `{"state":"error","status":400,"error":"query parameter X-Progress-ID is given more than once"}`,
	}
	for q, want := range cases {
		if code, body, _ := e.nginxGet(q); code != 400 || body != want {
			t.Errorf("%q: %d %s, want 400 %s", q, code, body, want)
		}
	}
}
