package test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/testkit"
)

// pcloudOrigin stands in for pCloud's uploadfile: it reads a multipart
// body and answers {"result":0,"metadata":[...]} as pCloud does, each file
// with the sha256 of what reached it.
func pcloudOrigin(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	type meta struct {
		Name     string `json:"name"`
		Size     int64  `json:"size"`
		FileID   int    `json:"fileid"`
		IsFolder bool   `json:"isfolder"`
		SHA256   string `json:"sha256"`
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/uploadfile" {
			http.NotFound(w, r)
			return
		}
		mr, err := r.MultipartReader()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		metas := []meta{}
		for id := 1; ; id++ {
			part, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			h := sha256.New()
			n, err := io.Copy(h, part)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			if part.FileName() != "" {
				metas = append(metas, meta{part.FileName(), n, id, false, hex.EncodeToString(h.Sum(nil))})
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"result": 0, "metadata": metas})
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// pcloudReply is pCloud's uploadprogress reply.
type pcloudReply struct {
	Result              int               `json:"result"`
	Error               string            `json:"error"`
	Total               int64             `json:"total"`
	Uploaded            int64             `json:"uploaded"`
	CurrentFile         *string           `json:"currentfile"`
	CurrentFileUploaded *int64            `json:"currentfileuploaded"`
	FileNumber          int               `json:"filenumber"`
	Finished            bool              `json:"finished"`
	Files               []json.RawMessage `json:"files"`
}

func (e *env) pcloudProgress(query string) (pcloudReply, string) {
	e.t.Helper()
	resp, err := e.client.Get(e.proxy + "/uploadprogress?" + query)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var p pcloudReply
	if err := json.Unmarshal(b, &p); err != nil || resp.StatusCode != 200 {
		e.t.Fatalf("uploadprogress: %d %q", resp.StatusCode, b)
	}
	return p, string(b)
}

// A 3-file multipart upload watched live: currentfile moves from file to
// file, files grows, byte counts are exact, and once the origin answers
// the files are its own metadata.
func TestPcloudMultipartUploadWatchedLive(t *testing.T) {
	e := newEnv(t, "")
	e.load("protocol pcloud", pcloudOrigin(t))

	// Build the body, noting where each file's content starts and ends.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("folderid", "0")
	type span struct{ start, end int }
	var files []span
	names := []string{"one.bin", "two.bin", "three.bin"}
	sizes := []int{1 << 20, 700 << 10, 300 << 10}
	for i, name := range names {
		fw, _ := mw.CreateFormFile("file", name)
		start := body.Len()
		fw.Write(bytes.Repeat([]byte{'a' + byte(i)}, sizes[i]))
		files = append(files, span{start, body.Len()})
	}
	mw.Close()
	all := body.Bytes()

	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", e.proxy+"/uploadfile?progresshash=h-123&auth=tok", pr)
	req.ContentLength = int64(len(all))
	req.Header.Set("Content-Type", mw.FormDataContentType())
	done := make(chan *http.Response, 1)
	go func() {
		resp, err := e.client.Do(req)
		if err != nil {
			t.Error(err)
		}
		done <- resp
	}()
	auth := "progresshash=h-123&auth=tok"

	// waitUploaded polls until the proxy has read exactly n bytes.
	waitUploaded := func(n int) pcloudReply {
		deadline := time.Now().Add(10 * time.Second)
		for {
			p, raw := e.pcloudProgress(auth)
			if p.Result == 0 && p.Uploaded == int64(n) {
				return p
			}
			if time.Now().After(deadline) {
				t.Fatalf("uploaded never reached %d: %s", n, raw)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	// Half of file one.
	at := files[0].start + sizes[0]/2
	pw.Write(all[:at])
	p := waitUploaded(at)
	if p.CurrentFile == nil || *p.CurrentFile != "one.bin" || *p.CurrentFileUploaded != int64(sizes[0]/2) ||
		p.FileNumber != 1 || len(p.Files) != 0 || p.Finished || p.Total != int64(len(all)) {
		t.Fatalf("in file one: %+v", p)
	}
	// Through file one, into file two.
	next := files[1].start + 1000
	pw.Write(all[at:next])
	at = next
	p = waitUploaded(at)
	if p.CurrentFile == nil || *p.CurrentFile != "two.bin" || *p.CurrentFileUploaded != 1000 || p.FileNumber != 2 || len(p.Files) != 1 {
		t.Fatalf("in file two: %+v", p)
	}
	var f1 struct {
		Name        string `json:"name"`
		Size        int64  `json:"size"`
		ContentType string `json:"contenttype"`
	}
	json.Unmarshal(p.Files[0], &f1)
	if f1.Name != "one.bin" || f1.Size != int64(sizes[0]) || f1.ContentType != "application/octet-stream" {
		t.Fatalf("finished file one: %s", p.Files[0])
	}
	// Into file three.
	next = files[2].start + 10
	pw.Write(all[at:next])
	at = next
	p = waitUploaded(at)
	if *p.CurrentFile != "three.bin" || p.FileNumber != 3 || len(p.Files) != 2 {
		t.Fatalf("in file three: %+v", p)
	}
	pw.Write(all[at:])
	pw.Close()
	resp := <-done
	if resp == nil || resp.StatusCode != 200 {
		t.Fatalf("upload: %v", resp)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	p, raw := e.pcloudProgress(auth)
	if !p.Finished || p.CurrentFile != nil || p.CurrentFileUploaded != nil || p.Uploaded != int64(len(all)) || len(p.Files) != 3 {
		t.Fatalf("finished: %s", raw)
	}
	// The files are the origin's own metadata, as its answer gave them.
	var originAnswer struct {
		Metadata []json.RawMessage `json:"metadata"`
	}
	json.Unmarshal(answer, &originAnswer)
	for i := range p.Files {
		if !bytes.Equal(p.Files[i], originAnswer.Metadata[i]) {
			t.Fatalf("file %d: %s, origin said %s", i, p.Files[i], originAnswer.Metadata[i])
		}
	}
	if !strings.Contains(raw, `"fileid":1`) && !strings.Contains(raw, `"fileid":2`) {
		t.Fatalf("finished reply lacks the origin's metadata: %s", raw)
	}

	// The same record over the WebSocket: the final reply, then a normal close.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, testkit.WebSocketURL(e.proxy)+"/uploadprogress/ws?"+auth, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, msg, err := c.Read(ctx)
	if err != nil || string(msg) != strings.TrimSpace(raw) {
		t.Fatalf("websocket message %s (%v), want %s", msg, err, raw)
	}
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("websocket did not close normally: %v", err)
	}
}

// pCloud's errors: result codes with HTTP 200, and POSTed parameters.
func TestPcloudErrorsAndPost(t *testing.T) {
	e := newEnv(t, "")
	e.load("protocol pcloud", pcloudOrigin(t))
	cases := map[string]string{
		"progresshash=unknown&auth=tok": `{"result":1900,"error":"Upload not found."}`,
		"progresshash=unknown":          `{"result":1000,"error":"missing auth or access_token"}`,
		"auth=tok":                      `{"result":1900,"error":"Upload not found: no progresshash provided."}`,
	}
	for q, want := range cases {
		if _, raw := e.pcloudProgress(q); strings.TrimSpace(raw) != want {
			t.Errorf("%q: %s, want %s", q, raw, want)
		}
	}
	// An upload with a bearer token is the access_token's; POSTed form
	// parameters ask for it.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", "x.txt")
	fw.Write([]byte("hello"))
	mw.Close()
	req, _ := http.NewRequest("POST", e.proxy+"/uploadfile?progresshash=bearer-1", bytes.NewReader(body.Bytes()))
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer abc")
	resp, err := e.client.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("upload: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = e.client.Post(e.proxy+"/uploadprogress", "application/x-www-form-urlencoded",
		strings.NewReader("progresshash=bearer-1&access_token=abc"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var p pcloudReply
	json.Unmarshal(b, &p)
	if p.Result != 0 || !p.Finished || len(p.Files) != 1 || p.Uploaded != int64(body.Len()) {
		t.Fatalf("POSTed uploadprogress: %s", b)
	}
	// Another credential sees nothing.
	if _, raw := e.pcloudProgress("progresshash=bearer-1&access_token=other"); !strings.Contains(raw, `"result":1900`) {
		t.Fatalf("another token sees %s", raw)
	}
}
