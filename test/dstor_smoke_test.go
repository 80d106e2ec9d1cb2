package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"
)

// dstorDo sends one request of dStor's upload API through the proxy with
// the test's credential (and token, if given); it returns the status and
// the decoded answer.
func (e *env) dstorDo(method, path, token, contentType string, body io.Reader) (int, map[string]any, string) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.proxy+path, body)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	if token != "" {
		req.Header.Set("X-Dstor-Upload-Token", token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v map[string]any
	json.Unmarshal(b, &v)
	return resp.StatusCode, v, string(b)
}

// dstorFile is a file of a chunk: its path in the folder and its size.
type dstorFile struct {
	path string
	size int
}

// dstorChunk builds a chunk of files as a multipart body.
func dstorChunk(files ...dstorFile) ([]byte, string) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, f := range files {
		fw, _ := mw.CreateFormFile("file", f.path)
		fw.Write(pattern(f.size))
	}
	mw.Close()
	return b.Bytes(), mw.FormDataContentType()
}

// A folder in two chunks through the real Caddy in front of the reference
// origin: get-status answers UPLOADING from the token on, with a chunk held
// halfway in flight, then the origin's stages to DONE with the counts added.
func TestDstorSmoke(t *testing.T) {
	e := newEnv(t, "protocol dstor")
	code, v, body := e.dstorDo("POST", "/v1/upload/get-token", "", "application/json", strings.NewReader(`{"chunks_number":2,"folder_path":"/photos"}`))
	tok, _ := v["token"].(string)
	if code != 200 || tok == "" {
		t.Fatalf("get-token: %d %s", code, body)
	}
	if code, _, body := e.dstorDo("GET", "/v1/upload/get-status/", tok, "", nil); code != 200 || body != `{"status":"UPLOADING","chunksNumber":2,"chunksUploaded":0,"chunksInFlight":0,"bytesUploaded":0,"filesUploaded":0,"folderPath":"/photos"}`+"\n" {
		t.Fatalf("right after the token: %d %s", code, body)
	}

	one, ct1 := dstorChunk(dstorFile{"2024/a.jpg", 1 << 10}, dstorFile{"2024/b.jpg", 600 << 10})
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		code, _, _ := e.dstorDo("POST", "/v1/upload/", tok, ct1, pr)
		done <- code
	}()
	pw.Write(one[:len(one)/2])
	var mid map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, mid, body = e.dstorDo("GET", "/v1/upload/get-status/", tok, "", nil)
		if mid["bytesUploaded"] == float64(len(one)/2) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if mid["status"] != "UPLOADING" || mid["chunksInFlight"] != float64(1) || mid["bytesUploaded"] != float64(len(one)/2) || mid["filesUploaded"] != float64(1) || mid["currentFile"] != "2024/b.jpg" {
		t.Fatalf("halfway through chunk 1: %s", body)
	}
	pw.Write(one[len(one)/2:])
	pw.Close()
	if c := <-done; c != 200 {
		t.Fatalf("chunk 1: %d", c)
	}
	two, ct2 := dstorChunk(dstorFile{"c.txt", 1000})
	if code, _, body := e.dstorDo("POST", "/v1/upload/", tok, ct2, bytes.NewReader(two)); code != 200 {
		t.Fatalf("chunk 2: %d %s", code, body)
	}
	var last map[string]any
	deadline = time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, last, body = e.dstorDo("GET", "/v1/upload/get-status/", tok, "", nil)
		if last["status"] == "DONE" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	want := fmt.Sprint(map[string]any{"chunksNumber": float64(2), "chunksUploaded": float64(2), "bytesUploaded": float64(len(one) + len(two)), "filesUploaded": float64(3), "folderPath": "/photos"})
	got := fmt.Sprint(map[string]any{"chunksNumber": last["chunksNumber"], "chunksUploaded": last["chunksUploaded"], "bytesUploaded": last["bytesUploaded"], "filesUploaded": last["filesUploaded"], "folderPath": last["folderPath"]})
	if last["status"] != "DONE" || last["data"] == nil || got != want {
		t.Fatalf("done: %s", body)
	}
}
