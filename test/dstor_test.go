package test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/caddy-upload-progress/caddy-upload-progress/cmd/upload-origin/origin"
)

// dsFolder is a folder of 500 small files and 5 large ones (2 to 4 MiB) in
// 10 chunks of 50 small files each, the first five chunks with a large
// file after their first 10 small ones (their hold in its middle).
func dsFolder() []dsChunk {
	chunks := make([]dsChunk, 10)
	for c := range chunks {
		var files []dsFile
		for i := 50 * c; i < 50*c+50; i++ {
			files = append(files, dsFile{fmt.Sprintf("2024/%02d/img_%04d.jpg", i%12+1, i), dsContent(i, 100+i*37%4000)})
		}
		split := -1
		if c < 5 {
			big := dsFile{fmt.Sprintf("raw/video_%d.mov", c), dsContent(1000+c, 2<<20+c*512<<10)}
			files = slices.Insert(files, 10, big)
			split = 10
		}
		chunks[c] = dsChunkOf(files, split)
	}
	return chunks
}

// dsPolled is what the REST poller saw.
type dsPolled struct {
	replies []dstorReply
	err     error
}

// poll asks get-status of token through the proxy, again and again, until
// a reply shows every chunk in (the first that passes to the origin), or
// stop closes, or 60 s pass; it reports every reply.
func (e *dsEnv) poll(token string, chunks int, stop <-chan struct{}) <-chan dsPolled {
	out := make(chan dsPolled, 1)
	go func() {
		var p dsPolled
		defer func() { out <- p }()
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			a, err := e.send(e.proxy, http.MethodGet, "/v1/upload/get-status/", nil, 0, withToken(token, nil))
			if err != nil || a.code != 200 {
				p.err = fmt.Errorf("get-status: %d %s %v", a.code, a.body, err)
				return
			}
			var r dstorReply
			if err := r.UnmarshalJSON(a.body); err != nil {
				p.err = fmt.Errorf("get-status: %v: %s", err, a.body)
				return
			}
			p.replies = append(p.replies, r)
			if r.ChunksUploaded >= chunks {
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
		p.err = fmt.Errorf("every chunk never showed in within 60 s")
	}()
	return out
}

// expectDstorLive fails the test unless the replies, in the order they came,
// are live progress: counts that never decrease, no more than max chunks
// in flight, a current file only among paths.
func expectDstorLive(t testing.TB, what string, replies []dstorReply, max int, paths map[string]bool) {
	t.Helper()
	var last dsCounts
	for i, r := range replies {
		if !r.counts().covers(last) {
			t.Fatalf("%s: reply %d has counts %+v after %+v: %s", what, i, r.counts(), last, r.raw)
		}
		last = r.counts()
		if r.ChunksInFlight > max || r.ChunksInFlight < 0 {
			t.Fatalf("%s: reply %d has %d chunks in flight: %s", what, i, r.ChunksInFlight, r.raw)
		}
		if r.CurrentFile != "" && !paths[r.CurrentFile] {
			t.Fatalf("%s: reply %d names %q, no file of the folder: %s", what, i, r.CurrentFile, r.raw)
		}
	}
}

// A folder of 505 files in 10 chunks, 3 at a time, through the real Caddy
// in front of the reference origin, watched by REST polling and by a
// WebSocket from the token on: the proxy shows the chunks as they stream
// (three held in the middle of their large files show exactly what came
// so far), counts that never decrease, and, once every chunk is in (the
// poller takes one look, then stops), the origin's stages as the proxy
// learns them by asking of its own, to DONE with the final counts; the
// origin holds every file.
func TestDstorFolderWatchedToDone(t *testing.T) {
	// Each stage lasts long enough for the proxy, asking once a second,
	// to see it.
	e := newDstorEnv(t, origin.Config{DstorStageDelay: 2 * time.Second})
	chunks := dsFolder()
	paths := map[string]bool{}
	for _, c := range chunks {
		for _, f := range c.files {
			paths[f.path] = true
		}
	}
	if len(paths) != 505 {
		t.Fatalf("the folder has %d files", len(paths))
	}
	tok := e.token(len(chunks), "/photos", nil)
	const zero = `{"status":"UPLOADING","chunksNumber":10,"chunksUploaded":0,"chunksInFlight":0,"bytesUploaded":0,"filesUploaded":0,"folderPath":"/photos"}`
	if a := e.status(tok, nil); a.code != 200 || a.reply(t).raw != zero {
		t.Fatalf("right after the token: %d %s, want 200 %s", a.code, a.body, zero)
	}
	w := e.watch(tok)
	if m := w.next(t); m.raw != zero {
		t.Fatalf("the watcher's first message is %s, want %s", m.raw, zero)
	}
	stop := make(chan struct{})
	defer close(stop)
	polled := e.poll(tok, len(chunks), stop)

	// The first three chunks are held in the middle of their large file;
	// the others follow three at a time as slots free up.
	g := newDsGate(t)
	slots := make(chan struct{}, 3)
	answers := make([]apiAnswer, len(chunks))
	errs := make([]error, len(chunks))
	done := make(chan struct{}, len(chunks))
	send := func(i int, held bool) {
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; done <- struct{}{} }()
			var r io.Reader // the chunk's bytes, unheld
			if held {
				r = g.reader(chunks[i].body, chunks[i].hold)
			}
			answers[i], errs[i] = e.put(tok, chunks[i], r, nil)
		}()
	}
	var heldBytes int64
	var heldFiles int
	heldAt := map[string]bool{}
	for i := range 3 {
		send(i, true)
		heldBytes += chunks[i].hold
		heldFiles += chunks[i].before
		heldAt[chunks[i].holding] = true
	}
	isHeld := func(r dstorReply) bool { return r.ChunksInFlight == 3 && r.BytesUploaded == heldBytes }
	mid := e.waitStatus(tok, "three chunks held", isHeld)
	if mid.Status != "UPLOADING" || mid.ChunksUploaded != 0 || mid.FilesUploaded != heldFiles || !heldAt[mid.CurrentFile] {
		t.Fatalf("three chunks held at %d bytes after %d whole files, in %v: %s", heldBytes, heldFiles, heldAt, mid.raw)
	}
	if m := w.until(t, "three chunks held", isHeld); m.FilesUploaded != heldFiles || !heldAt[m.CurrentFile] {
		t.Fatalf("the watcher shows the held chunks as %s", m.raw)
	}
	g.open()
	for i := 3; i < len(chunks); i++ {
		send(i, false)
	}
	for range chunks {
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Fatal("the chunks did not all end within 60 s")
		}
	}
	for i, a := range answers {
		if errs[i] != nil || a.code != 200 {
			t.Fatalf("chunk %d: %d %s %v", i, a.code, a.body, errs[i])
		}
	}
	final := dsCounts{uploaded: 10, files: 505, bytes: chunkBytes(chunks...)}

	// REST: live until every chunk is in, then the origin's word.
	var p dsPolled
	select {
	case p = <-polled:
	case <-time.After(60 * time.Second):
		t.Fatal("the poller did not end")
	}
	if p.err != nil {
		t.Fatalf("poller: %v", p.err)
	}
	expectDstorLive(t, "REST", p.replies, 3, paths)
	for _, r := range p.replies[:len(p.replies)-1] {
		if r.Status != "UPLOADING" {
			t.Fatalf("REST before every chunk was in: %s", r.raw)
		}
	}
	if r := p.replies[len(p.replies)-1]; r.Status != "ADDING_TO_IPFS" || r.counts() != final {
		t.Fatalf("REST once every chunk is in: %s, want ADDING_TO_IPFS with %+v", r.raw, final)
	}

	// The watcher, from here on asked by nobody, follows the origin as the
	// proxy asks it.
	last, code := w.end(t, 30*time.Second)
	if code != websocket.StatusNormalClosure {
		t.Fatalf("the watcher closed with %v, want 1000", code)
	}
	msgs := w.taken
	expectDstorLive(t, "watcher", msgs, 3, paths)
	var statuses []string
	for i, m := range msgs {
		if len(statuses) == 0 || statuses[len(statuses)-1] != m.Status {
			statuses = append(statuses, m.Status)
		}
		if i > 0 && m.raw == msgs[i-1].raw {
			t.Errorf("the watcher got %s twice in a row", m.raw)
		}
		if m.Status == "ADDING_TO_IPFS" || m.Status == "SAVING_DATA" {
			expectOriginMembers(t, "watcher at "+m.Status, m, []byte(`{"status":"`+m.Status+`"}`), final, 10, "/photos")
		}
	}
	if want := []string{"UPLOADING", "ADDING_TO_IPFS", "SAVING_DATA", "DONE"}; !slices.Equal(statuses, want) {
		t.Fatalf("the watcher went through %v, want %v", statuses, want)
	}
	if asks := e.log.proxyAsked("/v1/upload/get-status/", time.Time{}, time.Now()); len(asks) < 2 {
		t.Fatalf("the proxy asked the origin %d times of its own, want SAVING_DATA and DONE learned so", len(asks))
	} else {
		for i := 1; i < len(asks); i++ {
			if gap := asks[i].Sub(asks[i-1]); gap < 900*time.Millisecond {
				t.Fatalf("the proxy asked the origin twice within %v", gap)
			}
		}
	}

	a := e.status(tok, nil)
	r := a.reply(t)
	if a.code != 200 || r.Status != "DONE" || r.Data == nil || len(r.Data.Files) != 505 {
		t.Fatalf("get-status at the end: %d %.300s", a.code, a.body)
	}
	originDone := e.log.answerTo(t, a.id).body
	expectOriginMembers(t, "REST at DONE", r, originDone, final, 10, "/photos")
	// 505 files make a DONE too long for the proxy to keep whole: the
	// watcher gets its status with the counts; get-status has its data.
	expectFromOrigin(t, "the watcher's last", last, originDone, false, final, 10, "/photos")
	for _, f := range r.Data.Files {
		if !paths[f.Path] {
			t.Fatalf("DONE lists %s, no file of the folder", f.Path)
		}
	}
	e.expectStoredFolder("/photos", chunks...)
}

// dsSmall is a chunk of n small files named after base, with a file of
// size bytes in the middle (its hold) if size is not 0.
func dsSmall(base string, n, size int) dsChunk {
	var files []dsFile
	for i := range n {
		files = append(files, dsFile{fmt.Sprintf("%s/f_%d.txt", base, i), dsContent(int(base[0])*100+i, 500+i*61)})
	}
	if size == 0 {
		return dsChunkOf(files, -1)
	}
	files = slices.Insert(files, n/2, dsFile{base + "/big.bin", dsContent(int(base[0])*100+99, size)})
	return dsChunkOf(files, n/2)
}

// A chunk the origin rejects shows as ERROR at UPLOADING with the counts
// as they were before it (its bytes and files, shown while it streamed,
// stop counting); the watcher stays through it; the chunk sent again is
// accepted, the upload goes back to UPLOADING and on to DONE.
func TestDstorRejectedChunkResent(t *testing.T) {
	e := newDstorEnv(t, origin.Config{DstorStageDelay: 50 * time.Millisecond})
	c1, c2, c3 := dsSmall("a", 4, 0), dsSmall("b", 4, 1<<20), dsSmall("c", 3, 0)
	tok := e.token(3, "/docs", nil)
	w := e.watch(tok)
	e.putOK(tok, c1)
	one := dsCounts{uploaded: 1, files: chunkFiles(c1), bytes: chunkBytes(c1)}
	e.waitStatus(tok, "chunk 1 in", func(r dstorReply) bool { return r.counts() == one && r.ChunksInFlight == 0 })

	g := newDsGate(t)
	rejected := make(chan apiAnswer, 1)
	go func() {
		a, err := e.put(tok, c2, g.reader(c2.body, c2.hold), http.Header{"X-Origin-Fail": {"500"}})
		if err != nil {
			a.code = -1
		}
		rejected <- a
	}()
	mid := e.waitStatus(tok, "chunk 2 halfway", func(r dstorReply) bool { return r.BytesUploaded == one.bytes+c2.hold })
	if mid.Status != "UPLOADING" || mid.ChunksInFlight != 1 || mid.FilesUploaded != one.files+c2.before || mid.CurrentFile != c2.holding {
		t.Fatalf("chunk 2 halfway: %s", mid.raw)
	}
	g.open()
	select {
	case a := <-rejected:
		if a.code != 500 {
			t.Fatalf("chunk 2 with the origin failing it: %d %s", a.code, a.body)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("chunk 2 not answered within 30 s")
	}
	isRejected := func(r dstorReply) bool { return r.Status == "ERROR" }
	r := e.waitStatus(tok, "the rejection", isRejected)
	expectRejection := func(what string, r dstorReply) {
		t.Helper()
		if r.ErrorExplanation != "forced failure" || r.ErrorAtStage != "UPLOADING" || r.counts() != one || r.ChunksInFlight != 0 || r.ChunksNumber != 3 || r.FolderPath != "/docs" {
			t.Fatalf("%s: %s, want ERROR with the origin's message at UPLOADING and the counts %+v", what, r.raw, one)
		}
	}
	expectRejection("REST", r)
	expectRejection("watcher", w.until(t, "the rejection", isRejected))

	e.putOK(tok, c2)
	two := dsCounts{uploaded: 2, files: chunkFiles(c1, c2), bytes: chunkBytes(c1, c2)}
	isBack := func(r dstorReply) bool { return r.Status == "UPLOADING" && r.ChunksUploaded == 2 }
	if r := e.waitStatus(tok, "chunk 2 resent", isBack); r.counts() != two || r.ErrorExplanation != "" || r.ErrorAtStage != "" {
		t.Fatalf("chunk 2 resent: %s, want UPLOADING with %+v", r.raw, two)
	}
	if m := w.until(t, "chunk 2 resent", isBack); m.counts() != two {
		t.Fatalf("the watcher after the resend: %s", m.raw)
	}
	e.putOK(tok, c3)
	last, code := w.end(t, 30*time.Second)
	final := dsCounts{uploaded: 3, files: chunkFiles(c1, c2, c3), bytes: chunkBytes(c1, c2, c3)}
	if last.Status != "DONE" || last.counts() != final || code != websocket.StatusNormalClosure {
		t.Fatalf("the watcher's last: %s, close %v; want DONE with %+v, 1000", last.raw, code, final)
	}
	// The counts never decrease, but for the rejection.
	paths := map[string]bool{}
	for _, c := range []dsChunk{c1, c2, c3} {
		for _, f := range c.files {
			paths[f.path] = true
		}
	}
	at := slices.IndexFunc(w.taken, isRejected)
	expectDstorLive(t, "watcher before the rejection", w.taken[:at], 1, paths)
	expectDstorLive(t, "watcher from the rejection on", w.taken[at:], 1, paths)
	e.expectStoredFolder("/docs", c1, c2, c3)
}

// An upload the origin fails at SAVING_DATA: its ERROR is relayed as the
// origin sent it, with the proxy's counts added, to REST and to the
// watcher, which is then closed normally.
func TestDstorOriginErrorRelayed(t *testing.T) {
	e := newDstorEnv(t, origin.Config{DstorStageDelay: 50 * time.Millisecond})
	tok := e.token(1, "/broken", http.Header{"X-Origin-Fail-Stage": {"SAVING_DATA"}})
	w := e.watch(tok)
	c := dsSmall("x", 5, 0)
	e.putOK(tok, c)
	last, code := w.end(t, 30*time.Second)
	if code != websocket.StatusNormalClosure || last.Status != "ERROR" || last.ErrorAtStage != "SAVING_DATA" {
		t.Fatalf("the watcher's last: %s, close %v; want the origin's ERROR at SAVING_DATA, 1000", last.raw, code)
	}
	a := e.status(tok, nil)
	if a.code != 200 {
		t.Fatalf("get-status: %d %s", a.code, a.body)
	}
	o := e.log.answerTo(t, a.id)
	if o.status != 200 {
		t.Fatalf("the origin answered get-status %d %s", o.status, o.body)
	}
	want := dsCounts{uploaded: 1, files: chunkFiles(c), bytes: chunkBytes(c)}
	expectOriginMembers(t, "REST", a.reply(t), o.body, want, 1, "/broken")
	expectOriginMembers(t, "the watcher's last", last, o.body, want, 1, "/broken")
}

// Another credential knows nothing of the upload: its get-status and its
// watcher are answered 404 upload not found, and its chunks under the
// token pass to the origin and change nothing of the upload, not even a
// chunk the origin refuses; the upload goes on to DONE with its own
// chunks only.
func TestDstorAnotherCredential(t *testing.T) {
	e := newDstorEnv(t, origin.Config{DstorStageDelay: 50 * time.Millisecond})
	tok := e.token(2, "/mine", nil)
	w := e.watch(tok)
	c1, c2 := dsSmall("m", 3, 0), dsSmall("n", 2, 0)
	e.putOK(tok, c1)
	one := dsCounts{uploaded: 1, files: chunkFiles(c1), bytes: chunkBytes(c1)}
	before := e.waitStatus(tok, "chunk 1 in", func(r dstorReply) bool { return r.counts() == one && r.ChunksInFlight == 0 })

	other := http.Header{"Authorization": {"Bearer other-key"}}
	const notFound = `{"status":"ERROR","errorExplanation":"upload not found","errorAtStage":"UPLOADING"}`
	if a := e.status(tok, other); a.code != 404 || a.reply(t).raw != notFound {
		t.Fatalf("get-status with another credential: %d %s, want 404 %s", a.code, a.body, notFound)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, _ := e.dialWatch(ctx, tok, other)
	if a := dsRefused(t, "a watcher with another credential", c, resp); a.code != 404 || a.reply(t).raw != notFound {
		t.Fatalf("a watcher with another credential: %d %s, want 404 %s", a.code, a.body, notFound)
	}

	stranger := dsSmall("s", 2, 0)
	a, err := e.put(tok, stranger, nil, other)
	if err != nil || a.code != 404 || string(a.body) != `{"message":"upload not found"}`+"\n" {
		t.Fatalf("a chunk with another credential: %d %q %v, want the origin's 404", a.code, a.body, err)
	}
	if o := e.log.answerTo(t, a.id); o.status != 404 {
		t.Fatalf("the origin answered the stranger's chunk %d", o.status)
	}
	// The origin's failure hook answers before it looks for the upload: a
	// refused chunk of a stranger must not put the upload in ERROR.
	fail := http.Header{"Authorization": {"Bearer other-key"}, "X-Origin-Fail": {"500"}}
	if a, err := e.put(tok, stranger, nil, fail); err != nil || a.code != 500 {
		t.Fatalf("a chunk with another credential, failed by the origin: %d %s %v", a.code, a.body, err)
	}
	if after := e.statusOK(tok); after.raw != before.raw {
		t.Fatalf("after the stranger's chunks: %s, before them %s", after.raw, before.raw)
	}

	e.putOK(tok, c2)
	last, code := w.end(t, 30*time.Second)
	final := dsCounts{uploaded: 2, files: chunkFiles(c1, c2), bytes: chunkBytes(c1, c2)}
	if last.Status != "DONE" || last.counts() != final || code != websocket.StatusNormalClosure {
		t.Fatalf("the watcher's last: %s, close %v; want DONE with %+v, 1000", last.raw, code, final)
	}
	for _, m := range w.taken {
		if m.Status == "ERROR" || m.ChunksInFlight > 1 {
			t.Fatalf("the watcher saw the stranger's chunks: %s", m.raw)
		}
	}
	e.expectStoredFolder("/mine", c1, c2)
}

// Without an Authorization header the status route answers 401, without a
// token 400, both in the status shape, over REST and to a watcher's
// handshake.
func TestDstorStatusRefusals(t *testing.T) {
	e := newDstorEnv(t, origin.Config{})
	tok := e.token(1, "/x", nil)
	noAuth := http.Header{"Authorization": {""}}
	expectDstorRefusal(t, "get-status without Authorization", e.status(tok, noAuth), 401)
	expectDstorRefusal(t, "get-status without a token", e.status("", nil), 400)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, _ := e.dialWatch(ctx, tok, nil)
	expectDstorRefusal(t, "a watcher without Authorization", dsRefused(t, "a watcher without Authorization", c, resp), 401)
	c, resp, _ = e.dialWS(ctx, "/v1/upload/get-status/ws", http.Header{"Authorization": {"Bearer " + apiKey}})
	expectDstorRefusal(t, "a watcher without a token", dsRefused(t, "a watcher without a token", c, resp), 400)

	if r := e.statusOK(tok); r.Status != "UPLOADING" || r.ChunksUploaded != 0 {
		t.Fatalf("after the refusals: %s", r.raw)
	}
}
