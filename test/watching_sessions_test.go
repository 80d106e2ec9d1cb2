package test

import (
	"net/http"
	"testing"

	"github.com/caddy-upload-progress/caddy-upload-progress/cmd/upload-origin/origin"
	"github.com/caddy-upload-progress/caddy-upload-progress/internal/ssetest"
)

// A sandbox session watched by a page that holds only a watch token: the
// token comes added to the overlaid status answer (asked with the bearer
// token and watch_token=1); with it alone, the session's event stream
// shows a part halfway and ends with the completed session, its status
// route is answered by the proxy from what it holds, and its WebSocket
// opens. A forged or another session's token is refused with 401, in the
// sandbox API's error shape, before any stream or upgrade.
func TestWatchTokenSandbox(t *testing.T) {
	e := newSandboxEnv(t, origin.Config{})
	const part = 1 << 20
	src := pattern(2 * part)
	session, _ := e.create("sb_tok", fileSession("/tok.bin", 2*part, part))
	other, _ := e.create("sb_tok", fileSession("/other.bin", part, part))
	bearerKey := http.Header{"Authorization": {"Bearer " + apiKey}}

	token, reply := watchTokenOf(t, e.client, e.proxy+session+"?watch_token=1", bearerKey)
	if string(reply["status"]) != `"created"` || string(reply["received_bytes"]) != "0" || reply["upload_id"] == nil {
		t.Fatalf("the overlaid answer with the token: %v", reply)
	}
	otherToken, _ := watchTokenOf(t, e.client, e.proxy+other+"?watch_token=1", bearerKey)

	s := ssetest.Open(t, e.client, e.proxy+session+"/ws?watch_token="+token, nil)
	if ev := s.Next(t); ev.Event != "progress" || ev.ID != "1" {
		t.Fatalf("first event %+v", ev)
	} else if o, err := decodeObject([]byte(ev.Data)); err != nil || o.str("status") != "created" {
		t.Fatalf("first event %+v: %v", ev, err)
	}

	p := e.startPart(session, 1, part, nil)
	p.write(t, src[:part/2])
	halfway := func(ev ssetest.Event) bool {
		o, err := decodeObject([]byte(ev.Data))
		return err == nil && o.num("received_bytes") == part/2
	}
	ev := s.Until(t, "showing part 1 halfway", halfway)
	if o, _ := decodeObject([]byte(ev.Data)); o.str("status") != "uploading" || !o.inFlightIs(sbPart{1, part / 2, part}) {
		t.Fatalf("part 1 halfway: %s", ev.Data)
	}

	// Polling and the WebSocket with the token alone.
	code, body := getWith(t, e.client, e.proxy+session+"?watch_token="+token, nil)
	if o, err := decodeObject([]byte(body)); code != 200 || err != nil || o.num("received_bytes") != part/2 || o.str("status") != "uploading" {
		t.Errorf("status route with the token: %d %s", code, body)
	}
	if o, err := decodeObject([]byte(wsFirst(t, e.env, session+"/ws?watch_token="+token, nil))); err != nil || o.num("received_bytes") != part/2 {
		t.Errorf("WebSocket with the token: %v %v", o, err)
	}
	for _, c := range []struct{ name, token, msg string }{
		{"forged", forged(token), "watch_token is not valid for this upload"},
		{"another session's", otherToken, "watch_token is not valid for this upload"},
	} {
		want := `{"error":{"code":"unauthorized","message":"` + c.msg + `"}}`
		if code, body := ssetest.Refused(t, e.client, e.proxy+session+"/ws?watch_token="+c.token, nil); code != 401 || body != want {
			t.Errorf("%s token, event stream: %d %s, want 401 %s", c.name, code, body, want)
		}
		if code, body := wsRefused(t, e.env, session+"/ws?watch_token="+c.token, nil); code != 401 || body != want {
			t.Errorf("%s token, WebSocket: %d %s, want 401 %s", c.name, code, body, want)
		}
		if code, body := getWith(t, e.client, e.proxy+session+"?watch_token="+c.token, nil); code != 401 || body != want {
			t.Errorf("%s token, status route: %d %s, want 401 %s", c.name, code, body, want)
		}
	}

	if r := p.finish(t, src[part/2:part]); r.code != http.StatusOK {
		t.Fatalf("part 1: %d %s", r.code, r.body)
	}
	if r := e.do("PUT", session+"/parts/2", src[part:], nil); r.code != http.StatusOK {
		t.Fatalf("part 2: %d %s", r.code, r.body)
	}
	if a := e.do("POST", session+"/complete?mode=sync", nil, nil); a.code != http.StatusOK {
		t.Fatalf("complete: %d %s", a.code, a.body)
	}
	end := s.Until(t, "end", func(ev ssetest.Event) bool { return ev.Event == "end" })
	if o, err := decodeObject([]byte(end.Data)); err != nil || o.str("status") != "completed" || o.num("received_bytes") != 2*part {
		t.Errorf("end event %s: %v", end.Data, err)
	}
	s.Ended(t)
}

// A dStor folder upload watched by a page that holds only a watch token:
// the token comes added to get-status (asked with the credential, the
// upload token header and watch_token=1); with it alone, the upload token
// named by the token query parameter, the event stream at
// get-status/ws shows the first chunk in, then the origin's stages as
// the proxy learns them (the uploader polling get-status, as dStor's
// clients do, until DONE) and ends with DONE; get-status answers from
// what the proxy holds, and the WebSocket opens. A forged or another
// upload's token is refused with 401 in dStor's error shape.
func TestWatchTokenDstor(t *testing.T) {
	e := newDstorEnv(t, origin.Config{})
	chunks := dsFolder()[:2]
	tok := e.token(2, "/photos", nil)
	otherTok := e.token(1, "/other", nil)
	cred := http.Header{"Authorization": {"Bearer " + apiKey}}

	token, reply := watchTokenOf(t, e.client, e.proxy+"/v1/upload/get-status/?watch_token=1", withToken(tok, cred))
	if string(reply["status"]) != `"UPLOADING"` || string(reply["chunksNumber"]) != "2" {
		t.Fatalf("get-status with the token: %v", reply)
	}
	otherToken, _ := watchTokenOf(t, e.client, e.proxy+"/v1/upload/get-status/?watch_token=1", withToken(otherTok, cred))

	s := ssetest.Open(t, e.client, e.proxy+"/v1/upload/get-status/ws?token="+tok+"&watch_token="+token, nil)
	if ev := s.Next(t); ev.Event != "progress" || ev.Data != `{"status":"UPLOADING","chunksNumber":2,"chunksUploaded":0,"chunksInFlight":0,"bytesUploaded":0,"filesUploaded":0,"folderPath":"/photos"}` {
		t.Fatalf("first event %+v", ev)
	}
	e.putOK(tok, chunks[0])
	oneIn := func(ev ssetest.Event) bool {
		var r dstorReply
		return r.UnmarshalJSON([]byte(ev.Data)) == nil && r.ChunksUploaded == 1
	}
	if ev := s.Until(t, "showing the first chunk in", oneIn); ev.Event != "progress" {
		t.Fatalf("first chunk in: %+v", ev)
	}

	// Polling and the WebSocket with the token alone.
	code, body := getWith(t, e.client, e.proxy+"/v1/upload/get-status/?token="+tok+"&watch_token="+token, nil)
	var polled dstorReply
	if code != 200 || polled.UnmarshalJSON([]byte(body)) != nil || polled.ChunksUploaded != 1 || polled.Status != "UPLOADING" {
		t.Errorf("get-status with the token: %d %s", code, body)
	}
	var first dstorReply
	if err := first.UnmarshalJSON([]byte(wsFirst(t, e.env, "/v1/upload/get-status/ws?token="+tok+"&watch_token="+token, nil))); err != nil || first.ChunksUploaded != 1 {
		t.Errorf("WebSocket with the token: %+v %v", first, err)
	}
	for _, c := range []struct{ name, token string }{{"forged", forged(token)}, {"another upload's", otherToken}} {
		want := `{"status":"ERROR","errorExplanation":"watch_token is not valid for this upload","errorAtStage":"UPLOADING"}`
		q := "?token=" + tok + "&watch_token=" + c.token
		if code, body := ssetest.Refused(t, e.client, e.proxy+"/v1/upload/get-status/ws"+q, nil); code != 401 || body != want {
			t.Errorf("%s token, event stream: %d %s, want 401 %s", c.name, code, body, want)
		}
		if code, body := wsRefused(t, e.env, "/v1/upload/get-status/ws"+q, nil); code != 401 || body != want {
			t.Errorf("%s token, WebSocket: %d %s, want 401 %s", c.name, code, body, want)
		}
		if code, body := getWith(t, e.client, e.proxy+"/v1/upload/get-status/"+q, nil); code != 401 || body != want {
			t.Errorf("%s token, get-status: %d %s, want 401 %s", c.name, code, body, want)
		}
	}
	if code, body := getWith(t, e.client, e.proxy+"/v1/upload/get-status/?watch_token="+token, nil); code != 400 || body != `{"status":"ERROR","errorExplanation":"missing query parameter: token (the upload token)","errorAtStage":"UPLOADING"}` {
		t.Errorf("get-status with a watch token and no upload token: %d %s, want 400", code, body)
	}

	e.putOK(tok, chunks[1])
	e.waitStatus(tok, "DONE", func(r dstorReply) bool { return r.Status == "DONE" })
	end := s.Until(t, "end", func(ev ssetest.Event) bool { return ev.Event == "end" })
	var done dstorReply
	if err := done.UnmarshalJSON([]byte(end.Data)); err != nil || done.Status != "DONE" || done.ChunksUploaded != 2 {
		t.Errorf("end event %s: %v", end.Data, err)
	}
	s.Ended(t)
}
