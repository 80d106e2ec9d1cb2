package tus

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// The tus server's answers, as tusd and the tus 1.0 specification give them.
const (
	resumable = "Tus-Resumable"
	tus100    = "1.0.0"
)

// ascii is n bytes of upload.
func ascii(n int) string { return strings.Repeat("u", n) }

func TestExchangeCreation(t *testing.T) {
	p := newProxy(t, `{"name":"tus"}`)
	p.Send("POST", "/files/", "", answered(http.StatusCreated, "Location", "http://tus.example/files/24e533e0", resumable, tus100),
		resumable, tus100, "Upload-Length", "52428800", "Upload-Metadata", "filename "+b64("video.mp4")+",filetype "+b64("video/mp4"))
	p.want("/files/24e533e0", `{"upload":"/files/24e533e0","length":52428800,"offset":0,"received":0,"status":"created","metadata":{"filename":"video.mp4","filetype":"video/mp4"},"error":""}`)
	// The upload URL as the client has it names it too.
	p.want("http://tus.example/files/24e533e0", `{"upload":"/files/24e533e0","length":52428800,"offset":0,"received":0,"status":"created","metadata":{"filename":"video.mp4","filetype":"video/mp4"},"error":""}`)
}

func TestExchangeCreationLocations(t *testing.T) {
	p := newProxy(t, `{"name":"tus"}`)
	// Relative to the endpoint, with or without its slash.
	p.Send("POST", "/files/", "", answered(http.StatusCreated, "Location", "rel"), "Upload-Length", "5")
	p.Send("POST", "/files", "", answered(http.StatusCreated, "Location", "/files/abs"), "Upload-Length", "6")
	p.Send("POST", "/files/", "", answered(http.StatusCreated, "Location", "//tus.example/files/net"), "Upload-Length", "7")
	p.want("/files/rel", `{"upload":"/files/rel","length":5,"offset":0,"received":0,"status":"created","error":""}`)
	p.want("/files/abs", `{"upload":"/files/abs","length":6,"offset":0,"received":0,"status":"created","error":""}`)
	p.want("/files/net", `{"upload":"/files/net","length":7,"offset":0,"received":0,"status":"created","error":""}`)
}

func TestExchangeCreationNotCreated(t *testing.T) {
	p := newProxy(t, `{"name":"tus"}`)
	// Refused, or created without saying where: nothing to follow.
	p.Send("POST", "/files/", "", answered(http.StatusRequestEntityTooLarge, "Location", "/files/big"), "Upload-Length", "1000000")
	p.Send("POST", "/files/", "", answered(http.StatusBadRequest, "Location", "/files/bad"), "Upload-Length", "-1")
	p.Send("POST", "/files/", "", answered(http.StatusCreated), "Upload-Length", "5")
	p.Send("POST", "/files/", "", answered(http.StatusCreated, "Location", "/"), "Upload-Length", "5")
	p.Unanswered("POST", "/files/", "", "Upload-Length", "5")
	p.wantNone("/files/big")
	p.wantNone("/files/bad")
}

func TestExchangeCreationWithUpload(t *testing.T) {
	p := newProxy(t, `{"name":"tus"}`)
	p.Send("POST", "/files/", ascii(40), answered(http.StatusCreated, "Location", "/files/cwu", "Upload-Offset", "40"),
		"Upload-Length", "100", "Content-Type", "application/offset+octet-stream")
	p.want("/files/cwu", `{"upload":"/files/cwu","length":100,"offset":40,"received":40,"status":"paused","error":""}`)

	// The whole upload in its creation.
	p.Send("POST", "/files/", ascii(40), answered(http.StatusCreated, "Location", "/files/whole", "Upload-Offset", "40"),
		"Upload-Length", "40", "Content-Type", "application/offset+octet-stream")
	p.want("/files/whole", `{"upload":"/files/whole","length":40,"offset":40,"received":40,"status":"completed","error":""}`)
}

func TestExchangePatches(t *testing.T) {
	p := newProxy(t, `{"name":"tus"}`)
	p.Send("POST", "/files/", "", answered(http.StatusCreated, "Location", "/files/up"), "Upload-Length", "100")

	p.Send("PATCH", "/files/up", ascii(60), answered(http.StatusNoContent, "Upload-Offset", "60", "Upload-Expires", "Mon, 07 Dec 2099 10:00:00 GMT"),
		"Upload-Offset", "0", "Content-Type", "application/offset+octet-stream")
	p.want("/files/up", `{"upload":"/files/up","length":100,"offset":60,"received":60,"status":"paused","expires_at":"2099-12-07T10:00:00Z","error":""}`)

	// While the next PATCH streams, received counts its bytes from its offset.
	release := p.Streaming("PATCH", "/files/up", ascii(40), 30, answered(http.StatusNoContent, "Upload-Offset", "100"),
		"Upload-Offset", "60", "Content-Type", "application/offset+octet-stream")
	p.want("/files/up", `{"upload":"/files/up","length":100,"offset":60,"received":90,"status":"uploading","expires_at":"2099-12-07T10:00:00Z","error":""}`)
	release()
	p.want("/files/up", `{"upload":"/files/up","length":100,"offset":100,"received":100,"status":"completed","expires_at":"2099-12-07T10:00:00Z","error":""}`)
}

func TestExchangePatchBySomeOtherRoute(t *testing.T) {
	p := newProxy(t, `{"name":"tus"}`)
	p.Send("POST", "/files/", "", answered(http.StatusCreated, "Location", "/files/ov"), "Upload-Length", "10")
	// A client behind a proxy that only passes GET and POST.
	p.Send("POST", "/files/ov", ascii(10), answered(http.StatusNoContent, "Upload-Offset", "10"),
		"X-HTTP-Method-Override", "PATCH", "Upload-Offset", "0", "Content-Type", "application/offset+octet-stream")
	p.want("/files/ov", `{"upload":"/files/ov","length":10,"offset":10,"received":10,"status":"completed","error":""}`)
}

func TestExchangeRefusedPatches(t *testing.T) {
	p := newProxy(t, `{"name":"tus"}`)
	p.Send("POST", "/files/", "", answered(http.StatusCreated, "Location", "/files/r", "Upload-Offset", "0"), "Upload-Length", "100")
	p.Send("PATCH", "/files/r", ascii(20), answered(http.StatusNoContent, "Upload-Offset", "20"), "Upload-Offset", "0")

	// Not where the upload stands: the upload goes on, with the error said.
	p.Send("PATCH", "/files/r", ascii(10), answered(http.StatusConflict), "Upload-Offset", "10")
	p.want("/files/r", `{"upload":"/files/r","length":100,"offset":20,"received":20,"status":"paused","error":"the tus server answered 409 Conflict: the PATCH at offset 10 is not where the upload stands"}`)

	// A checksum mismatch: the bytes were discarded.
	p.Send("PATCH", "/files/r", ascii(10), answered(statusChecksumMismatch), "Upload-Offset", "20", "Upload-Checksum", "sha1 "+b64("not it"))
	p.want("/files/r", `{"upload":"/files/r","length":100,"offset":20,"received":20,"status":"paused","error":"the tus server answered 460 Checksum Mismatch: the PATCH's bytes were discarded"}`)

	// Any other refusal.
	p.Send("PATCH", "/files/r", ascii(10), answered(http.StatusForbidden), "Upload-Offset", "20")
	p.want("/files/r", `{"upload":"/files/r","length":100,"offset":20,"received":20,"status":"paused","error":"the tus server answered 403 Forbidden to a PATCH"}`)

	// No answer at all.
	p.Unanswered("PATCH", "/files/r", ascii(10), "Upload-Offset", "20")
	p.want("/files/r", `{"upload":"/files/r","length":100,"offset":20,"received":20,"status":"paused","error":"origin unreachable (502 Bad Gateway)"}`)

	// The next PATCH that goes through clears the error.
	p.Send("PATCH", "/files/r", ascii(30), answered(http.StatusNoContent, "Upload-Offset", "50"), "Upload-Offset", "20")
	p.want("/files/r", `{"upload":"/files/r","length":100,"offset":50,"received":50,"status":"paused","error":""}`)
}

func TestExchangeGone(t *testing.T) {
	for _, tc := range []struct {
		name, method string
		status       int
		want         string
	}{
		{"PATCH 404", "PATCH", http.StatusNotFound, "the tus server answered 404 Not Found: the upload is gone"},
		{"PATCH 410", "PATCH", http.StatusGone, "the tus server answered 410 Gone: the upload is gone"},
		{"HEAD 404", "HEAD", http.StatusNotFound, "the tus server answered 404 Not Found: the upload is gone"},
		{"HEAD 410", "HEAD", http.StatusGone, "the tus server answered 410 Gone: the upload is gone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProxy(t, `{"name":"tus"}`)
			p.Send("POST", "/files/", "", answered(http.StatusCreated, "Location", "/files/g"), "Upload-Length", "10")
			p.Send("PATCH", "/files/g", ascii(4), answered(http.StatusNoContent, "Upload-Offset", "4"), "Upload-Offset", "0")
			body := ""
			if tc.method == "PATCH" {
				body = ascii(6)
			}
			p.Send(tc.method, "/files/g", body, answered(tc.status), "Upload-Offset", "4")
			p.want("/files/g", `{"upload":"/files/g","length":10,"offset":4,"received":4,"status":"failed","error":"`+tc.want+`"}`)
		})
	}
}

func TestExchangeHead(t *testing.T) {
	p := newProxy(t, `{"name":"tus"}`)
	// Uploads the proxy has not seen created (it started since): a HEAD
	// that resumes them says where they stand.
	p.Send("HEAD", "/files/h1", "", answered(http.StatusOK, "Upload-Offset", "30", "Upload-Length", "100"))
	p.want("/files/h1", `{"upload":"/files/h1","length":100,"offset":30,"received":30,"status":"paused","error":""}`)
	p.Send("HEAD", "/files/h2", "", answered(http.StatusOK, "Upload-Offset", "0", "Upload-Defer-Length", "1"))
	p.want("/files/h2", `{"upload":"/files/h2","length":-1,"offset":0,"received":0,"status":"created","error":""}`)
	p.Send("HEAD", "/files/h3", "", answered(http.StatusOK, "Upload-Offset", "100", "Upload-Length", "100"))
	p.want("/files/h3", `{"upload":"/files/h3","length":100,"offset":100,"received":100,"status":"completed","error":""}`)

	// On a known upload, it learns the length and the offset.
	p.Send("HEAD", "/files/h2", "", answered(http.StatusOK, "Upload-Offset", "10", "Upload-Length", "50",
		"Upload-Expires", "Mon, 07 Dec 2099 10:00:00 GMT"))
	p.want("/files/h2", `{"upload":"/files/h2","length":50,"offset":10,"received":10,"status":"paused","expires_at":"2099-12-07T10:00:00Z","error":""}`)

	// Unknown to the server too: nothing to follow.
	p.Send("HEAD", "/files/h4", "", answered(http.StatusNotFound))
	p.wantNone("/files/h4")
	// A GET of an upload (a download) is no tus request the proxy reads.
	p.Send("GET", "/files/h5", "", answered(http.StatusOK, "Upload-Offset", "1", "Upload-Length", "1"))
	p.wantNone("/files/h5")
}

func TestExchangeTermination(t *testing.T) {
	p := newProxy(t, `{"name":"tus"}`)
	p.Send("POST", "/files/", "", answered(http.StatusCreated, "Location", "/files/d"), "Upload-Length", "10")
	p.Send("PATCH", "/files/d", ascii(4), answered(http.StatusNoContent, "Upload-Offset", "4"), "Upload-Offset", "0")
	// Refused: the upload stays.
	p.Send("DELETE", "/files/d", "", answered(http.StatusForbidden))
	p.want("/files/d", `{"upload":"/files/d","length":10,"offset":4,"received":4,"status":"paused","error":""}`)
	p.Send("DELETE", "/files/d", "", answered(http.StatusNoContent))
	p.want("/files/d", `{"upload":"/files/d","length":10,"offset":4,"received":4,"status":"terminated","error":""}`)
	// An upload the proxy does not know is not made up to be terminated.
	p.Send("DELETE", "/files/unknown", "", answered(http.StatusNoContent))
	p.wantNone("/files/unknown")
}

func TestExchangeConcatenation(t *testing.T) {
	p := newProxy(t, `{"name":"tus"}`)
	for _, part := range []struct {
		id   string
		size int
	}{{"a", 30}, {"b", 20}} {
		p.Send("POST", "/files/", "", answered(http.StatusCreated, "Location", "http://tus.example/files/"+part.id),
			"Upload-Length", strconv.Itoa(part.size), "Upload-Concat", "partial")
		p.Send("PATCH", "/files/"+part.id, ascii(part.size), answered(http.StatusNoContent, "Upload-Offset", strconv.Itoa(part.size)), "Upload-Offset", "0")
	}
	p.want("/files/a", `{"upload":"/files/a","length":30,"offset":30,"received":30,"status":"completed","error":""}`)

	// The final upload is the sum of its partials, made whole by its creation.
	p.Send("POST", "/files/", "", answered(http.StatusCreated, "Location", "/files/final"),
		"Upload-Concat", "final;/files/a http://tus.example/files/b", "Upload-Metadata", "filename "+b64("all.bin"))
	p.want("/files/final", `{"upload":"/files/final","length":50,"offset":50,"received":50,"status":"completed","metadata":{"filename":"all.bin"},"error":""}`)

	// One partial the proxy does not know: the length is unknown.
	p.Send("POST", "/files/", "", answered(http.StatusCreated, "Location", "/files/final2"),
		"Upload-Concat", "final;/files/a /files/elsewhere")
	p.want("/files/final2", `{"upload":"/files/final2","length":-1,"offset":0,"received":0,"status":"completed","error":""}`)

	// The server's word on the length comes first.
	p.Send("POST", "/files/", "", answered(http.StatusCreated, "Location", "/files/final3", "Upload-Length", "77"),
		"Upload-Concat", "final;/files/a /files/elsewhere")
	p.want("/files/final3", `{"upload":"/files/final3","length":77,"offset":77,"received":77,"status":"completed","error":""}`)
}

func TestExchangeEmptyUpload(t *testing.T) {
	p := newProxy(t, `{"name":"tus"}`)
	// tusd finishes an empty upload at its creation and answers without
	// an Upload-Offset; a client then sends nothing more.
	p.Send("POST", "/files/", "", answered(http.StatusCreated, "Location", "/files/empty"), "Upload-Length", "0")
	p.want("/files/empty", `{"upload":"/files/empty","length":0,"offset":0,"received":0,"status":"completed","error":""}`)
	p.Send("POST", "/files/", "", answered(http.StatusCreated, "Location", "/files/empty2", "Upload-Offset", "0"), "Upload-Length", "0")
	p.want("/files/empty2", `{"upload":"/files/empty2","length":0,"offset":0,"received":0,"status":"completed","error":""}`)
}

func TestExchangeDeferredLength(t *testing.T) {
	p := newProxy(t, `{"name":"tus"}`)
	p.Send("POST", "/files/", "", answered(http.StatusCreated, "Location", "/files/def"), "Upload-Defer-Length", "1")
	p.want("/files/def", `{"upload":"/files/def","length":-1,"offset":0,"received":0,"status":"created","error":""}`)
	p.Send("PATCH", "/files/def", ascii(10), answered(http.StatusNoContent, "Upload-Offset", "10"), "Upload-Offset", "0")
	p.want("/files/def", `{"upload":"/files/def","length":-1,"offset":10,"received":10,"status":"paused","error":""}`)
	// The last PATCH says the length.
	p.Send("PATCH", "/files/def", ascii(5), answered(http.StatusNoContent, "Upload-Offset", "15"), "Upload-Offset", "10", "Upload-Length", "15")
	p.want("/files/def", `{"upload":"/files/def","length":15,"offset":15,"received":15,"status":"completed","error":""}`)
}

func TestExchangePatchOfAnUnseenUpload(t *testing.T) {
	p := newProxy(t, `{"name":"tus"}`)
	// Created before the proxy started: the server's 204 to its first
	// PATCH opens its session (a PATCH to a made-up URL, refused, opens
	// none), and its later PATCHes are followed live.
	release := p.Streaming("PATCH", "/files/old", ascii(30), 10, answered(http.StatusNoContent, "Upload-Offset", "80"), "Upload-Offset", "50")
	p.wantNone("/files/old")
	release()
	p.want("/files/old", `{"upload":"/files/old","length":-1,"offset":80,"received":80,"status":"paused","error":""}`)
	p.Send("PATCH", "/files/made-up", ascii(5), answered(http.StatusNotFound), "Upload-Offset", "0")
	p.wantNone("/files/made-up")
	release = p.Streaming("PATCH", "/files/old", ascii(30), 10, answered(http.StatusNoContent, "Upload-Offset", "110"), "Upload-Offset", "80")
	p.want("/files/old", `{"upload":"/files/old","length":-1,"offset":80,"received":90,"status":"uploading","error":""}`)
	release()
	p.want("/files/old", `{"upload":"/files/old","length":-1,"offset":110,"received":110,"status":"paused","error":""}`)

	// A PATCH that does not say where it starts is refused by the server;
	// its bytes are no progress.
	p.Send("PATCH", "/files/old", ascii(5), answered(http.StatusBadRequest))
	p.want("/files/old", `{"upload":"/files/old","length":-1,"offset":110,"received":110,"status":"paused","error":"the tus server answered 400 Bad Request to a PATCH"}`)
}

func TestExchangeCustomUploadPath(t *testing.T) {
	p := newProxy(t, `{"name":"tus","upload_path":"/api/uploads/"}`)
	p.Send("POST", "/api/uploads", "", answered(http.StatusCreated, "Location", "/api/uploads/x"), "Upload-Length", "3")
	p.Send("POST", "/files/", "", answered(http.StatusCreated, "Location", "/files/x"), "Upload-Length", "3")
	p.want("/api/uploads/x", `{"upload":"/api/uploads/x","length":3,"offset":0,"received":0,"status":"created","error":""}`)
	p.wantNone("/files/x")
}

func TestExchangeOwner(t *testing.T) {
	p := newProxy(t, `{"name":"tus","owner":"{http.request.header.Authorization}"}`)
	alice := []string{"Authorization", "Bearer alice"}
	p.Send("POST", "/files/", "", answered(http.StatusCreated, "Location", "/files/o"), append([]string{"Upload-Length", "10"}, alice...)...)
	p.Send("PATCH", "/files/o", ascii(4), answered(http.StatusNoContent, "Upload-Offset", "4"), append([]string{"Upload-Offset", "0"}, alice...)...)
	p.want("/files/o", `{"upload":"/files/o","length":10,"offset":4,"received":4,"status":"paused","error":""}`, alice...)
	p.wantNone("/files/o", "Authorization", "Bearer bob")
	if code, got := p.status("/files/o"); code != http.StatusUnauthorized || got != `{"error":"missing credential"}` {
		t.Errorf("status without a credential: %d %s, want 401 and the error", code, got)
	}
	// A PATCH without the credential passes, untracked.
	p.Send("PATCH", "/files/o", ascii(6), answered(http.StatusNoContent, "Upload-Offset", "10"), "Upload-Offset", "4")
	p.want("/files/o", `{"upload":"/files/o","length":10,"offset":4,"received":4,"status":"paused","error":""}`, alice...)
}

func TestExchangeStatusRequestErrors(t *testing.T) {
	p := newProxy(t, `{"name":"tus"}`)
	for _, tc := range []struct{ upload, want string }{
		{"", `{"error":"missing query parameter upload (the upload URL or its path)"}`},
		{"abc", `{"error":"query parameter upload is not an upload URL or path"}`},
	} {
		if code, got := p.status(tc.upload); code != http.StatusBadRequest || got != tc.want {
			t.Errorf("status of %q: %d %s, want 400 %s", tc.upload, code, got, tc.want)
		}
	}
}
