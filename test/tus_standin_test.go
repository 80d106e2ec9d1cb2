package test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/tusstandin"
)

// The tests here put internal/tusstandin behind Caddy rather than tusd:
// tusd implements neither the expiration nor the checksum extension, and
// those are answers (Upload-Expires, 460) the product reads.

// standinOrigin is a tus stand-in on a loopback port, behind Caddy with
// `protocol tus`, and a client that notes every request it sends.
type standinOrigin struct {
	*tusstandin.Server
	e *env
	c *tusClient
}

// startStandin serves a stand-in made with opts, through wrap if it is not
// nil, and loads Caddy in front of it.
func startStandin(t *testing.T, opts tusstandin.Options, wrap func(http.Handler) http.Handler) *standinOrigin {
	t.Helper()
	s := tusstandin.New(opts)
	var h http.Handler = s
	if wrap != nil {
		h = wrap(s)
	}
	ts := httptest.NewServer(h) // on 127.0.0.1
	t.Cleanup(ts.Close)
	e := newEnv(t, "")
	e.load("protocol tus", strings.TrimPrefix(ts.URL, "http://"))
	return &standinOrigin{Server: s, e: e, c: e.tus(t)}
}

// create makes an upload of length bytes named video.mp4 and returns its
// path and the creation answer's Upload-Expires.
func (o *standinOrigin) create(t *testing.T, length int) (string, string) {
	t.Helper()
	resp, err := o.c.do(context.Background(), http.MethodPost, "/files/", nil, 0, map[string]string{
		"Upload-Length":   fmt.Sprint(length),
		"Upload-Metadata": "filename dmlkZW8ubXA0",
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("creation answered %d", resp.StatusCode)
	}
	return resp.Header.Get("Location"), resp.Header.Get("Upload-Expires")
}

// patch sends b from offset, with hdr, and fails the test unless the
// stand-in answers want.
func (o *standinOrigin) patch(t *testing.T, up string, offset int, b []byte, want int, hdr map[string]string) {
	t.Helper()
	code, _, err := o.c.patch(context.Background(), up, int64(offset), bytes.NewReader(b), int64(len(b)), hdr)
	if err != nil {
		t.Fatal(err)
	}
	if code != want {
		t.Fatalf("PATCH at %d answered %d, want %d", offset, code, want)
	}
}

// status is the product's status of up, failing the test unless it is 200.
func (o *standinOrigin) status(t *testing.T, up string) (tusReply, string) {
	t.Helper()
	code, r, body := o.e.tusStatus(up)
	if code != http.StatusOK {
		t.Fatalf("status of %s: %d %s", up, code, body)
	}
	return r, body
}

// checkRequests fails the test unless the stand-in got as many requests as
// the client sent: the proxy asked the origin nothing of its own.
func (o *standinOrigin) checkRequests(t *testing.T) {
	t.Helper()
	if got, sent := o.Requests(), len(o.c.requests()); got != int64(sent) {
		t.Errorf("the stand-in got %d requests, the client sent %d: %v", got, sent, o.c.requests())
	}
}

// expectHolds fails the test unless the stand-in holds src for the upload
// at up.
func (o *standinOrigin) expectHolds(t *testing.T, up string, src []byte) {
	t.Helper()
	if data, ok := o.Data(path.Base(up)); !ok || !bytes.Equal(data, src) {
		t.Fatalf("the stand-in holds %d bytes (%v) for %s, not the source", len(data), ok, up)
	}
}

// standinClock is a stand-in's clock, which a test sets by hand.
type standinClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *standinClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// standinSHA1 is an Upload-Checksum of b.
func standinSHA1(b []byte) string {
	sum := sha1.Sum(b)
	return "sha1 " + base64.StdEncoding.EncodeToString(sum[:])
}

// The creation answer's Upload-Expires shows as expires_at: the same
// instant, in RFC 3339 UTC, and it stays through a PATCH.
func TestTusStandinExpiresAt(t *testing.T) {
	o := startStandin(t, tusstandin.Options{Expiry: time.Hour}, nil)
	up, hdr := o.create(t, 10)
	sent, err := http.ParseTime(hdr)
	if err != nil {
		t.Fatalf("creation answered Upload-Expires %q: %v", hdr, err)
	}
	if d := time.Until(sent); d < 59*time.Minute || d > time.Hour {
		t.Fatalf("Upload-Expires %q is %v away, want about 1h", hdr, d)
	}
	check := func(when string) {
		t.Helper()
		r, body := o.status(t, up)
		got, err := time.Parse(time.RFC3339, r.ExpiresAt)
		if err != nil || !strings.HasSuffix(r.ExpiresAt, "Z") || !got.Equal(sent) {
			t.Fatalf("%s: expires_at %q, want %s in RFC 3339 UTC: %s", when, r.ExpiresAt, sent.UTC().Format(time.RFC3339), body)
		}
		if r.Status == "expired" || r.Error != "" {
			t.Fatalf("%s: %s", when, body)
		}
	}
	check("after creation")
	o.patch(t, up, 0, []byte("hello"), http.StatusNoContent, nil)
	check("after a PATCH")
	o.checkRequests(t)
}

// An upload whose Upload-Expires has passed (the stand-in's clock is two
// hours behind, so it deems the upload alive itself) shows as expired with
// why, and stays so; a watcher that comes later gets that state and a
// normal close.
func TestTusStandinExpiredByOrigin(t *testing.T) {
	clock := &standinClock{t: time.Now().Add(-2 * time.Hour)}
	o := startStandin(t, tusstandin.Options{Expiry: time.Hour, Now: clock.Now}, nil)
	up, hdr := o.create(t, 10)
	sent, err := http.ParseTime(hdr)
	if err != nil || !sent.Before(time.Now()) {
		t.Fatalf("creation answered Upload-Expires %q (%v), want a time past", hdr, err)
	}
	for _, when := range []string{"first look", "second look"} {
		r, body := o.status(t, up)
		if r.Status != "expired" || r.Error == "" || r.Offset != 0 || r.Length != 10 || r.ExpiresAt != sent.UTC().Format(time.RFC3339) {
			t.Fatalf("%s: %s", when, body)
		}
	}
	w := o.e.watchTus(up)
	msgs, code := w.all(t, 10*time.Second)
	if len(msgs) != 1 || msgs[0].Status != "expired" || msgs[0].Error == "" || code != websocket.StatusNormalClosure {
		t.Fatalf("late watcher got %+v, then close %d; want one expired message and 1000", msgs, code)
	}
	o.checkRequests(t)
}

// withoutCreationExpiry serves h but leaves Upload-Expires out of creation
// answers: an origin that tells an upload's deadline only once bytes come,
// so that the upload can be watched before it is known to have expired.
func withoutCreationExpiry(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w = expiryHider{w}
		}
		h.ServeHTTP(w, r)
	})
}

// expiryHider drops Upload-Expires from the answer it writes.
type expiryHider struct{ http.ResponseWriter }

func (w expiryHider) WriteHeader(code int) {
	w.Header().Del("Upload-Expires")
	w.ResponseWriter.WriteHeader(code)
}

// A watcher of a live upload sees it expire: a PATCH answer carries an
// Upload-Expires that has passed, and the watcher gets the final expired
// state, then a normal close.
func TestTusStandinWatcherSeesExpiry(t *testing.T) {
	clock := &standinClock{t: time.Now().Add(-2 * time.Hour)}
	o := startStandin(t, tusstandin.Options{Expiry: time.Hour, Now: clock.Now}, withoutCreationExpiry)
	up, hdr := o.create(t, 10)
	if hdr != "" {
		t.Fatalf("creation answered Upload-Expires %q, want none", hdr)
	}
	w := o.e.watchTus(up)
	if r := w.next(t); r.Status != "created" || r.ExpiresAt != "" || r.Error != "" {
		t.Fatalf("watcher's first message %+v", r)
	}

	o.patch(t, up, 0, []byte("hello"), http.StatusNoContent, nil)
	msgs, code := w.all(t, 10*time.Second)
	if len(msgs) == 1 {
		t.Fatalf("watcher closed with %d and no message after the PATCH", code)
	}
	last := msgs[len(msgs)-1]
	// The deadline the PATCH answer said: the stand-in's creation time
	// plus its expiry, to the second as HTTP dates go.
	deadline := clock.Now().Add(time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
	if last.Status != "expired" || last.Error == "" || last.ExpiresAt != deadline || last.Offset != 5 || code != websocket.StatusNormalClosure {
		t.Fatalf("watcher's last message %+v, close %d; want expired at %s with why, offset 5, then 1000", last, code, deadline)
	}
	if r, body := o.status(t, up); r.Status != "expired" || r.Error == "" {
		t.Fatalf("status after the watcher closed: %s", body)
	}
	o.checkRequests(t)
}

// A HEAD answered 410 Gone (the stand-in expired the upload) fails the
// upload, with why, and keeps the offset the stand-in had acknowledged.
func TestTusStandinGoneIsFailed(t *testing.T) {
	o := startStandin(t, tusstandin.Options{}, nil)
	up, _ := o.create(t, 10)
	o.patch(t, up, 0, []byte("hello"), http.StatusNoContent, nil)
	if r, body := o.status(t, up); r.Status != "paused" || r.Offset != 5 {
		t.Fatalf("after a PATCH: %s", body)
	}
	if !o.Expire(path.Base(up)) {
		t.Fatalf("the stand-in has no upload %s", up)
	}
	resp, err := o.c.do(context.Background(), http.MethodHead, up, nil, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusGone {
		t.Fatalf("HEAD answered %d, want 410", resp.StatusCode)
	}
	r, body := o.status(t, up)
	if r.Status != "failed" || !strings.Contains(r.Error, "410") || r.Offset != 5 || r.Received != 5 {
		t.Fatalf("after HEAD 410: %s", body)
	}
	o.checkRequests(t)
}

// A PATCH whose Upload-Checksum does not match is refused 460 and its bytes
// discarded: the status keeps the offset, shows nothing more received and
// says why; the same bytes with the right checksum complete the upload.
func TestTusStandinChecksumMismatch(t *testing.T) {
	o := startStandin(t, tusstandin.Options{}, nil)
	const size, half = 256 << 10, 100 << 10
	src := pattern(size)
	up, _ := o.create(t, size)
	o.patch(t, up, 0, src[:half], http.StatusNoContent, map[string]string{"Upload-Checksum": standinSHA1(src[:half])})

	o.patch(t, up, half, src[half:], 460, map[string]string{"Upload-Checksum": standinSHA1(src[:half])})
	r, body := o.status(t, up)
	if r.Status != "paused" || r.Offset != half || r.Received != half || r.Length != size ||
		!strings.Contains(r.Error, "460") || !strings.Contains(strings.ToLower(r.Error), "checksum") {
		t.Fatalf("after 460: %s", body)
	}

	o.patch(t, up, half, src[half:], http.StatusNoContent, map[string]string{"Upload-Checksum": standinSHA1(src[half:])})
	r, body = o.status(t, up)
	if r.Status != "completed" || r.Offset != size || r.Received != size || !strings.Contains(body, `"error":""`) {
		t.Fatalf("after the right checksum: %s", body)
	}
	o.expectHolds(t, up, src)
	o.checkRequests(t)
}

// A PATCH at the wrong offset is refused 409: the status says so and the
// upload goes on; the next PATCH, at the right offset, clears the error.
func TestTusStandinConflict(t *testing.T) {
	o := startStandin(t, tusstandin.Options{}, nil)
	const size, half = 64 << 10, 20 << 10
	src := pattern(size)
	up, _ := o.create(t, size)
	o.patch(t, up, 0, src[:half], http.StatusNoContent, nil)

	o.patch(t, up, 7, src[7:half+7], http.StatusConflict, nil)
	r, body := o.status(t, up)
	if r.Status != "paused" || r.Offset != half || r.Received != half || !strings.Contains(r.Error, "409") {
		t.Fatalf("after 409: %s", body)
	}

	o.patch(t, up, half, src[half:], http.StatusNoContent, nil)
	r, body = o.status(t, up)
	if r.Status != "completed" || r.Offset != size || r.Error != "" {
		t.Fatalf("after the right offset: %s", body)
	}
	o.expectHolds(t, up, src)
	o.checkRequests(t)
}
