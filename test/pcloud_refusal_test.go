package test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// pCloud refuses an upload with HTTP 200 and a result code: the upload is
// reported failed, with pCloud's reason, and counted as an origin error.
func TestPcloudRefusalWithStatus200Fails(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"result":2005,"error":"Directory does not exist."}`)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	e := newEnv(t, "protocol pcloud")
	e.load("protocol pcloud", l.Addr().String())
	resp, err := e.client.Post(e.proxy+"/uploadfile?progresshash=r1&auth=tok&filename=a.bin", "application/octet-stream", strings.NewReader("data"))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("upload: %d", resp.StatusCode)
	}
	p, body := e.pcloudProgress("progresshash=r1&auth=tok")
	if !p.Finished || p.Error != "origin refused the upload: Directory does not exist. (result 2005)" {
		t.Errorf("status after a refusal: %s", body)
	}
	if n := metricValue(e.scrape(), `caddy_upload_progress_uploads_finished_total{outcome="origin_error",protocol="pcloud",zone="default"}`); n != 1 {
		t.Errorf("uploads_finished_total{outcome=origin_error} = %v, want 1", n)
	}
}
