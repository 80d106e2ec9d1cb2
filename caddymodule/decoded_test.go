package caddymodule

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"testing"
)

// A session protocol reads a gzipped answer inflated (the origin compresses
// for a client that accepts it), also when only its start was kept.
func TestDecodedAnswer(t *testing.T) {
	plain := bytes.Repeat([]byte(`{"status":"DONE","data":"0123456789abcdef"}`), 4000)
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(plain)
	zw.Close()
	gz := http.Header{"Content-Encoding": {"gzip"}}

	if got := decoded(gz, zb.Bytes()); !bytes.Equal(got, plain[:min(len(plain), maxCapture)]) {
		t.Fatalf("whole gzip answer: %d bytes, want the first %d of the plain one", len(got), min(len(plain), maxCapture))
	}
	cut := decoded(gz, zb.Bytes()[:zb.Len()/2])
	if len(cut) == 0 || !bytes.HasPrefix(plain, cut) {
		t.Fatalf("the start of a gzip answer inflated to %d bytes, not a start of the plain one", len(cut))
	}
	if got := decoded(http.Header{}, plain[:10]); !bytes.Equal(got, plain[:10]) {
		t.Fatal("an answer that is not gzipped changed")
	}
	if got := decoded(gz, []byte("not gzip")); got != nil {
		t.Fatalf("a broken gzip answer read as %q", got)
	}
}
