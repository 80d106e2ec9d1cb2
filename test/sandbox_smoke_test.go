package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// sandboxDo sends one request of the sandbox API through the proxy with
// the test's bearer token and returns the status and body.
func (e *env) sandboxDo(method, path string, body io.Reader, size int64) (int, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.proxy+path, body)
	req.ContentLength = size
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// A session of two parts through the real Caddy in front of the reference
// origin: a part held halfway shows in the overlaid status answer as
// uploading with its bytes; once complete, the origin's completed.
func TestSandboxSmoke(t *testing.T) {
	e := newEnv(t, "protocol sandbox")
	const part = 1 << 20
	create := fmt.Sprintf(`{"target_path":"/smoke.bin","content_length":%d,"part_size":%d,"kind":"file","conflict":"replace"}`, 2*part, part)
	code, b := e.sandboxDo("POST", "/v1/sandboxes/sb_1/uploads", strings.NewReader(create), int64(len(create)))
	if code != 201 {
		t.Fatalf("create: %d %s", code, b)
	}
	var obj map[string]any
	json.Unmarshal(b, &obj)
	id, _ := obj["upload_id"].(string)
	base := "/v1/sandboxes/sb_1/uploads/" + id

	src := pattern(2 * part)
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		code, _ := e.sandboxDo("PUT", base+"/parts/1", pr, part)
		done <- code
	}()
	pw.Write(src[:part/2])
	var got map[string]any
	for range 1000 {
		code, b = e.sandboxDo("GET", base, nil, 0)
		got = nil
		json.Unmarshal(b, &got)
		if got["received_bytes"] == float64(part/2) {
			break
		}
	}
	if code != 200 || got["status"] != "uploading" || got["received_bytes"] != float64(part/2) || got["accepted_bytes"] != float64(0) {
		t.Fatalf("halfway: %d %s", code, b)
	}
	pw.Write(src[part/2 : part])
	pw.Close()
	if c := <-done; c != 200 {
		t.Fatalf("part 1: %d", c)
	}
	if code, b := e.sandboxDo("PUT", base+"/parts/2", bytes.NewReader(src[part:]), part); code != 200 {
		t.Fatalf("part 2: %d %s", code, b)
	}
	if code, b := e.sandboxDo("POST", base+"/complete?mode=sync", nil, 0); code != 200 {
		t.Fatalf("complete: %d %s", code, b)
	}
	code, b = e.sandboxDo("GET", base, nil, 0)
	got = nil
	json.Unmarshal(b, &got)
	if code != 200 || got["status"] != "completed" || got["received_bytes"] != float64(2*part) || fmt.Sprint(got["parts_in_flight"]) != "[]" {
		t.Fatalf("completed: %d %s", code, b)
	}
}
