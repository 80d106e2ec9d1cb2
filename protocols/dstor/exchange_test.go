package dstor

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/coder/websocket"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/protocoltest"
)

// The flow of a folder upload through the proxy, as the reference origin
// (cmd/upload-origin) and dStor's documentation give it: a token for N
// chunks, N multipart chunks under it, get-status polled all along.

func TestExchangeTokenOpensTheSession(t *testing.T) {
	p := newProxy(t, `{"name":"dstor"}`)
	p.token("tok-json", 3, "/photos", alice...)
	// Right after the token, never 404: every count there, at zero.
	p.want("tok-json", `{"status":"UPLOADING","chunksNumber":3,"chunksUploaded":0,"chunksInFlight":0,"bytesUploaded":0,"filesUploaded":0,"folderPath":"/photos"}`)

	// The same request as a form, urlencoded or multipart.
	p.Send("POST", "/v1/upload/get-token/", url.Values{"chunks_number": {"5"}, "folder_path": {"/my folder"}}.Encode(),
		answered(http.StatusOK, `{"message":"ok","token":"tok-form"}`),
		append([]string{"Content-Type", "application/x-www-form-urlencoded"}, alice...)...)
	p.want("tok-form", uploading(5, 0, 0, 0, 0, "", "/my folder"))
	form, formType := formBody("chunks_number", "7", "folder_path", "/2024")
	p.Send("POST", "/v1/upload/get-token", string(form), answered(http.StatusOK, `{"message":"ok","token":"tok-multipart"}`),
		append([]string{"Content-Type", formType}, alice...)...)
	p.want("tok-multipart", uploading(7, 0, 0, 0, 0, "", "/2024"))
}

func TestExchangeTokenNotGiven(t *testing.T) {
	p := newProxy(t, `{"name":"dstor"}`)
	json := []string{"Content-Type", "application/json"}
	// Refused by the origin, whatever its answer names.
	p.Send("POST", "/v1/upload/get-token", `{"folder_path":"/p"}`, answered(http.StatusBadRequest, `{"message":"chunks_number is required","token":"tok-400"}`),
		append(json, alice...)...)
	p.wantNotFound("tok-400")
	// Answered without a token.
	p.Send("POST", "/v1/upload/get-token", `{"chunks_number":2,"folder_path":"/p"}`, answered(http.StatusOK, `{"message":"ok"}`), append(json, alice...)...)
	// Without the credential the token would be bound to.
	p.Send("POST", "/v1/upload/get-token", `{"chunks_number":2,"folder_path":"/p"}`, answered(http.StatusOK, `{"message":"ok","token":"tok-anon"}`), json...)
	p.wantNotFound("tok-anon")
}

func TestExchangeChunkStreaming(t *testing.T) {
	p := newProxy(t, `{"name":"dstor"}`)
	p.token("tok", 3, "/photos", alice...)
	c := newChunk(file{"2024/a.jpg", 1000}, file{"2024/b.jpg", 5000})

	// Held in its first file: nothing finished yet.
	n := c.into(1, 10)
	release := p.streaming("tok", c, n, accepted, alice...)
	p.want("tok", uploading(3, 0, 1, n, 0, "2024/a.jpg", "/photos"))
	release()
	p.want("tok", uploading(3, 1, 0, len(c.body), 2, "", "/photos"))

	// Held in its second file: the first one is in.
	c2 := newChunk(file{"2024/06/c.jpg", 3000}, file{"2024/06/d e.jpg", 4000}, file{"z.txt", 10})
	n = c2.into(2, 100)
	release = p.streaming("tok", c2, n, accepted, alice...)
	p.want("tok", uploading(3, 1, 1, len(c.body)+n, 3, "2024/06/d e.jpg", "/photos"))
	release()
	p.want("tok", uploading(3, 2, 0, len(c.body)+len(c2.body), 5, "", "/photos"))
}

func TestExchangeParallelChunks(t *testing.T) {
	p := newProxy(t, `{"name":"dstor"}`)
	p.token("tok", 4, "/p", alice...)
	c1 := newChunk(file{"a/1.bin", 3000}, file{"a/2.bin", 3000})
	c2 := newChunk(file{"b/1.bin", 2000}, file{"b/2.bin", 2000}, file{"b/3.bin", 2000})
	n1, n2 := c1.into(2, 10), c2.into(3, 5)
	r1 := p.streaming("tok", c1, n1, accepted, alice...)
	r2 := p.streaming("tok", c2, n2, accepted, alice...)
	// Both count; the file shown is the newest chunk's.
	p.want("tok", uploading(4, 0, 2, n1+n2, 1+2, "b/3.bin", "/p"))
	r1()
	p.want("tok", uploading(4, 1, 1, len(c1.body)+n2, 2+2, "b/3.bin", "/p"))
	r2()
	p.want("tok", uploading(4, 2, 0, len(c1.body)+len(c2.body), 5, "", "/p"))
}

func TestExchangeRejectedChunk(t *testing.T) {
	p := newProxy(t, `{"name":"dstor"}`)
	p.token("tok", 3, "/photos", alice...)
	c1 := newChunk(file{"a.jpg", 1000}, file{"b.jpg", 1000})
	p.chunk("tok", c1, accepted, alice...)
	one := len(c1.body)

	// Streaming, the rejected chunk counts; once rejected, it no longer
	// does, and the origin's message says why.
	c2 := newChunk(file{"c.jpg", 2000}, file{"d.jpg", 2000})
	n := c2.into(2, 1)
	release := p.streaming("tok", c2, n, answered(http.StatusInternalServerError, `{"message":"no space left on device"}`), alice...)
	p.want("tok", uploading(3, 1, 1, one+n, 3, "d.jpg", "/photos"))
	release()
	p.want("tok", failing("no space left on device", 3, 1, 0, one, 2, "/photos"))

	// Without a message, the status says it.
	p.chunk("tok", c2, answered(http.StatusInternalServerError, ""), alice...)
	p.want("tok", failing("chunk answered 500 Internal Server Error", 3, 1, 0, one, 2, "/photos"))
	p.chunk("tok", c2, answered(http.StatusConflict, `{"message":"chunk 4 of 3: too many"}`), alice...)
	p.want("tok", failing("chunk 4 of 3: too many", 3, 1, 0, one, 2, "/photos"))
	p.unanswered("tok", c2, alice...)
	p.want("tok", failing("chunk not delivered: origin unreachable (502 Bad Gateway)", 3, 1, 0, one, 2, "/photos"))

	// Sent again and taken: UPLOADING, counted once.
	p.chunk("tok", c2, accepted, alice...)
	p.want("tok", uploading(3, 2, 0, one+len(c2.body), 4, "", "/photos"))
}

// allInSession makes tok's session of two chunks with every chunk in; it returns
// the bytes and the files.
func allInSession(p *proxy, tok string) (int, int) {
	p.T.Helper()
	p.token(tok, 2, "/photos", alice...)
	c1 := newChunk(file{"2024/a.jpg", 1000}, file{"2024/b.jpg", 2000})
	c2 := newChunk(file{"c.txt", 10})
	p.chunk(tok, c1, accepted, alice...)
	p.chunk(tok, c2, accepted, alice...)
	return len(c1.body) + len(c2.body), 3
}

func TestExchangeAllInPassesToTheOrigin(t *testing.T) {
	p := newProxy(t, `{"name":"dstor"}`)
	size, files := allInSession(p, "tok")
	final := fmt.Sprintf(`"chunksNumber":2,"chunksUploaded":2,"bytesUploaded":%d,"filesUploaded":%d,"folderPath":"/photos"`, size, files)

	code, body, o := p.statusFromOrigin("tok", answered(http.StatusOK, `{"status":"ADDING_TO_IPFS"}`))
	if want := `{"status":"ADDING_TO_IPFS",` + final + `}`; code != http.StatusOK || body != want {
		t.Errorf("get-status once every chunk is in: %d\n got  %s\n want 200 %s", code, body, want)
	}
	if o.Header.Get("Authorization") != "Bearer alice-key" || o.Header.Get(HeaderToken) != "tok" {
		t.Errorf("the origin got get-status with Authorization %q and token %q", o.Header.Get("Authorization"), o.Header.Get(HeaderToken))
	}

	// The origin's members stay as it sent them; the proxy adds the rest.
	code, body, _ = p.statusFromOrigin("tok", answered(http.StatusOK, `{"status":"SAVING_DATA","chunksNumber":7,"filesUploaded":0}`))
	if want := fmt.Sprintf(`{"status":"SAVING_DATA","chunksNumber":7,"filesUploaded":0,"chunksUploaded":2,"bytesUploaded":%d,"folderPath":"/photos"}`, size); code != http.StatusOK || body != want {
		t.Errorf("get-status with the origin's own counts: %d\n got  %s\n want 200 %s", code, body, want)
	}

	// An error of the origin's passes as it came.
	for _, a := range []answer{
		answered(http.StatusNotFound, `{"status":"ERROR","errorExplanation":"upload not found","errorAtStage":"UPLOADING"}`),
		answered(http.StatusBadGateway, "<html>bad gateway</html>", "Content-Type", "text/html"),
	} {
		if code, body, _ := p.statusFromOrigin("tok", a); code != a.Status || body != a.Body {
			t.Errorf("get-status answered %d %s by the origin: the client got %d %s", a.Status, a.Body, code, body)
		}
	}

	// DONE ends the session; its watchers get it, with the counts, and a
	// normal close.
	srv := p.Server(caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		t.Error("a watcher's request was passed to the origin")
		return nil
	}))
	w := watch(t, srv, "tok")
	w.until(`{"status":"SAVING_DATA","chunksNumber":7,"filesUploaded":0,"chunksUploaded":2,"bytesUploaded":`+fmt.Sprint(size)+`,"folderPath":"/photos"}`, 1)
	done := `{"status":"DONE","data":{"folderPath":"/photos","files":[{"path":"2024/a.jpg","size":1000,"cid":"bafkreia"},{"path":"2024/b.jpg","size":2000,"cid":"bafkreib"},{"path":"c.txt","size":10,"cid":"bafkreic"}]}}`
	wantDone := strings.TrimSuffix(done, "}") + "," + final + "}"
	code, body, _ = p.statusFromOrigin("tok", answered(http.StatusOK, done))
	if code != http.StatusOK || body != wantDone {
		t.Errorf("get-status DONE: %d\n got  %s\n want 200 %s", code, body, wantDone)
	}
	w.until(wantDone, 3)
	w.closed(websocket.StatusNormalClosure, "completed")

	// Asked again, the origin still answers; a late watcher gets the end.
	if code, body, _ := p.statusFromOrigin("tok", answered(http.StatusOK, done)); code != http.StatusOK || body != wantDone {
		t.Errorf("get-status after DONE: %d\n got  %s\n want 200 %s", code, body, wantDone)
	}
	late := watch(t, srv, "tok")
	late.until(wantDone, 1)
	late.closed(websocket.StatusNormalClosure, "completed")
}

func TestExchangeOriginError(t *testing.T) {
	p := newProxy(t, `{"name":"dstor"}`)
	size, files := allInSession(p, "tok")
	srv := p.Server(noNext(t))
	w := watch(t, srv, "tok")
	w.until(fmt.Sprintf(`{"status":"UPLOADING","chunksNumber":2,"chunksUploaded":2,"chunksInFlight":0,"bytesUploaded":%d,"filesUploaded":%d,"folderPath":"/photos"}`, size, files), 1)

	failed := `{"status":"ERROR","errorExplanation":"/photos is not a directory","errorAtStage":"SAVING_DATA"}`
	want := strings.TrimSuffix(failed, "}") + fmt.Sprintf(`,"chunksNumber":2,"chunksUploaded":2,"bytesUploaded":%d,"filesUploaded":%d,"folderPath":"/photos"}`, size, files)
	if code, body, _ := p.statusFromOrigin("tok", answered(http.StatusOK, failed)); code != http.StatusOK || body != want {
		t.Errorf("get-status ERROR: %d\n got  %s\n want 200 %s", code, body, want)
	}
	w.until(want, 3)
	w.closed(websocket.StatusNormalClosure, "failed")
}

// TestExchangeLongDone: a DONE that lists thousands of files is too long
// to keep whole; it still ends the session, and watchers get its status
// with the counts.
func TestExchangeLongDone(t *testing.T) {
	p := newProxy(t, `{"name":"dstor"}`)
	size, files := allInSession(p, "tok")
	srv := p.Server(noNext(t))
	w := watch(t, srv, "tok")

	var list []string
	for i := range 400 {
		list = append(list, fmt.Sprintf(`{"path":"2024/img_%04d.jpg","size":52341,"cid":"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"}`, i))
	}
	done := `{"status":"DONE","data":{"folderPath":"/photos","files":[` + strings.Join(list, ",") + `]}}`
	if len(done) <= maxOrigin {
		t.Fatalf("the DONE is %d bytes, not longer than the %d kept", len(done), maxOrigin)
	}
	final := fmt.Sprintf(`"chunksNumber":2,"chunksUploaded":2,"bytesUploaded":%d,"filesUploaded":%d,"folderPath":"/photos"}`, size, files)
	code, body, _ := p.statusFromOrigin("tok", answered(http.StatusOK, done))
	if want := strings.TrimSuffix(done, "}") + "," + final; code != http.StatusOK || body != want {
		t.Errorf("get-status of a %d-byte DONE: %d, %d bytes, want 200 and the DONE with the counts", len(done), code, len(body))
	}
	w.until(`{"status":"DONE",`+final, 3)
	w.closed(websocket.StatusNormalClosure, "completed")
}

func TestExchangeUnknownToken(t *testing.T) {
	p := newProxy(t, `{"name":"dstor"}`)
	p.wantNotFound("never-given")
	srv := p.Server(noNext(t))
	if code, body := refused(t, srv, "never-given", alice...); code != http.StatusNotFound || body != notFoundReply {
		t.Errorf("watching an unknown token: %d %s, want 404 %s", code, body, notFoundReply)
	}
	// HEAD: the same status and headers, no body.
	req, _ := http.NewRequest("HEAD", srv.URL+"/v1/upload/get-status/", nil)
	req.Header.Set("Authorization", "Bearer alice-key")
	req.Header.Set(HeaderToken, "never-given")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/json" || resp.ContentLength != int64(len(notFoundReply)+1) {
		t.Errorf("HEAD get-status of an unknown token: %d, %s, length %d; want the GET's 404 headers", resp.StatusCode, resp.Header.Get("Content-Type"), resp.ContentLength)
	}
}

func TestExchangeAnotherCredential(t *testing.T) {
	p := newProxy(t, `{"name":"dstor"}`)
	p.token("tok", 2, "/photos", alice...)
	c := newChunk(file{"a.jpg", 1000})
	p.chunk("tok", c, accepted, alice...)
	mine := uploading(2, 1, 0, len(c.body), 1, "", "/photos")

	// Bob cannot tell alice's token from none.
	p.wantNotFound("tok", bob...)
	srv := p.Server(noNext(t))
	if code, body := refused(t, srv, "tok", bob...); code != http.StatusNotFound || body != notFoundReply {
		t.Errorf("bob watching alice's token: %d %s, want 404 %s", code, body, notFoundReply)
	}

	// His chunks under her token pass to the origin untouched and change
	// nothing of hers: streaming, refused, or taken.
	bobs := newChunk(file{"intruder.exe", 3000})
	release := p.streaming("tok", bobs, bobs.into(1, 100), answered(http.StatusNotFound, `{"message":"upload not found"}`), bob...)
	p.want("tok", mine)
	release()
	p.want("tok", mine)
	o := p.chunk("tok", bobs, answered(http.StatusInternalServerError, `{"message":"boom"}`), bob...)
	if o.Header.Get("Authorization") != "Bearer bob-key" || o.Header.Get(HeaderToken) != "tok" || o.Header.Get("Content-Type") != bobs.contentType {
		t.Errorf("bob's chunk reached the origin with headers %v", o.Header)
	}
	p.want("tok", mine)
	p.chunk("tok", bobs, accepted, bob...)
	p.want("tok", mine)

	// A chunk without a credential passes untracked too.
	p.chunk("tok", bobs, accepted, "Authorization", "")
	p.want("tok", mine)
}

func TestExchangeRequestErrors(t *testing.T) {
	p := newProxy(t, `{"name":"dstor"}`)
	p.token("tok", 2, "/photos", alice...)
	for _, tc := range []struct {
		name   string
		tok    string
		header []string
		code   int
		want   string
	}{
		{"no Authorization", "tok", []string{"Authorization", ""}, http.StatusUnauthorized,
			`{"status":"ERROR","errorExplanation":"missing Authorization header","errorAtStage":"UPLOADING"}`},
		{"no token", "", nil, http.StatusBadRequest,
			`{"status":"ERROR","errorExplanation":"missing X-Dstor-Upload-Token header","errorAtStage":"UPLOADING"}`},
		{"neither", "", []string{"Authorization", ""}, http.StatusUnauthorized,
			`{"status":"ERROR","errorExplanation":"missing Authorization header","errorAtStage":"UPLOADING"}`},
	} {
		if code, body := p.status(tc.tok, tc.header...); code != tc.code || body != tc.want {
			t.Errorf("%s: get-status answered %d %s, want %d %s", tc.name, code, body, tc.code, tc.want)
		}
	}

	srv := p.Server(noNext(t))
	if code, body := refused(t, srv, "tok"); code != http.StatusUnauthorized || body != `{"status":"ERROR","errorExplanation":"missing Authorization header","errorAtStage":"UPLOADING"}` {
		t.Errorf("watching without Authorization: %d %s, want 401", code, body)
	}
	if code, body := refused(t, srv, "", alice...); code != http.StatusBadRequest || body != `{"status":"ERROR","errorExplanation":"missing X-Dstor-Upload-Token header","errorAtStage":"UPLOADING"}` {
		t.Errorf("watching without a token: %d %s, want 400", code, body)
	}
}

func TestExchangeCustomPrefix(t *testing.T) {
	p := newProxy(t, `{"name":"dstor","prefix":"/api/upload/"}`)
	json := append([]string{"Content-Type", "application/json"}, alice...)
	p.Send("POST", "/api/upload/get-token", `{"chunks_number":1,"folder_path":"/p"}`, answered(http.StatusOK, `{"message":"ok","token":"tok"}`), json...)
	c := newChunk(file{"a", 10})
	p.Send("POST", "/api/upload", c.body, accepted, chunkHeader("tok", c, alice...)...)
	// The default prefix is another API the proxy does not follow.
	p.Send("POST", "/v1/upload/get-token", `{"chunks_number":1,"folder_path":"/q"}`, answered(http.StatusOK, `{"message":"ok","token":"tok-v1"}`), json...)

	r := protocoltest.Request("GET", "/api/upload/get-status", "", append([]string{HeaderToken, "tok"}, alice...)...)
	w := p.Serve(r, &protocoltest.Origin{A: answered(http.StatusOK, `{"status":"DONE"}`)})
	if want := fmt.Sprintf(`{"status":"DONE","chunksNumber":1,"chunksUploaded":1,"bytesUploaded":%d,"filesUploaded":1,"folderPath":"/p"}`, len(c.body)); w.Body.String() != want {
		t.Errorf("get-status under the prefix: %s, want %s", w.Body, want)
	}
	o := &protocoltest.Origin{A: answered(http.StatusNotFound, `{"origin":"says"}`)}
	w = p.Serve(protocoltest.Request("GET", "/v1/upload/get-status/", "", append([]string{HeaderToken, "tok-v1"}, alice...)...), o)
	if !o.Called || w.Body.String() != `{"origin":"says"}` {
		t.Errorf("get-status at the default prefix: origin asked %v, client got %s; want it passed on as any request", o.Called, w.Body)
	}
}
