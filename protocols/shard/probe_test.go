package shard

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// TestProbeCacheDoesNotHoldTheRequest checks that a cached probe answer
// keeps a copy of its key, not the status request's megabyte-long URL the
// key was cut from, for the answer's lifetime.
func TestProbeCacheDoesNotHoldTheRequest(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		w.WriteHeader(http.StatusOK)
	}))
	defer origin.Close()
	p := &ExistsProbe{URL: origin.URL + "/fso?path={key}"}
	if err := p.provision(); err != nil {
		t.Fatal(err)
	}
	defer p.client.CloseIdleConnections()

	line := strings.Repeat("0123456789", 100_000)
	freed := make(chan struct{})
	runtime.AddCleanup(unsafe.StringData(line), func(ch chan struct{}) { close(ch) }, freed)
	r := httptest.NewRequest(http.MethodGet, "/progress", nil)
	if s := p.lookup(r, progress.Anyone, line[100:110]); s.State != progress.Completed || s.Total != 5 {
		t.Fatalf("lookup = %+v, want completed with 5 bytes", s)
	}
	line = ""

	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		runtime.GC()
		select {
		case <-freed:
			if len(p.cache.m) != 1 {
				t.Fatalf("the cache holds %d answers, want 1", len(p.cache.m))
			}
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatal("the status request's URL is still held by the probe cache")
}
