package multipart

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

func delimSet(d []byte) *byteSet {
	var s byteSet
	for _, c := range d {
		s.add(c)
	}
	return &s
}

// TestIndexSampled puts a delimiter at every position of contents that let
// the samples skip (random bytes), that never do (the delimiter's own
// bytes) and that hold near-delimiters, and compares with bytes.Index.
func TestIndexSampled(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, boundary := range []string{"b", "ab", "0123456789ab", "0123456789abc", "----WebKitFormBoundary7MA4YWxkTrZu0gW", strings.Repeat("z", 70)} {
		d := []byte("\r\n--" + boundary)
		in := delimSet(d)
		random := make([]byte, 3*len(d)+50)
		for i := range random {
			random[i] = byte(r.Uint32())
		}
		own := make([]byte, len(random))
		for i := range own {
			own[i] = d[1+r.IntN(len(d)-1)] // no CR: the delimiter's other bytes
		}
		near := bytes.Repeat(append(d[:len(d)-1:len(d)-1], 'Q'), 4)
		for _, bg := range [][]byte{random, own, near, bytes.Repeat([]byte{'\r'}, len(random))} {
			check := func(p []byte) {
				t.Helper()
				if got, want := indexSampled(p, d, in), bytes.Index(p, d); got != want {
					t.Fatalf("boundary %q: indexSampled = %d, bytes.Index = %d in %q", boundary, got, want, p)
				}
			}
			for n := 0; n <= len(bg); n++ {
				check(bg[:n]) // no delimiter, or one cut at the end
			}
			for at := 0; at+len(d) <= len(bg); at++ {
				p := append([]byte(nil), bg...)
				copy(p[at:], d)
				check(p)
				check(p[:at+len(d)])
				check(p[:at+len(d)-1])
			}
		}
	}
}

// FuzzIndexSampled compares indexSampled with bytes.Index on any content
// and any delimiter, however short.
func FuzzIndexSampled(f *testing.F) {
	f.Add([]byte("xx\r\n--abc\r\n--abcd"), []byte("\r\n--abcd"))
	f.Add([]byte("\r\n--\r\n--\r\n--b"), []byte("\r\n--b"))
	f.Add(bytes.Repeat([]byte("a\r"), 40), []byte("\ra\ra"))
	f.Fuzz(func(t *testing.T, p, d []byte) {
		if len(d) == 0 || len(d) > multipartMaxBoundary+4 {
			return
		}
		if got, want := indexSampled(p, d, delimSet(d)), bytes.Index(p, d); got != want {
			t.Fatalf("indexSampled(%q, %q) = %d, bytes.Index = %d", p, d, got, want)
		}
	})
}
