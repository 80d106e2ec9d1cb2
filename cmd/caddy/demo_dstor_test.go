package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/testkit"
)

// dstorStatus is the part of a get-status reply the demo tests check.
type dstorStatus struct {
	Status           string `json:"status"`
	ErrorExplanation string `json:"errorExplanation"`
	ChunksNumber     int    `json:"chunksNumber"`
	ChunksUploaded   int    `json:"chunksUploaded"`
	ChunksInFlight   int    `json:"chunksInFlight"`
	BytesUploaded    int64  `json:"bytesUploaded"`
	FilesUploaded    int    `json:"filesUploaded"`
	FolderPath       string `json:"folderPath"`
	Data             *struct {
		FolderPath string `json:"folderPath"`
		Files      []struct {
			Path string `json:"path"`
			Size int64  `json:"size"`
			CID  string `json:"cid"`
		} `json:"files"`
	} `json:"data"`
}

// dstorHeaders are the headers of a dStor request with the credential
// auth and, if set, the upload token.
func dstorHeaders(auth, token string) map[string]string {
	h := map[string]string{"Authorization": auth}
	if token != "" {
		h["X-Dstor-Upload-Token"] = token
	}
	return h
}

// dstorStatusOf asks the demo how the upload of token stands, with auth.
func (c *client) dstorStatusOf(site, auth, token string, want int) (dstorStatus, []byte) {
	c.t.Helper()
	var st dstorStatus
	raw := c.decode(http.MethodGet, site+"/v1/upload/get-status/", dstorHeaders(auth, token), nil, want, &st)
	return st, raw
}

// A dStor folder upload through the demo, as a dStor client sends it: a
// token for two chunks, the chunks, then get-status. The proxy answers
// from the token on; a watcher connected before the first chunk follows
// the upload past the last one, through the origin's stages, to DONE
// (the proxy asks the origin, at the address the demo runs it on, since
// nothing else passes), then a normal close; the origin holds the files.
func demoDstor(t *testing.T, d *runningDemo) {
	c := newClient(t)
	const auth = "Bearer demo"
	h := dstorHeaders(auth, "")
	h["Content-Type"] = "application/json"
	var tok struct {
		Message string `json:"message"`
		Token   string `json:"token"`
	}
	raw := c.decode(http.MethodPost, d.site+"/v1/upload/get-token", h, []byte(`{"chunks_number":2,"folder_path":"/go-dstor"}`), http.StatusOK, &tok)
	if tok.Message != "ok" || tok.Token == "" {
		t.Fatalf("get-token: %s", raw)
	}
	_, raw = c.dstorStatusOf(d.site, auth, tok.Token, http.StatusOK)
	if want := `{"status":"UPLOADING","chunksNumber":2,"chunksUploaded":0,"chunksInFlight":0,"bytesUploaded":0,"filesUploaded":0,"folderPath":"/go-dstor"}`; strings.TrimSpace(string(raw)) != want {
		t.Fatalf("right after the token: %s, want %s", raw, want)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, testkit.WebSocketURL(d.site)+"/v1/upload/get-status/ws", &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {auth}, "X-Dstor-Upload-Token": {tok.Token}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if _, msg, err := ws.Read(ctx); err != nil || !bytes.Contains(msg, []byte(`"status":"UPLOADING"`)) {
		t.Fatalf("websocket's first message: %s (%v), want UPLOADING", msg, err)
	}

	files := map[string][]byte{"2024/a.bin": testkit.RandomBytes(300_000, 7), "2024/b.txt": []byte("b\n"), "c.bin": testkit.RandomBytes(200_000, 8)}
	one, ct1 := multipartBody(t, files, "2024/a.bin", "2024/b.txt")
	c.do(http.MethodPost, d.site+"/v1/upload/", map[string]string{"Authorization": auth, "X-Dstor-Upload-Token": tok.Token, "Content-Type": ct1}, one, http.StatusOK)
	st, raw := c.dstorStatusOf(d.site, auth, tok.Token, http.StatusOK)
	if st.Status != "UPLOADING" || st.ChunksUploaded != 1 || st.ChunksInFlight != 0 || st.BytesUploaded != int64(len(one)) || st.FilesUploaded != 2 {
		t.Fatalf("after chunk 1: %s, want UPLOADING with 1 chunk, %d bytes and 2 files", raw, len(one))
	}
	two, ct2 := multipartBody(t, files, "c.bin")
	c.do(http.MethodPost, d.site+"/v1/upload/", map[string]string{"Authorization": auth, "X-Dstor-Upload-Token": tok.Token, "Content-Type": ct2}, two, http.StatusOK)

	// Nothing passes now but the watcher's own questions to the origin.
	var last []byte
	for range 1000 {
		_, msg, err := ws.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
				t.Fatalf("websocket ended with %v after %s, want a normal close after DONE", err, last)
			}
			break
		}
		last = msg
	}
	var end dstorStatus
	if json.Unmarshal(last, &end) != nil || end.Status != "DONE" {
		t.Fatalf("websocket's last message: %s, want DONE", last)
	}

	st, raw = c.dstorStatusOf(d.site, auth, tok.Token, http.StatusOK)
	if !bytes.Equal(bytes.TrimSpace(raw), bytes.TrimSpace(last)) {
		t.Errorf("get-status %s, the websocket ended with %s", raw, last)
	}
	if st.Status != "DONE" || st.ChunksNumber != 2 || st.ChunksUploaded != 2 || st.BytesUploaded != int64(len(one)+len(two)) ||
		st.FilesUploaded != 3 || st.FolderPath != "/go-dstor" || st.Data == nil || len(st.Data.Files) != 3 {
		t.Fatalf("at the end: %s, want DONE with 2 chunks, %d bytes, 3 files in /go-dstor", raw, len(one)+len(two))
	}
	key := map[string]string{"x-user-api-key": "demo"}
	for name, data := range files {
		if got := c.do(http.MethodGet, d.site+"/fso?path=/go-dstor/"+name, key, nil, http.StatusOK); !bytes.Equal(got, data) {
			t.Errorf("%s: the stored file differs from the upload", name)
		}
	}

	// Another credential's view of the token: an upload that does not exist.
	if st, raw := c.dstorStatusOf(d.site, "Bearer someone-else", tok.Token, http.StatusNotFound); st.Status != "ERROR" || st.ErrorExplanation != "upload not found" {
		t.Errorf("another credential: %s", raw)
	}
}
