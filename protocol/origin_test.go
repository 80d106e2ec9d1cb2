package protocol

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// NewOrigin takes a scheme and host only, and gives the module a client of
// its own (its Cleanup must not close the rest of the process's connections).
func TestNewOrigin(t *testing.T) {
	for _, bad := range []string{"", "127.0.0.1:9000", "ftp://h", "http://", "http://h/base", "http://h?x=1", "http://u:p@h"} {
		if _, err := NewOrigin(bad, "where"); err == nil {
			t.Errorf("NewOrigin(%q) accepted", bad)
		}
	}
	o, err := NewOrigin("https://origin.example:8443/", "where")
	if err != nil || o.URL() != "https://origin.example:8443/" {
		t.Fatalf("NewOrigin = %v, %v", o, err)
	}
	if o.client.Transport == nil || o.client.Transport == http.DefaultTransport {
		t.Error("the origin's client shares http.DefaultTransport")
	}
	var none *Origin
	none.Close() // a module without an origin closes nothing
}

// Ask reads a bounded answer, and says when the origin refuses the
// watcher's credential; other failures are errors to retry.
func TestOriginAsk(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			if r.Header.Get("Authorization") != "Bearer t" {
				http.Error(w, "no", http.StatusUnauthorized)
				return
			}
			w.Write([]byte(strings.Repeat("x", 100)))
		case "/gone":
			http.NotFound(w, r)
		default:
			http.Error(w, "down", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	o, err := NewOrigin(srv.URL, "where")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	ctx := context.Background()
	auth := http.Header{"Authorization": {"Bearer t"}}
	if code, body, refused, err := o.Ask(ctx, "/ok", auth, 10); code != 200 || len(body) != 10 || refused != "" || err != nil {
		t.Errorf("ok: %d %q %q %v", code, body, refused, err)
	}
	if _, _, refused, err := o.Ask(ctx, "/ok", http.Header{}, 10); refused != "the origin answered 401 Unauthorized for this session" || err != nil {
		t.Errorf("no credential: %q %v", refused, err)
	}
	if _, _, refused, err := o.Ask(ctx, "/gone", auth, 10); !strings.Contains(refused, "404") || err != nil {
		t.Errorf("gone: %q %v", refused, err)
	}
	if _, _, refused, err := o.Ask(ctx, "/down", auth, 10); refused != "" || err == nil {
		t.Errorf("down: %q %v", refused, err)
	}
}
