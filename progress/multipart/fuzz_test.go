package multipart

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"testing"
)

// mpFuzzBoundary is short so that mutations make and break delimiters often.
const mpFuzzBoundary = "fzb"

// FuzzMultipart feeds a body to the scanner in chunks of split+1 bytes. The
// scanner must not panic, must not depend on how the body is split, must
// keep its progress consistent between writes, and must agree with
// mime/multipart on every body that reader accepts, except where the scanner
// hit one of its limits or where mime/multipart is more lenient than RFC 2046
// (mpMimeQuirk).
func FuzzMultipart(f *testing.F) {
	for _, b := range mpFuzzSeeds(f) {
		for _, split := range []uint8{0, 2, 15, 255} {
			f.Add(b, split)
		}
	}
	f.Fuzz(mpOracle)
}

// mpOracle is the property FuzzMultipart checks, for one body and split.
func mpOracle(t *testing.T, body []byte, split uint8) {
	t.Helper()
	m := NewScanner(mpFuzzBoundary)
	var last Progress
	var sizes int64
	for rest := body; len(rest) > 0; {
		n := min(int(split)+1, len(rest))
		m.Write(rest[:n])
		rest = rest[n:]
		p := m.Progress()
		mpConsistent(t, last, p, len(body)-len(rest))
		last = p
	}
	got := m.Progress()
	for _, f := range got.Files {
		sizes += f.Size
	}
	if got.Current != nil {
		sizes += got.Current.Size
	}
	if sizes > int64(len(body)) {
		t.Fatalf("sizes add up to %d of a %d-byte body", sizes, len(body))
	}

	// The split must not matter.
	whole := NewScanner(mpFuzzBoundary)
	whole.Write(body)
	if w := whole.Progress(); !reflect.DeepEqual(w, got) || whole.why != m.why {
		t.Fatalf("in chunks of %d: %s (%s)\nat once: %s (%s)", int(split)+1, mpString(got), m.why, mpString(w), whole.why)
	}

	// Nor how the delimiter is searched for: the fuzz boundary is short
	// enough for bytes.Index; sampling must read the body the same.
	sampled := NewScanner(mpFuzzBoundary)
	sampled.sampled = true
	for rest := body; len(rest) > 0; {
		n := min(int(split)+1, len(rest))
		sampled.Write(rest[:n])
		rest = rest[n:]
	}
	if s := sampled.Progress(); !reflect.DeepEqual(s, got) || sampled.why != m.why {
		t.Fatalf("searched by sampling: %s (%s)\nwith bytes.Index: %s (%s)", mpString(s), sampled.why, mpString(got), m.why)
	}

	files, ok := mpMimeFiles(body, mpFuzzBoundary)
	if !ok || mpMimeQuirk(body, mpFuzzBoundary) {
		return
	}
	if got.Broken {
		if m.why != multipartLimit {
			t.Fatalf("mime/multipart reads %+v but the scanner broke (%s): %s", files, m.why, mpString(got))
		}
		return
	}
	if !got.Done || got.Current != nil || !mpSameFiles(got.Files, files) {
		t.Fatalf("mime/multipart reads %+v; the scanner: %s", files, mpString(got))
	}
}

// TestMultipartScannerMutatedBodies runs the fuzz oracle over bodies made by
// splicing delimiter-like and header-like pieces into valid bodies, which
// reach the interesting cases far more often than byte-level mutation does.
func TestMultipartScannerMutatedBodies(t *testing.T) {
	seeds := mpFuzzSeeds(t)
	pieces := []string{
		"\r\n", "\n", "\r", "-", "--", " ", "\t", "x", ":", "\x00",
		"--" + mpFuzzBoundary, "\r\n--" + mpFuzzBoundary, "\n--" + mpFuzzBoundary,
		"\r\n--" + mpFuzzBoundary + "\r\n", "\r\n--" + mpFuzzBoundary + "--", "--" + mpFuzzBoundary + "--\r\n",
		"\r\n\r\n", "\n\n", "--" + mpFuzzBoundary[:2],
		"Content-Disposition: form-data; name=\"a\"; filename=\"b.txt\"\r\n",
		"Content-Disposition: form-data; name=a; filename*=UTF-8''%C3%A9\n",
		"Content-Type: text/x\r\n", " folded\r\n",
	}
	r := rand.New(rand.NewPCG(2046, 7578))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for i := range n {
		body := append([]byte(nil), seeds[r.IntN(len(seeds))]...)
		for range r.IntN(4) {
			at := r.IntN(len(body) + 1)
			switch r.IntN(3) {
			case 0: // insert
				body = append(body[:at], append([]byte(pieces[r.IntN(len(pieces))]), body[at:]...)...)
			case 1: // delete
				body = append(body[:at], body[min(at+1+r.IntN(8), len(body)):]...)
			case 2: // replace
				end := min(at+1+r.IntN(8), len(body))
				body = append(body[:at], append([]byte(pieces[r.IntN(len(pieces))]), body[end:]...)...)
			}
		}
		split := uint8(r.IntN(256))
		if i%2 == 0 {
			split = uint8(r.IntN(8))
		}
		func() {
			defer func() {
				if t.Failed() {
					t.Logf("body %q, split %d", body, split)
				}
			}()
			mpOracle(t, body, split)
		}()
	}
}

// mpConsistent checks what Progress may report after what it reported
// before, with n bytes written.
func mpConsistent(t *testing.T, last, p Progress, n int) {
	t.Helper()
	bad := func(what string) {
		t.Helper()
		t.Fatalf("after %d bytes: %s: %s after %s", n, what, mpString(p), mpString(last))
	}
	switch {
	case p.Done && p.Broken:
		bad("done and broken")
	case last.Done && !p.Done, last.Broken && !p.Broken:
		bad("no longer done or broken")
	case p.Number < last.Number || len(p.Files) < len(last.Files):
		bad("went back")
	case !mpSameFiles(p.Files[:len(last.Files)], last.Files):
		bad("finished files changed")
	case p.Current == nil && p.Number != len(p.Files), p.Current != nil && p.Number != len(p.Files)+1:
		bad("Number is not the number of files so far")
	case p.Done && p.Current != nil:
		bad("done with a current file")
	case p.Current != nil && p.Current.Size < 0:
		bad("negative size")
	case last.Current != nil && p.Number == last.Number && p.Current != nil && p.Current.Size < last.Current.Size:
		bad("size went back")
	case last.Current != nil && p.Number == last.Number && p.Current == nil && p.Files[len(p.Files)-1].Size < last.Current.Size:
		bad("finished smaller than it was")
	}
}

// mpMimeQuirk reports whether body is one where mime/multipart is more
// lenient than RFC 2046, and than the scanner:
//
//   - Before the first delimiter line it skips a line that starts with
//     "--"+boundary+"--" but goes on with something other than padding; the
//     scanner takes that for a closing delimiter (there is no such line in
//     RFC 2046 syntax, and "--"+boundary+"--" alone is what browsers send for
//     an empty form).
//   - After it, it takes a delimiter ("\r\n--"+boundary, "\n--"+boundary in
//     a body with bare line feeds, or "--"+boundary right after a part's
//     header block) followed by anything but "--", spaces, tabs or a line
//     break for content; RFC 2046 does not allow content to contain the
//     delimiter, and the scanner takes it for one and breaks at what follows.
//     (This counts such a delimiter in a header block too, which is a little
//     wider than needed.)
func mpMimeQuirk(body []byte, boundary string) bool {
	// mime/multipart's preamble: lines until a delimiter line or a final one.
	dash := []byte("--" + boundary)
	from := -1 // where the line feed that ends the first delimiter line is
	lf := false
	for at := 0; at < len(body) && from < 0; {
		line := body[at:]
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line = line[:i+1]
		}
		at += len(line)
		if !bytes.HasPrefix(line, dash) {
			continue
		}
		after := line[len(dash):]
		if pad := bytes.TrimLeft(after, " \t"); string(pad) == "\r\n" || string(pad) == "\n" {
			from = at - 1
			lf = string(pad) == "\n"
		} else if bytes.HasPrefix(after, []byte("--")) {
			pad := bytes.TrimLeft(after[2:], " \t")
			return len(pad) != 0 && string(pad) != "\r\n"
		}
	}
	if from < 0 {
		return false
	}

	nlDash := []byte("\n--" + boundary)
	for at := from; ; {
		i := bytes.Index(body[at:], nlDash)
		if i < 0 || at+i+len(nlDash) == len(body) {
			return false
		}
		// In a body with CRLFs, a delimiter is "\r\n--"+boundary, or
		// "--"+boundary after the empty line that ends a header block.
		nl := at + i
		at = nl + len(nlDash)
		if !lf && body[nl-1] != '\r' && body[nl-1] != '\n' {
			continue
		}
		rest := body[at:]
		switch c := rest[0]; {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
		case c == '-' && (len(rest) == 1 || rest[1] == '-'):
		default:
			return true
		}
	}
}

// mpFuzzSeeds are bodies to start fuzzing from.
func mpFuzzSeeds(t testing.TB) [][]byte {
	const b = mpFuzzBoundary
	cd := func(name, file string) string {
		return "Content-Disposition: form-data; name=\"" + name + "\"; filename=\"" + file + "\"\r\n"
	}
	seeds := [][]byte{
		mpBuild(t, "seed", b, []mpPart{
			{field: "title", content: []byte("hi")},
			{field: "a", file: "a.txt", ctype: "text/plain", content: []byte("hello\r\n--fz\r\n")},
			{field: "b", file: "b.bin", content: []byte("--fz")},
			{field: "c", file: "c.bin"},
		}).body,
		mpBuild(t, "seed", b, []mpPart{
			{field: "x", file: "naïve.txt", ctype: "application/octet-stream", content: []byte("\r\n\r\n-\r")},
		}).body,
		mpBuild(t, "seed", b, nil).body,
		[]byte("preamble\r\n--fzb \t\r\n" + cd("f", "a") + "Content-Type: text/x\r\n\r\nabc\r\n--fzb\r\n" + cd("g", "b") + "\r\n\r\n--fzb--\r\nepilogue"),
		[]byte("--fzb\n" + cd("f", "a") + "\nabc\r\n--fzb\nContent-Disposition: form-data; name=g\n\n--fzb--\n"),
		[]byte("--fzb\r\nContent-Disposition: attachment; filename*=UTF-8''%C3%A9t%C3%A9.txt\r\nContent-Type: text/plain;\r\n charset=utf-8\r\n\r\n\xe9t\xe9\r\n--fzb--"),
		[]byte("--fzb\r\n\r\n--fzb\r\n" + cd("f", "") + "\r\nx\r\n--fzb--"),
	}
	return seeds
}
