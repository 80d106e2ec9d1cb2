package caddymodule

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// The session glue as protocol tus drives it: a tus upload is one record
// fed by many requests.

// newTusHandler provisions a handler with the tus protocol object proto.
func newTusHandler(t *testing.T, proto string) *Handler {
	t.Helper()
	h := &Handler{Zone: uniqueZone(t), ProtocolsRaw: protos(t, proto)}
	provisionForTest(t, h)
	return h
}

// tusSend passes a tus request through h to a tus server that reads its
// body whole and answers status with header (name, value pairs); reqHeader
// is the request's, likewise.
func tusSend(t *testing.T, h *Handler, method, target, body string, status int, header []string, reqHeader ...string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	for i := 0; i+1 < len(reqHeader); i += 2 {
		r.Header.Set(reqHeader[i], reqHeader[i+1])
	}
	caddyhttp.NewTestReplacer(r)
	var got int
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			return caddyhttp.Error(http.StatusBadGateway, err)
		}
		got = int(n)
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(status)
		return nil
	})
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, r, next); err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	if w.Code != status || got != len(body) {
		t.Fatalf("%s %s: client got %d, server %d bytes; want %d and %d", method, target, w.Code, got, status, len(body))
	}
}

func TestProvisionTusRefusesKey(t *testing.T) {
	h := Handler{Zone: uniqueZone(t), ProtocolsRaw: protos(t, `{"name":"tus","key":"{http.request.header.X-Upload-Id}"}`)}
	_, err := provisionHandler(t, &h)
	if err == nil {
		t.Fatalf("Provision accepted %s", jsonOf(t, &h))
	}
	for _, w := range []string{"protocol tus", "key", "names its sessions itself", "remove the key option"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	if _, ok := zones.References(h.Zone); ok {
		t.Errorf("a refused tus config left zone %s in the pool", h.Zone)
	}

	// The handler's key is for the protocols that take one: tus names its
	// uploads by their URLs all the same.
	h2 := &Handler{Zone: uniqueZone(t), Key: "{http.request.header.X-Upload-Id}", ProtocolsRaw: protos(t, `{"name":"tus"}`, `{"name":"shard"}`)}
	provisionForTest(t, h2)
	if h2.protocols[0].keyTemplate != "" || h2.protocols[1].keyTemplate != h2.Key {
		t.Errorf("key templates: tus %q, shard %q; want none for tus, the handler's for shard",
			h2.protocols[0].keyTemplate, h2.protocols[1].keyTemplate)
	}
	if !h2.protocols[0].ownerless || h2.protocols[0].sessions == nil {
		t.Error("tus should be an ownerless session protocol by default")
	}
}

func TestSessionMetrics(t *testing.T) {
	h := newTusHandler(t, `{"name":"tus"}`)
	zone := map[string]string{"zone": h.Zone, "protocol": "tus"}
	outcome := func(o string) map[string]string {
		return map[string]string{"zone": h.Zone, "protocol": "tus", "outcome": o}
	}
	stream := []string{"Content-Type", "application/offset+octet-stream"}

	// A creation, a HEAD and a termination bring no session bytes.
	tusSend(t, h, "POST", "/files/", "", http.StatusCreated, []string{"Location", "/files/m"}, "Upload-Length", "100")
	tusSend(t, h, "HEAD", "/files/m", "", http.StatusOK, []string{"Upload-Offset", "0", "Upload-Length", "100"})
	if n := counterValue(t, uploadsStarted, zone); n != 0 {
		t.Errorf("uploads_started_total after a creation and a HEAD = %v, want 0", n)
	}

	// Each PATCH is an upload of its own in the metrics.
	tusSend(t, h, "PATCH", "/files/m", strings.Repeat("a", 40), http.StatusNoContent, []string{"Upload-Offset", "40"},
		append([]string{"Upload-Offset", "0"}, stream...)...)
	tusSend(t, h, "PATCH", "/files/m", strings.Repeat("b", 10), http.StatusConflict, nil,
		append([]string{"Upload-Offset", "30"}, stream...)...)
	tusSend(t, h, "PATCH", "/files/m", strings.Repeat("c", 60), http.StatusNoContent, []string{"Upload-Offset", "100"},
		append([]string{"Upload-Offset", "40"}, stream...)...)
	// Without an offset, a PATCH streams nothing the upload counts.
	tusSend(t, h, "PATCH", "/files/m", "d", http.StatusBadRequest, nil, stream...)
	tusSend(t, h, "DELETE", "/files/m", "", http.StatusNoContent, nil)

	if n := counterValue(t, uploadsStarted, zone); n != 3 {
		t.Errorf("uploads_started_total = %v, want 3 (one per PATCH with an offset)", n)
	}
	if n := counterValue(t, uploadsFinished, outcome("completed")); n != 2 {
		t.Errorf("uploads_finished_total{outcome=completed} = %v, want 2", n)
	}
	if n := counterValue(t, uploadsFinished, outcome("origin_error")); n != 1 {
		t.Errorf("uploads_finished_total{outcome=origin_error} = %v, want 1 (the 409)", n)
	}
	if n := counterValue(t, uploadsFinished, zone); n != 3 {
		t.Errorf("uploads_finished_total = %v, want 3", n)
	}
	if n := counterValue(t, receivedBytes, zone); n != 110 {
		t.Errorf("received_bytes_total = %v, want 110 (40 + 10 + 60)", n)
	}
	// The upload was whole before its termination came.
	snap := h.tracker().Lookup(progress.Anyone, "/files/m")
	if snap.State != progress.Completed || snap.Total != 100 || snap.Received != 100 {
		t.Errorf("record = %s %d of %d, want completed 100 of 100", snap.State, snap.Received, snap.Total)
	}
	if s := h.tracker().Stats(); s.InFlight != 0 {
		t.Errorf("%d requests in flight after all were answered", s.InFlight)
	}
}

func TestSessionPatchWithoutCredentialPassesUntracked(t *testing.T) {
	h := newTusHandler(t, `{"name":"tus","owner":"{http.request.header.Authorization}"}`)
	tusSend(t, h, "PATCH", "/files/u", "abc", http.StatusNoContent, []string{"Upload-Offset", "3"}, "Upload-Offset", "0")
	if n := counterValue(t, uploadsUntracked, map[string]string{"zone": h.Zone, "protocol": "tus", "reason": "no_credential"}); n != 1 {
		t.Errorf("uploads_untracked_total{reason=no_credential} = %v, want 1", n)
	}
	if n := counterValue(t, uploadsStarted, map[string]string{"zone": h.Zone}); n != 0 {
		t.Errorf("uploads_started_total = %v, want 0", n)
	}
	// A HEAD without the credential is no upload: it passes, uncounted.
	tusSend(t, h, "HEAD", "/files/u", "", http.StatusOK, []string{"Upload-Offset", "3", "Upload-Length", "3"})
	if n := counterValue(t, uploadsUntracked, map[string]string{"zone": h.Zone}); n != 1 {
		t.Errorf("uploads_untracked_total = %v after a HEAD, want still 1", n)
	}
	if s := h.tracker().Stats(); s.Keys != 0 {
		t.Errorf("the tracker holds %d keys, want none", s.Keys)
	}
}
