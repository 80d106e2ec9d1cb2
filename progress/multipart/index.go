package multipart

import "bytes"

// sampledDelimMin is the shortest delimiter searched for with indexSampled;
// shorter ones are searched for with bytes.Index, which is faster for them
// (the sampling stride is the delimiter's length). With random content,
// per 3 MiB: bytes.Index about 200 µs for any length; indexSampled about
// 300 µs at 8 bytes, 215 at 12, 170 at 16, 75 at 42 (a browser's
// boundary) and 60 at 64 (Go's).
const sampledDelimMin = 16

// byteSet is a set of bytes, as a bitmap.
type byteSet [8]uint32

func (s *byteSet) add(c byte)      { s[c>>5] |= 1 << (c & 31) }
func (s *byteSet) has(c byte) bool { return s[c>>5]&(1<<(c&31)) != 0 }

// indexSampled returns the index of the first d in p, or -1, as
// bytes.Index(p, d) does; in must hold every byte of d.
//
// bytes.Index looks for d's first byte with IndexByte and checks each one
// it finds. A delimiter starts with CR, which random content (any
// compressed file) holds every 256 bytes, so it stops every 256 bytes, at
// the cost of a call each time, and never switches to its SIMD search, as
// too few of the stops are false. indexSampled instead looks at every
// len(d)-th byte: every delimiter covers one of them, so when that byte is
// not one of d's, none of the len(d) starts before it can hold d and they
// are all skipped at once. Where the sample cannot rule them out,
// IndexByte finds the next possible start, as in bytes.Index, and the
// sampling resumes after it. So it is never much slower than bytes.Index,
// whatever the content, and on random content with a long boundary it
// looks at one byte in len(d) most of the time.
func indexSampled(p, d []byte, in *byteSet) int {
	n := len(d)
	// No occurrence of d starts before lo.
	lo := 0
	for lo+n <= len(p) {
		if !in.has(p[lo+n-1]) {
			lo += n
			continue
		}
		k := bytes.IndexByte(p[lo:len(p)-n+1], d[0])
		if k < 0 {
			return -1
		}
		lo += k
		// The last byte first: a CR is no news, and the call costs more.
		if p[lo+n-1] == d[n-1] && bytes.Equal(p[lo:lo+n], d) {
			return lo
		}
		lo++
	}
	return -1
}
