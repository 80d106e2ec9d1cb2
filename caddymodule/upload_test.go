package caddymodule

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/caddy-upload-progress/caddy-upload-progress/protocols/shard"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

const testAPIKey = "the-api-key"

// newUploadHandler provisions a shard handler in a zone of its own.
func newUploadHandler(t *testing.T) *Handler {
	t.Helper()
	h := &Handler{Zone: uniqueZone(t)}
	provisionForTest(t, h)
	return h
}

// newRequest makes a server request as Caddy hands it to handlers: with a
// replacer in its context. apiKey "" sends no credential.
func newRequest(method, target string, body io.Reader, apiKey string) *http.Request {
	r := httptest.NewRequest(method, target, body)
	if apiKey != "" {
		r.Header.Set(shard.APIKeyHeader, apiKey)
	}
	caddyhttp.NewTestReplacer(r)
	return r
}

// uploadRequest is a shard upload of body to key.
func uploadRequest(key string, body []byte) *http.Request {
	return newRequest(http.MethodPost, "/fso?path="+key+"&informProgress=true", bytes.NewReader(body), testAPIKey)
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// lookup returns what the-api-key's owner sees under key.
func lookup(h *Handler, key string) progress.Snapshot {
	return h.tracker().Lookup(h.tracker().Owner(testAPIKey), key)
}

// origin is a next handler standing in for reverse_proxy: it reads the
// body whole, remembers what it saw, and answers status.
type origin struct {
	status int
	// wait, if set, holds the answer until it is closed (the body is read).
	wait          chan struct{}
	called        int
	body          []byte
	contentLength int64
	bodyType      string
}

func (o *origin) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	o.called++
	o.contentLength = r.ContentLength
	o.bodyType = fmt.Sprintf("%T", r.Body)
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return caddyhttp.Error(http.StatusBadGateway, err)
	}
	o.body = b
	if o.wait != nil {
		<-o.wait
	}
	w.WriteHeader(o.status)
	_, _ = w.Write([]byte(`{"ok":true}`))
	return nil
}

// clientSide is the client's end of the response: it logs every status
// line written to it and can look at the tracker at that moment. 1xx
// responses are logged and not passed on (the recorder would take the
// first for the final status).
type clientSide struct {
	*httptest.ResponseRecorder
	codes    []int
	onHeader func(code int)
}

func newClientSide() *clientSide { return &clientSide{ResponseRecorder: httptest.NewRecorder()} }

func (c *clientSide) WriteHeader(code int) {
	c.codes = append(c.codes, code)
	if c.onHeader != nil {
		c.onHeader(code)
	}
	if code >= 200 {
		c.ResponseRecorder.WriteHeader(code)
	}
}

// waitFor waits, up to 10 s, until ok holds.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// counterValue adds up every series of a counter vector whose labels
// include labels: with every label given that is one series, with fewer it
// is all of them (every outcome of a zone, say).
func counterValue(t *testing.T, c prometheus.Collector, labels map[string]string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
	metrics:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue metrics
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

func TestUploadBodyPassesUnchanged(t *testing.T) {
	h := newUploadHandler(t)
	body := randomBytes(t, 1<<20+123)
	o := &origin{status: http.StatusCreated}
	r := uploadRequest("/dir/big.bin", body)
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, r, o); err != nil {
		t.Fatalf("ServeHTTP: %v", err)
	}
	if o.called != 1 {
		t.Fatalf("next called %d times", o.called)
	}
	if !bytes.Equal(o.body, body) {
		t.Errorf("origin got %d bytes, not the %d sent byte for byte", len(o.body), len(body))
	}
	if o.contentLength != int64(len(body)) {
		t.Errorf("origin saw ContentLength %d, want %d", o.contentLength, len(body))
	}
	if w.Code != http.StatusCreated || w.Body.String() != `{"ok":true}` {
		t.Errorf("client got %d %q, want the origin's answer", w.Code, w.Body)
	}
	snap := lookup(h, "/dir/big.bin")
	if !snap.Found || snap.State != progress.Completed {
		t.Fatalf("record = %+v, want completed", snap)
	}
	if snap.Received != int64(len(body)) || snap.Total != int64(len(body)) {
		t.Errorf("record bytes = %d of %d, want %d of %d", snap.Received, snap.Total, len(body), len(body))
	}
	if snap.HTTPStatus != http.StatusCreated || snap.Error != "" {
		t.Errorf("record status %d error %q", snap.HTTPStatus, snap.Error)
	}
	// Another credential sees nothing.
	if other := h.tracker().Lookup(h.tracker().Owner("other-key"), "/dir/big.bin"); other.Found {
		t.Errorf("another owner sees the record: %+v", other)
	}
}

func TestUploadChunkedBody(t *testing.T) {
	h := newUploadHandler(t)
	body := randomBytes(t, 70000)
	r := uploadRequest("/chunked.bin", body)
	r.ContentLength = -1
	r.TransferEncoding = []string{"chunked"}
	o := &origin{status: http.StatusCreated}
	if err := h.ServeHTTP(httptest.NewRecorder(), r, o); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(o.body, body) || o.contentLength != -1 {
		t.Errorf("origin got %d bytes with ContentLength %d, want %d bytes and -1", len(o.body), o.contentLength, len(body))
	}
	snap := lookup(h, "/chunked.bin")
	if snap.State != progress.Completed || snap.Total != -1 || snap.Received != int64(len(body)) {
		t.Errorf("record = %+v, want completed, total -1, %d received", snap, len(body))
	}
}

func TestUploadOutcomeByOriginStatus(t *testing.T) {
	tests := []struct {
		status    int
		state     progress.State
		errText   string
		outcome   string
		errSuffix bool
	}{
		{status: http.StatusCreated, state: progress.Completed, outcome: "completed"},
		{status: http.StatusOK, state: progress.Completed, outcome: "completed"},
		{status: http.StatusSeeOther, state: progress.Completed, outcome: "completed"},
		{status: http.StatusConflict, state: progress.Failed, errText: "origin responded 409 Conflict", outcome: "origin_error"},
		{status: http.StatusRequestEntityTooLarge, state: progress.Failed, errText: "origin responded 413 Request Entity Too Large", outcome: "origin_error"},
		{status: http.StatusInternalServerError, state: progress.Failed, errText: "origin responded 500 Internal Server Error", outcome: "origin_error"},
		{status: progress.StatusClientClosedRequest, state: progress.Failed, errText: "client disconnected after 5000 bytes", outcome: "client_aborted"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			h := newUploadHandler(t)
			body := randomBytes(t, 5000)
			o := &origin{status: tt.status}
			w := httptest.NewRecorder()
			if err := h.ServeHTTP(w, uploadRequest("/f.bin", body), o); err != nil {
				t.Fatal(err)
			}
			if w.Code != tt.status {
				t.Errorf("client got %d, want the origin's %d", w.Code, tt.status)
			}
			snap := lookup(h, "/f.bin")
			if snap.State != tt.state || snap.Error != tt.errText || snap.HTTPStatus != tt.status {
				t.Errorf("record = %s %q (HTTP %d), want %s %q (HTTP %d)", snap.State, snap.Error, snap.HTTPStatus, tt.state, tt.errText, tt.status)
			}
			if snap.Received != 5000 {
				t.Errorf("record received %d, want 5000", snap.Received)
			}
			labels := map[string]string{"zone": h.Zone, "protocol": "shard", "outcome": tt.outcome}
			if n := counterValue(t, uploadsFinished, labels); n != 1 {
				t.Errorf("uploads_finished_total%v = %v, want 1", labels, n)
			}
			if n := counterValue(t, uploadsStarted, map[string]string{"zone": h.Zone}); n != 1 {
				t.Errorf("uploads_started_total = %v, want 1", n)
			}
		})
	}
}

func TestUploadWriteWithoutHeaderCompletes(t *testing.T) {
	h := newUploadHandler(t)
	var duringCopy progress.Snapshot
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		_, _ = io.Copy(io.Discard, r.Body)
		if _, ok := w.(io.ReaderFrom); !ok {
			t.Fatal("the upload's response writer has no ReadFrom")
		}
		// A reader that is no io.WriterTo, so that io.Copy calls the
		// writer's ReadFrom; it looks at the record as the copy starts.
		body := readerOnly{strings.NewReader("stored"), func() { duringCopy = lookup(h, "/rf.bin") }}
		_, err := io.Copy(w, &body)
		return err
	})
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, uploadRequest("/rf.bin", []byte("abc")), next); err != nil {
		t.Fatal(err)
	}
	if w.Code != 200 || w.Body.String() != "stored" {
		t.Errorf("client got %d %q", w.Code, w.Body)
	}
	// The status was written before the body was copied: the record had
	// ended by then, as a client polling right after its answer must see.
	if duringCopy.State != progress.Completed || duringCopy.HTTPStatus != 200 {
		t.Errorf("record while the answer was copied = %+v, want completed 200", duringCopy)
	}
}

// readerOnly is a reader and nothing else; first runs on its first Read.
type readerOnly struct {
	r     io.Reader
	first func()
}

func (r *readerOnly) Read(p []byte) (int, error) {
	if r.first != nil {
		r.first()
		r.first = nil
	}
	return r.r.Read(p)
}

func TestUploadHandlerErrorWithoutResponse(t *testing.T) {
	tests := []struct {
		status  int
		errText string
		outcome string
	}{
		{http.StatusBadGateway, "origin unreachable (502 Bad Gateway)", "origin_unreachable"},
		{http.StatusServiceUnavailable, "origin unreachable (503 Service Unavailable)", "origin_unreachable"},
		{http.StatusGatewayTimeout, "origin timed out (504 Gateway Timeout)", "origin_unreachable"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			h := newUploadHandler(t)
			body := randomBytes(t, 4096)
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				_, _ = io.Copy(io.Discard, r.Body)
				return caddyhttp.Error(tt.status, errors.New("dial tcp 127.0.0.1:9000: connect: connection refused"))
			})
			err := h.ServeHTTP(httptest.NewRecorder(), uploadRequest("/gw.bin", body), next)
			var he caddyhttp.HandlerError
			if !errors.As(err, &he) || he.StatusCode != tt.status {
				t.Errorf("ServeHTTP returned %v, want next's error with status %d passed on", err, tt.status)
			}
			snap := lookup(h, "/gw.bin")
			if snap.State != progress.Failed || snap.Error != tt.errText || snap.HTTPStatus != tt.status {
				t.Errorf("record = %s %q (HTTP %d), want failed %q (HTTP %d)", snap.State, snap.Error, snap.HTTPStatus, tt.errText, tt.status)
			}
			labels := map[string]string{"zone": h.Zone, "outcome": tt.outcome}
			if n := counterValue(t, uploadsFinished, labels); n != 1 {
				t.Errorf("uploads_finished_total%v = %v, want 1", labels, n)
			}
		})
	}
}

// errAfter is a request body that yields n bytes, then fails with err.
type errAfter struct {
	n   int
	err error
}

func (b *errAfter) Read(p []byte) (int, error) {
	if b.n == 0 {
		return 0, b.err
	}
	k := min(len(p), b.n)
	clear(p[:k])
	b.n -= k
	return k, nil
}

func (b *errAfter) Close() error { return nil }

func TestUploadBodyReadErrors(t *testing.T) {
	tests := []struct {
		name    string
		body    func(r *http.Request) io.ReadCloser
		errText string
		outcome string
	}{
		{
			name:    "client disconnected",
			body:    func(*http.Request) io.ReadCloser { return &errAfter{n: 3000, err: io.ErrUnexpectedEOF} },
			errText: "client disconnected after 3000 bytes",
			outcome: "client_aborted",
		},
		{
			name:    "client timed out",
			body:    func(*http.Request) io.ReadCloser { return &errAfter{n: 3000, err: os.ErrDeadlineExceeded} },
			errText: "client timed out after 3000 bytes",
			outcome: "client_timeout",
		},
		{
			// request_body max_size runs before upload_progress and wraps
			// the body in http.MaxBytesReader.
			name: "body too large",
			body: func(r *http.Request) io.ReadCloser {
				return http.MaxBytesReader(httptest.NewRecorder(), r.Body, 1000)
			},
			errText: "request body exceeded the 1000 byte limit",
			outcome: "body_too_large",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newUploadHandler(t)
			r := uploadRequest("/broken.bin", randomBytes(t, 8000))
			r.Body = tt.body(r)
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				_, err := io.Copy(io.Discard, r.Body)
				return caddyhttp.Error(http.StatusBadGateway, err)
			})
			_ = h.ServeHTTP(httptest.NewRecorder(), r, next)
			snap := lookup(h, "/broken.bin")
			if snap.State != progress.Failed || snap.Error != tt.errText {
				t.Errorf("record = %s %q, want failed %q", snap.State, snap.Error, tt.errText)
			}
			if n := counterValue(t, uploadsFinished, map[string]string{"zone": h.Zone, "outcome": tt.outcome}); n != 1 {
				t.Errorf("uploads_finished_total{outcome=%s} = %v, want 1", tt.outcome, n)
			}
		})
	}
}

func TestUploadInformationalHeaderDoesNotFinish(t *testing.T) {
	h := newUploadHandler(t)
	body := randomBytes(t, 10000)
	var during []progress.State
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusContinue)
		during = append(during, lookup(h, "/cont.bin").State)
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusEarlyHints)
		during = append(during, lookup(h, "/cont.bin").State)
		w.WriteHeader(http.StatusCreated)
		return nil
	})
	c := newClientSide()
	if err := h.ServeHTTP(c, uploadRequest("/cont.bin", body), next); err != nil {
		t.Fatal(err)
	}
	for i, s := range during {
		if s != progress.Uploading {
			t.Errorf("after informational response %d the record is %s, want uploading", i, s)
		}
	}
	if fmt.Sprint(c.codes) != "[100 103 201]" {
		t.Errorf("client got status lines %v, want [100 103 201]", c.codes)
	}
	snap := lookup(h, "/cont.bin")
	if snap.State != progress.Completed || snap.HTTPStatus != http.StatusCreated || snap.Received != 10000 {
		t.Errorf("record = %+v, want completed 201 with 10000 bytes", snap)
	}
}

// serveRecovering runs ServeHTTP and returns what it panicked with.
func serveRecovering(h *Handler, w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) (panicked any, err error) {
	defer func() { panicked = recover() }()
	err = h.ServeHTTP(w, r, next)
	return nil, err
}

func TestUploadPanicAfterResponseCompletes(t *testing.T) {
	h := newUploadHandler(t)
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("partial"))
		// reverse_proxy does this when copying the response to the client fails.
		panic(http.ErrAbortHandler)
	})
	v, _ := serveRecovering(h, httptest.NewRecorder(), uploadRequest("/abort.bin", randomBytes(t, 2048)), next)
	if v != http.ErrAbortHandler {
		t.Errorf("panic value = %v, want http.ErrAbortHandler passed on", v)
	}
	snap := lookup(h, "/abort.bin")
	if snap.State != progress.Completed || snap.HTTPStatus != http.StatusOK || snap.Received != 2048 {
		t.Errorf("record = %+v, want completed 200 with 2048 bytes", snap)
	}
	// Finished once, as completed: no second series (aborted, from the
	// panic) may count it again.
	if n := counterValue(t, uploadsFinished, map[string]string{"zone": h.Zone}); n != 1 {
		t.Errorf("uploads_finished_total summed over every outcome = %v, want 1 (finished once)", n)
	}
	if n := counterValue(t, uploadsFinished, map[string]string{"zone": h.Zone, "outcome": "completed"}); n != 1 {
		t.Errorf("uploads_finished_total{outcome=completed} = %v, want 1", n)
	}
}

func TestUploadPanicBeforeResponseFails(t *testing.T) {
	for _, pv := range []any{http.ErrAbortHandler, "boom"} {
		t.Run(fmt.Sprint(pv), func(t *testing.T) {
			h := newUploadHandler(t)
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				if _, err := io.ReadFull(r.Body, make([]byte, 1234)); err != nil {
					t.Error(err)
				}
				panic(pv)
			})
			v, _ := serveRecovering(h, httptest.NewRecorder(), uploadRequest("/p.bin", randomBytes(t, 9000)), next)
			if v != pv {
				t.Errorf("panic value = %v, want %v passed on", v, pv)
			}
			snap := lookup(h, "/p.bin")
			if snap.State != progress.Failed || snap.Error != "upload aborted after 1234 bytes" {
				t.Errorf("record = %s %q, want failed \"upload aborted after 1234 bytes\"", snap.State, snap.Error)
			}
			if n := counterValue(t, uploadsFinished, map[string]string{"zone": h.Zone, "outcome": "aborted"}); n != 1 {
				t.Errorf("uploads_finished_total{outcome=aborted} = %v, want 1", n)
			}
		})
	}
}

func TestUploadWithoutCredentialPassesUntracked(t *testing.T) {
	h := newUploadHandler(t)
	body := randomBytes(t, 5000)
	r := newRequest(http.MethodPost, "/fso?path=/anon.bin&informProgress=true", bytes.NewReader(body), "")
	o := &origin{status: http.StatusCreated}
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, r, o); err != nil {
		t.Fatal(err)
	}
	if o.called != 1 || !bytes.Equal(o.body, body) || w.Code != http.StatusCreated {
		t.Errorf("upload without credential did not pass: next called %d, %d bytes, client got %d", o.called, len(o.body), w.Code)
	}
	if snap := lookup(h, "/anon.bin"); snap.Found {
		t.Errorf("untracked upload has a record: %+v", snap)
	}
	if snap := h.tracker().Lookup(progress.Anyone, "/anon.bin"); snap.Found {
		t.Errorf("untracked upload has an ownerless record: %+v", snap)
	}
	if n := counterValue(t, uploadsUntracked, map[string]string{"zone": h.Zone, "reason": "no_credential"}); n != 1 {
		t.Errorf("uploads_untracked_total{reason=no_credential} = %v, want 1", n)
	}
	if s := h.tracker().Stats(); s.Keys != 0 || s.InFlight != 0 {
		t.Errorf("tracker stats = %+v, want empty", s)
	}
}

func TestUploadUntrackedReasons(t *testing.T) {
	tests := []struct {
		name, target, reason string
	}{
		{"no path", "/fso?informProgress=true", "no_key"},
		{"empty path", "/fso?path=&informProgress=true", "no_key"},
		{"control character in path", "/fso?path=/a%0Ab&informProgress=true", "invalid_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newUploadHandler(t)
			o := &origin{status: http.StatusCreated}
			r := newRequest(http.MethodPost, tt.target, strings.NewReader("data"), testAPIKey)
			if err := h.ServeHTTP(httptest.NewRecorder(), r, o); err != nil {
				t.Fatal(err)
			}
			if o.called != 1 || string(o.body) != "data" {
				t.Errorf("upload did not pass: next called %d, body %q", o.called, o.body)
			}
			if n := counterValue(t, uploadsUntracked, map[string]string{"zone": h.Zone, "reason": tt.reason}); n != 1 {
				t.Errorf("uploads_untracked_total{reason=%s} = %v, want 1", tt.reason, n)
			}
			if s := h.tracker().Stats(); s.Keys != 0 {
				t.Errorf("tracker holds %d keys, want 0", s.Keys)
			}
		})
	}
}

func TestUploadWithoutInformProgressIsNotTracked(t *testing.T) {
	for _, target := range []string{
		"/fso?path=/plain.bin",
		"/fso?path=/plain.bin&informProgress=false",
		"/fso?path=/plain.bin&informProgress=yes",
		"/other?path=/plain.bin&informprogress=true",
	} {
		t.Run(target, func(t *testing.T) {
			h := newUploadHandler(t)
			body := randomBytes(t, 1000)
			r := newRequest(http.MethodPost, target, bytes.NewReader(body), testAPIKey)
			sent := r.Body
			var got io.ReadCloser
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				got = r.Body
				w.WriteHeader(http.StatusCreated)
				return nil
			})
			c := newClientSide()
			if err := h.ServeHTTP(c, r, next); err != nil {
				t.Fatal(err)
			}
			if got != sent {
				t.Errorf("next got body %T, want the request's own body untouched", got)
			}
			if c.Code != http.StatusCreated {
				t.Errorf("client got %d", c.Code)
			}
			if snap := lookup(h, "/plain.bin"); snap.Found {
				t.Errorf("record without informProgress: %+v", snap)
			}
			if n := counterValue(t, uploadsStarted, map[string]string{"zone": h.Zone}); n != 0 {
				t.Errorf("uploads_started_total = %v, want 0", n)
			}
		})
	}

	// A request without a body is no upload, even asking for progress.
	h := newUploadHandler(t)
	called := false
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error { called = true; return nil })
	r := newRequest(http.MethodPost, "/fso?path=/empty.bin&informProgress=true", nil, testAPIKey)
	if err := h.ServeHTTP(httptest.NewRecorder(), r, next); err != nil || !called {
		t.Errorf("bodiless request: err %v, next called %v", err, called)
	}
	if snap := lookup(h, "/empty.bin"); snap.Found {
		t.Errorf("record for a bodiless request: %+v", snap)
	}
}

func TestUploadKeyTemplate(t *testing.T) {
	h := &Handler{Zone: uniqueZone(t), Key: "uploads/{http.request.header.X-Upload-Id}"}
	provisionForTest(t, h)
	r := newRequest(http.MethodPost, "/fso?path=/ignored.bin&informProgress=true", strings.NewReader("hello"), testAPIKey)
	r.Header.Set("X-Upload-Id", "42")
	if err := h.ServeHTTP(httptest.NewRecorder(), r, &origin{status: 201}); err != nil {
		t.Fatal(err)
	}
	if snap := lookup(h, "uploads/42"); snap.State != progress.Completed || snap.Received != 5 {
		t.Errorf("record under the template's key = %+v", snap)
	}
	if snap := lookup(h, "/ignored.bin"); snap.Found {
		t.Errorf("record under the path although a key template is set: %+v", snap)
	}
}

// statusRequest asks h about key as the shard API does.
func statusRequest(t *testing.T, h *Handler, method, target, apiKey string) (*httptest.ResponseRecorder, bool) {
	t.Helper()
	called := false
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		called = true
		w.WriteHeader(http.StatusTeapot)
		return nil
	})
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, newRequest(method, target, nil, apiKey), next); err != nil {
		t.Fatalf("status request: %v", err)
	}
	return w, called
}

func TestStatusEndpoint(t *testing.T) {
	h := newUploadHandler(t)
	body := randomBytes(t, 200000)

	// While the upload runs, the status shows the bytes read so far.
	var during *httptest.ResponseRecorder
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if _, err := io.ReadFull(r.Body, make([]byte, 65536)); err != nil {
			return err
		}
		during, _ = statusRequest(t, h, http.MethodGet, "/progress?path=/s.bin", testAPIKey)
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
		return nil
	})
	if err := h.ServeHTTP(httptest.NewRecorder(), uploadRequest("/s.bin", body), next); err != nil {
		t.Fatal(err)
	}
	if want := `{"total_size":200000,"uploaded":65536,"status":"uploading","error":""}` + "\n"; during.Body.String() != want {
		t.Errorf("status during the upload = %q, want %q", during.Body, want)
	}

	w, called := statusRequest(t, h, http.MethodGet, "/progress?path=/s.bin", testAPIKey)
	if called {
		t.Error("the status request reached next")
	}
	if w.Code != http.StatusOK {
		t.Errorf("status code %d", w.Code)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	var st shard.Status
	if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil {
		t.Fatalf("reply %q is not JSON: %v", w.Body, err)
	}
	if want := (shard.Status{TotalSize: 200000, Uploaded: 200000, Status: "completed"}); st != want {
		t.Errorf("status = %+v, want %+v", st, want)
	}
	if w.Header().Get("Content-Length") != fmt.Sprint(w.Body.Len()) {
		t.Errorf("Content-Length %q for a %d byte body", w.Header().Get("Content-Length"), w.Body.Len())
	}

	// Another owner, and an unknown path, see not_exist.
	for _, tc := range []struct{ target, key string }{
		{"/progress?path=/s.bin", "other-key"},
		{"/progress?path=/never.bin", testAPIKey},
	} {
		w, _ := statusRequest(t, h, http.MethodGet, tc.target, tc.key)
		if want := `{"total_size":0,"uploaded":0,"status":"not_exist","error":""}` + "\n"; w.Code != 200 || w.Body.String() != want {
			t.Errorf("%s as %s = %d %q, want 200 %q", tc.target, tc.key, w.Code, w.Body, want)
		}
	}

	// HEAD is served too, and without a body reaching next.
	if w, called := statusRequest(t, h, http.MethodHead, "/progress?path=/s.bin", testAPIKey); called || w.Code != 200 {
		t.Errorf("HEAD: code %d, next called %v", w.Code, called)
	}
}

func TestStatusEndpointErrors(t *testing.T) {
	h := newUploadHandler(t)
	tests := []struct {
		name, method, target, apiKey string
		code                         int
		body                         string
	}{
		{"no credential", "GET", "/progress?path=/a", "", 401, `{"error":"missing x-user-api-key header"}`},
		{"no path", "GET", "/progress", testAPIKey, 400, `{"error":"missing query parameter: path"}`},
		{"relative path", "GET", "/progress?path=a", testAPIKey, 400, `{"error":"path must start with /"}`},
		{"bad updatingRate", "GET", "/progress?path=/a&updatingRate=0", testAPIKey, 400, ""},
		{"POST", "POST", "/progress?path=/a", testAPIKey, 405, `{"error":"method not allowed: use GET, HEAD"}`},
		{"PUT", "PUT", "/progress?path=/a", testAPIKey, 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, called := statusRequest(t, h, tt.method, tt.target, tt.apiKey)
			if called {
				t.Error("a refused status request reached next")
			}
			if w.Code != tt.code {
				t.Errorf("code %d, want %d (%s)", w.Code, tt.code, w.Body)
			}
			if tt.body != "" && strings.TrimSpace(w.Body.String()) != tt.body {
				t.Errorf("body %q, want %q", w.Body, tt.body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if tt.code == http.StatusMethodNotAllowed {
				if allow := w.Header().Get("Allow"); allow != "GET, HEAD" {
					t.Errorf("Allow = %q, want \"GET, HEAD\"", allow)
				}
			}
		})
	}
}

// TestUploadFinishedBeforeClientSeesHeader: a client that polls the moment
// it has the origin's answer must see its upload completed.
func TestUploadFinishedBeforeClientSeesHeader(t *testing.T) {
	h := newUploadHandler(t)
	var atClient, afterWriteHeader progress.Snapshot
	c := newClientSide()
	c.onHeader = func(int) { atClient = lookup(h, "/early.bin") }
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
		afterWriteHeader = lookup(h, "/early.bin")
		_, _ = w.Write([]byte("done"))
		return nil
	})
	if err := h.ServeHTTP(c, uploadRequest("/early.bin", randomBytes(t, 777)), next); err != nil {
		t.Fatal(err)
	}
	if atClient.State != progress.Completed || atClient.Received != 777 {
		t.Errorf("when the status line reached the client, the record was %s with %d bytes; want completed with 777", atClient.State, atClient.Received)
	}
	if afterWriteHeader.State != progress.Completed || afterWriteHeader.HTTPStatus != http.StatusCreated {
		t.Errorf("right after WriteHeader(201) the record was %s (HTTP %d), want completed 201", afterWriteHeader.State, afterWriteHeader.HTTPStatus)
	}
}

func TestUploadWriterKeepsFlusher(t *testing.T) {
	h := newUploadHandler(t)
	w := httptest.NewRecorder()
	var flushErr error
	var wasUploadWriter bool
	next := caddyhttp.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) error {
		_, wasUploadWriter = rw.(*uploadWriter)
		_, _ = io.Copy(io.Discard, r.Body)
		rw.WriteHeader(http.StatusCreated)
		_, _ = rw.Write([]byte("x"))
		flushErr = http.NewResponseController(rw).Flush()
		return nil
	})
	if err := h.ServeHTTP(w, uploadRequest("/flush.bin", []byte("abc")), next); err != nil {
		t.Fatal(err)
	}
	if !wasUploadWriter {
		t.Fatal("next did not get the upload writer; the test checks nothing")
	}
	if flushErr != nil {
		t.Errorf("Flush through the upload writer: %v", flushErr)
	}
	if !w.Flushed {
		t.Error("the recorder was not flushed")
	}
}

// TestUploadReplacesRecord: a re-upload to the same key shows the new one.
func TestUploadReplacesRecord(t *testing.T) {
	h := newUploadHandler(t)
	if err := h.ServeHTTP(httptest.NewRecorder(), uploadRequest("/re.bin", randomBytes(t, 100)), &origin{status: 409}); err != nil {
		t.Fatal(err)
	}
	first := lookup(h, "/re.bin")
	r := newRequest(http.MethodPost, "/fso?path=/re.bin&informProgress=true&overwrite=true", bytes.NewReader(randomBytes(t, 300)), testAPIKey)
	if err := h.ServeHTTP(httptest.NewRecorder(), r, &origin{status: 201}); err != nil {
		t.Fatal(err)
	}
	second := lookup(h, "/re.bin")
	if first.State != progress.Failed || second.State != progress.Completed || second.Received != 300 || second.ID == first.ID {
		t.Errorf("first %+v, second %+v; want the second upload's completed record", first, second)
	}
}

func TestUploadTrackerFullPassesUntracked(t *testing.T) {
	h := &Handler{Zone: uniqueZone(t), MaxKeys: 1}
	provisionForTest(t, h)
	// The first upload is still in flight: its key fills the zone.
	first := &origin{status: 201, wait: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- h.ServeHTTP(httptest.NewRecorder(), uploadRequest("/first.bin", []byte("one")), first) }()
	waitFor(t, "the first upload to be tracked", func() bool { return lookup(h, "/first.bin").State == progress.Uploading })

	o := &origin{status: 201}
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, uploadRequest("/second.bin", []byte("two")), o); err != nil {
		t.Fatal(err)
	}
	if string(o.body) != "two" || w.Code != 201 {
		t.Errorf("upload past max_keys did not pass: origin got %q, client %d", o.body, w.Code)
	}
	if snap := lookup(h, "/second.bin"); snap.Found {
		t.Errorf("upload past max_keys has a record: %+v", snap)
	}
	if n := counterValue(t, uploadsUntracked, map[string]string{"zone": h.Zone, "reason": "tracker_full"}); n != 1 {
		t.Errorf("uploads_untracked_total{reason=tracker_full} = %v, want 1", n)
	}
	close(first.wait)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Finished, the first upload's record makes room for the next upload
	// at once, before its retention ends, and is counted as evicted.
	if err := h.ServeHTTP(httptest.NewRecorder(), uploadRequest("/third.bin", []byte("three")), &origin{status: 201}); err != nil {
		t.Fatal(err)
	}
	if snap := lookup(h, "/third.bin"); snap.State != progress.Completed {
		t.Errorf("upload after the first finished = %+v, want completed", snap)
	}
	if snap := lookup(h, "/first.bin"); snap.Found {
		t.Errorf("the finished record still holds its key: %+v", snap)
	}
	if st := h.tracker().Stats(); st.Evicted != 1 {
		t.Errorf("Evicted = %d, want 1", st.Evicted)
	}
}
