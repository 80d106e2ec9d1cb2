package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/caddy-upload-progress/caddy-upload-progress/cmd/upload-origin/origin"
)

// dsEnv is Caddy with `protocol dstor` (its `origin` option set) in front
// of a reference origin the test configured, whose answers it notes.
type dsEnv struct{ *apiEnv }

// newDstorEnv starts an origin with cfg (Dir and APIKeys are the
// harness's), noting every answer it sends, and Caddy in front of it with
// `protocol dstor`, which asks that origin about watched uploads once
// every chunk is in.
func newDstorEnv(t *testing.T, cfg origin.Config) *dsEnv {
	t.Helper()
	return &dsEnv{newAPIEnv(t, "dstor", cfg)}
}

// reply decodes the answer as a status object, failing the test if it is
// none.
func (a apiAnswer) reply(t testing.TB) dstorReply {
	t.Helper()
	var r dstorReply
	if err := json.Unmarshal(a.body, &r); err != nil {
		t.Fatalf("answer %d is no status object: %v: %s", a.code, err, a.body)
	}
	return r
}

// withToken is the headers of hdr with token's header (none for ""),
// unless hdr names it.
func withToken(token string, hdr http.Header) http.Header {
	h := http.Header{}
	if token != "" {
		h.Set("X-Dstor-Upload-Token", token)
	}
	for k, v := range hdr {
		h[k] = v
	}
	return h
}

// token asks the proxy for the token of an upload of chunks chunks into
// folder, with the headers of hdr, failing the test unless it gets one.
func (e *dsEnv) token(chunks int, folder string, hdr http.Header) string {
	e.t.Helper()
	body := fmt.Sprintf(`{"chunks_number":%d,"folder_path":%q}`, chunks, folder)
	h := http.Header{"Content-Type": {"application/json"}}
	for k, v := range hdr {
		h[k] = v
	}
	a, err := e.send(e.proxy, http.MethodPost, "/v1/upload/get-token", bytes.NewReader([]byte(body)), int64(len(body)), h)
	if err != nil {
		e.t.Fatalf("get-token: %v", err)
	}
	var v struct {
		Message, Token string
	}
	if json.Unmarshal(a.body, &v) != nil || a.code != 200 || v.Message != "ok" || v.Token == "" {
		e.t.Fatalf("get-token: %d %s", a.code, a.body)
	}
	return v.Token
}

// put sends chunk c under token through the proxy, its body read from r
// (c.body if nil), with the headers of hdr. It does not fail the test.
func (e *dsEnv) put(token string, c dsChunk, r io.Reader, hdr http.Header) (apiAnswer, error) {
	if r == nil {
		r = bytes.NewReader(c.body)
	}
	h := http.Header{"Content-Type": {c.contentType}}
	for k, v := range hdr {
		h[k] = v
	}
	return e.send(e.proxy, http.MethodPost, "/v1/upload/", r, int64(len(c.body)), withToken(token, h))
}

// putOK sends chunk c under token, failing the test unless the origin
// accepts it.
func (e *dsEnv) putOK(token string, c dsChunk) {
	e.t.Helper()
	a, err := e.put(token, c, nil, nil)
	if err != nil || a.code != 200 {
		e.t.Fatalf("chunk: %d %s %v", a.code, a.body, err)
	}
}

// status asks get-status of token through the proxy with the headers of
// hdr, failing the test on a transport error.
func (e *dsEnv) status(token string, hdr http.Header) apiAnswer {
	e.t.Helper()
	a, err := e.send(e.proxy, http.MethodGet, "/v1/upload/get-status/", nil, 0, withToken(token, hdr))
	if err != nil {
		e.t.Fatalf("get-status: %v", err)
	}
	return a
}

// statusOK is status with the test's credential, failing the test unless
// it is 200 with a status object.
func (e *dsEnv) statusOK(token string) dstorReply {
	e.t.Helper()
	a := e.status(token, nil)
	if a.code != 200 {
		e.t.Fatalf("get-status: %d %s", a.code, a.body)
	}
	return a.reply(e.t)
}

// waitStatus asks get-status of token through the proxy until ok accepts
// the reply, failing the test after 20 s.
func (e *dsEnv) waitStatus(token, what string, ok func(dstorReply) bool) dstorReply {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := e.statusOK(token)
		if ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("get-status never showed %s; last: %s", what, r.raw)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// dstorReply is a status object, the proxy's or the origin's with the
// proxy's counts: its fields, every member as sent and the whole object.
type dstorReply struct {
	Status           string    `json:"status"`
	ErrorExplanation string    `json:"errorExplanation"`
	ErrorAtStage     string    `json:"errorAtStage"`
	ChunksNumber     int       `json:"chunksNumber"`
	ChunksUploaded   int       `json:"chunksUploaded"`
	ChunksInFlight   int       `json:"chunksInFlight"`
	BytesUploaded    int64     `json:"bytesUploaded"`
	FilesUploaded    int       `json:"filesUploaded"`
	CurrentFile      string    `json:"currentFile"`
	FolderPath       string    `json:"folderPath"`
	Data             *dsStored `json:"data"`
	members          dsMembers // every member as sent
	raw              string    // the object as sent
}

// dsStored is the data of a DONE upload, as the origin sends it.
type dsStored struct {
	FolderPath string `json:"folderPath"`
	Files      []struct {
		Path string `json:"path"`
		Size int64  `json:"size"`
		CID  string `json:"cid"`
	} `json:"files"`
}

// dsMembers is a JSON object's members as sent.
type dsMembers map[string]json.RawMessage

// UnmarshalJSON decodes a status object, keeping its members and bytes.
func (r *dstorReply) UnmarshalJSON(b []byte) error {
	type plain dstorReply
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	var m dsMembers
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	if m == nil {
		return fmt.Errorf("%s is no object", b)
	}
	*r = dstorReply(p)
	r.members, r.raw = m, string(bytes.TrimSpace(b))
	return nil
}

// dsCounts are the counts of a status object that never decrease while
// no chunk is rejected.
type dsCounts struct {
	uploaded, files int
	bytes           int64
}

func (r dstorReply) counts() dsCounts {
	return dsCounts{uploaded: r.ChunksUploaded, files: r.FilesUploaded, bytes: r.BytesUploaded}
}

// covers reports whether c is at least d in every count.
func (c dsCounts) covers(d dsCounts) bool {
	return c.uploaded >= d.uploaded && c.files >= d.files && c.bytes >= d.bytes
}

// dsCountMembers are the members the proxy adds to the origin's object.
var dsCountMembers = []string{"chunksNumber", "chunksUploaded", "bytesUploaded", "filesUploaded", "folderPath"}

// expectOriginMembers fails the test unless r holds every member of the
// origin's object exactly as the origin sent it, and besides them only
// the count members the proxy adds, with the values of want.
func expectOriginMembers(t testing.TB, what string, r dstorReply, originObj []byte, want dsCounts, chunks int, folder string) {
	t.Helper()
	expectFromOrigin(t, what, r, originObj, true, want, chunks, folder)
}

// expectFromOrigin is expectOriginMembers that, unless whole, lets r go
// without some of the origin's members (its status always there): a
// watcher gets an object too long for the proxy to keep as its status
// members.
func expectFromOrigin(t testing.TB, what string, r dstorReply, originObj []byte, whole bool, want dsCounts, chunks int, folder string) {
	t.Helper()
	var o dsMembers
	if err := json.Unmarshal(originObj, &o); err != nil {
		t.Fatalf("%s: the origin's answer %q is no object", what, originObj)
	}
	for name, v := range o {
		got, ok := r.members[name]
		if !ok && !whole && name != "status" {
			continue
		}
		if !ok || !bytes.Equal(got, v) {
			t.Fatalf("%s: member %s is %.200s, the origin sent %.200s\nrelayed: %.300s\norigin:  %.300s", what, name, got, v, r.raw, originObj)
		}
	}
	for name := range r.members {
		if _, ok := o[name]; !ok && !slices.Contains(dsCountMembers, name) {
			t.Fatalf("%s: member %s is neither the origin's nor a count: %.300s", what, name, r.raw)
		}
	}
	for _, name := range dsCountMembers {
		if _, ok := r.members[name]; !ok {
			t.Fatalf("%s: no %s added: %s", what, name, r.raw)
		}
	}
	if r.counts() != want || r.ChunksNumber != chunks || r.FolderPath != folder {
		t.Fatalf("%s: counts %+v of %d chunks into %q, want %+v of %d into %q: %s", what, r.counts(), r.ChunksNumber, r.FolderPath, want, chunks, folder, r.raw)
	}
}

// dsWatcher is a WebSocket watcher of an upload.
type dsWatcher struct{ *socket[dstorReply] }

// dialWatch opens a watcher of token with the headers hdr (the token's
// header is added unless hdr names it).
func (e *dsEnv) dialWatch(ctx context.Context, token string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	h := http.Header{"X-Dstor-Upload-Token": {token}}
	for k, v := range hdr {
		h[k] = v
	}
	return e.dialWS(ctx, "/v1/upload/get-status/ws", h)
}

// watch opens a watcher of token with the test's credential, failing the
// test if it is refused. It is closed, and its reader ended, when the
// test ends.
func (e *dsEnv) watch(token string) *dsWatcher {
	e.t.Helper()
	return &dsWatcher{openSocket[dstorReply](e.t, token, 1<<14, func(ctx context.Context) (*websocket.Conn, *http.Response, error) {
		return e.dialWatch(ctx, token, http.Header{"Authorization": {"Bearer " + apiKey}})
	})}
}

// dsFile is a file of the folder: its path in it and its bytes.
type dsFile struct {
	path string
	data []byte
}

// dsContent is n bytes of file i, unlike any other file's, so that a file
// stored in another's place changes its hash.
func dsContent(i, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(i), byte(i >> 8), 'd', 's'}).Read(b)
	return b
}

// dsChunk is a chunk's multipart body, its type, and how many of its
// files come whole before hold, an offset in the middle of one of them
// (0 if none).
type dsChunk struct {
	files       []dsFile
	body        []byte
	contentType string
	hold        int64
	before      int
	holding     string // the file hold is in
}

// dsChunkOf builds a chunk of files; hold is set in the middle of the file
// at index split (-1: none).
func dsChunkOf(files []dsFile, split int) dsChunk {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	c := dsChunk{files: files}
	for i, f := range files {
		fw, _ := mw.CreateFormFile("file", f.path)
		if i == split {
			half := len(f.data) / 2
			fw.Write(f.data[:half])
			c.hold, c.before, c.holding = int64(b.Len()), i, f.path
			fw.Write(f.data[half:])
			continue
		}
		fw.Write(f.data)
	}
	mw.Close()
	c.body, c.contentType = b.Bytes(), mw.FormDataContentType()
	return c
}

// chunkBytes is the bytes of the chunks' bodies.
func chunkBytes(chunks ...dsChunk) int64 {
	var n int64
	for _, c := range chunks {
		n += int64(len(c.body))
	}
	return n
}

// chunkFiles is the files of the chunks.
func chunkFiles(chunks ...dsChunk) int {
	n := 0
	for _, c := range chunks {
		n += len(c.files)
	}
	return n
}

// dsGate holds bodies at a point until it opens; it opens, at the latest,
// when the test ends, so that no request is left waiting.
type dsGate struct {
	ch   chan struct{}
	once sync.Once
}

func newDsGate(t testing.TB) *dsGate {
	g := &dsGate{ch: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

func (g *dsGate) open() { g.once.Do(func() { close(g.ch) }) }

// reader reads b, stopping after its first at bytes until g opens.
func (g *dsGate) reader(b []byte, at int64) io.Reader {
	return &dsGatedReader{r: bytes.NewReader(b), left: at, g: g}
}

type dsGatedReader struct {
	r    io.Reader
	left int64 // bytes before the gate, -1 once past it
	g    *dsGate
}

func (r *dsGatedReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		<-r.g.ch
		r.left = -1
	}
	if r.left > 0 && int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.r.Read(p)
	if r.left > 0 {
		r.left -= int64(n)
	}
	return n, err
}

// expectStoredFolder fails the test unless the origin holds every file
// of the chunks, byte for byte, under folder.
func (e *dsEnv) expectStoredFolder(folder string, chunks ...dsChunk) {
	e.t.Helper()
	for _, c := range chunks {
		for _, f := range c.files {
			p := path.Join(folder, f.path)
			got, err := os.ReadFile(filepath.Join(e.originDir, filepath.FromSlash(p)))
			if err != nil {
				e.t.Fatalf("the origin has no %s: %v", p, err)
			}
			if sha256Hex(got) != sha256Hex(f.data) {
				e.t.Fatalf("the origin holds %d bytes at %s that are not the source's %d", len(got), p, len(f.data))
			}
		}
	}
}

// dsRefused is the answer of a refused WebSocket handshake, failing the
// test if it was not refused.
func dsRefused(t testing.TB, what string, c *websocket.Conn, resp *http.Response) apiAnswer {
	t.Helper()
	if c != nil {
		c.CloseNow()
		t.Fatalf("%s: the watcher was taken", what)
	}
	if resp == nil {
		t.Fatalf("%s: the handshake got no answer", what)
	}
	b, _ := io.ReadAll(resp.Body)
	return apiAnswer{code: resp.StatusCode, body: b}
}

// expectDstorRefusal fails the test unless a is code with an object of
// the status shape: ERROR, a reason, at UPLOADING, nothing else.
func expectDstorRefusal(t testing.TB, what string, a apiAnswer, code int) {
	t.Helper()
	r := a.reply(t)
	if a.code != code || r.Status != "ERROR" || r.ErrorExplanation == "" || r.ErrorAtStage != "UPLOADING" || len(r.members) != 3 {
		t.Fatalf("%s: %d %s, want %d with {status: ERROR, errorExplanation, errorAtStage: UPLOADING}", what, a.code, a.body, code)
	}
}
