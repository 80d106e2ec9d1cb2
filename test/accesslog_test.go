package test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// How an upload ended is in the access log line of its request, where the
// site turns access logs on, and in its request variables: a header set
// from {http.vars.upload_outcome} carries it to the client.
func TestUploadFieldsInTheAccessLog(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "access.log")
	e := newEnvWith(t, "protocol shard", `log {
		output file `+logFile+` {
			roll_disabled
		}
		format json
	}
	header {
		defer
		X-Upload-Outcome {http.vars.upload_outcome}
	}`, false)
	req, _ := http.NewRequest("POST", e.proxy+"/fso?path=/logged.bin&informProgress=true", bytes.NewReader(pattern(4096)))
	req.Header.Set("x-user-api-key", apiKey)
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 || resp.Header.Get("X-Upload-Outcome") != "completed" {
		t.Fatalf("upload: %d, X-Upload-Outcome %q; want 201 and completed", resp.StatusCode, resp.Header.Get("X-Upload-Outcome"))
	}

	// Caddy writes the line once the response is done: wait for it.
	var line map[string]any
	for deadline := time.Now().Add(10 * time.Second); line == nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no access log line with upload fields within 10 s")
		}
		f, err := os.Open(logFile)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["upload_key"] == "/logged.bin" {
				line = m
			}
		}
		f.Close()
	}
	want := map[string]any{
		"upload_protocol": "shard", "upload_key": "/logged.bin", "upload_bytes": float64(4096),
		"upload_total": float64(4096), "upload_outcome": "completed", "upload_status": float64(201), "upload_error": "",
	}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %#v, want %#v in %v", k, line[k], v, line)
		}
	}
	if d, ok := line["upload_duration"].(float64); !ok || d < 0 {
		t.Errorf("upload_duration = %#v, want seconds", line["upload_duration"])
	}
	if line["msg"] != "handled request" {
		t.Errorf("the fields are on the line %q, want Caddy's access log line", line["msg"])
	}
}
