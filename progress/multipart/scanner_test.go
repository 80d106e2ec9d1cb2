package multipart

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net/textproto"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// mpPart is one part of a body built with mime/multipart.Writer.
type mpPart struct {
	field    string
	file     string // a file part when not ""
	ctype    string
	content  []byte
	disposed string // Content-Disposition as is, instead of one made of field and file
}

// mpSpan is where a part's content lies in a built body.
type mpSpan struct {
	start, end int
	file       *File // nil for a part that is not a file
}

// mpBody is a body built with mime/multipart.Writer, and where its parts are.
type mpBody struct {
	name     string
	boundary string
	body     []byte
	spans    []mpSpan
	files    []File
	closeEnd int // where "--boundary--" ends
}

// mpBuild writes parts with mime/multipart.Writer and records the layout.
func mpBuild(t testing.TB, name, boundary string, parts []mpPart) mpBody {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if err := w.SetBoundary(boundary); err != nil {
		t.Fatalf("SetBoundary(%q): %v", boundary, err)
	}
	b := mpBody{name: name, boundary: boundary}
	for _, p := range parts {
		h := make(textproto.MIMEHeader)
		params := map[string]string{"name": p.field}
		if p.file != "" {
			params["filename"] = p.file
		}
		cd := mime.FormatMediaType("form-data", params)
		if p.disposed != "" {
			cd = p.disposed
		}
		h.Set("Content-Disposition", cd)
		if p.ctype != "" {
			h.Set("Content-Type", p.ctype)
		}
		pw, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		s := mpSpan{start: buf.Len()}
		if _, err := pw.Write(p.content); err != nil {
			t.Fatal(err)
		}
		s.end = buf.Len()
		if p.file != "" {
			// mime/multipart's Part.FileName drops any directory; Path
			// keeps it.
			f := File{FieldName: p.field, FileName: filepath.Base(p.file), ContentType: p.ctype, Size: int64(len(p.content))}
			if f.FileName != p.file {
				f.Path = p.file
			}
			b.files = append(b.files, f)
			s.file = &f
		}
		b.spans = append(b.spans, s)
	}
	closeStart := buf.Len()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b.body = buf.Bytes()
	b.closeEnd = closeStart + len("\r\n--"+boundary+"--")
	if len(parts) == 0 {
		b.closeEnd = len("\r\n--" + boundary + "--")
	}
	// The bodies are meant to be valid: check with mime/multipart.
	got, ok := mpMimeFiles(b.body, boundary)
	if !ok {
		t.Fatalf("%s: mime/multipart cannot read the body", name)
	}
	if !mpSameFiles(got, b.files) {
		t.Fatalf("%s: mime/multipart reads %+v, want %+v", name, got, b.files)
	}
	return b
}

// mpMimeFiles reads body with mime/multipart, reporting the files and
// whether the reader accepted the whole body.
//
// mime/multipart returns a bare io.EOF, as for the closing delimiter, also
// when the body ends inside a part's header block (textproto's io.EOF is
// passed on). To tell a truncated body from a complete one, the body is read
// again with a line break and a NUL byte after it: after a closing delimiter
// that is epilogue, but inside a header block it is a malformed header line
// or content cut short.
func mpMimeFiles(body []byte, boundary string) ([]File, bool) {
	files, ok := mpMimeRead(body, boundary)
	if !ok {
		return nil, false
	}
	for _, end := range []string{"\r\n\x00", "\n\x00"} {
		if _, ok := mpMimeRead(append(body[:len(body):len(body)], end...), boundary); ok {
			return files, true
		}
	}
	return nil, false
}

// mpMimeRead reads body with mime/multipart. It uses NextRawPart, because
// NextPart decodes quoted-printable content and the scanner counts bytes as
// sent.
func mpMimeRead(body []byte, boundary string) ([]File, bool) {
	r := multipart.NewReader(bytes.NewReader(body), boundary)
	var files []File
	for {
		p, err := r.NextRawPart()
		if err == io.EOF { // exactly io.EOF: a wrapped one means truncated
			return files, true
		}
		if err != nil {
			return nil, false
		}
		data, err := io.ReadAll(p)
		if err != nil {
			return nil, false
		}
		if name := p.FileName(); name != "" {
			_, params, _ := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
			path := params["filename"]
			if path == name {
				path = ""
			}
			files = append(files, File{
				FieldName:   p.FormName(),
				FileName:    name,
				Path:        path,
				ContentType: p.Header.Get("Content-Type"),
				Size:        int64(len(data)),
			})
		}
	}
}

func mpSameFiles(a, b []File) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}

// mpHeld is the number of content bytes the scanner holds back when the
// current part's content so far is c: the longest suffix of "\r\n"+c that is
// a proper prefix of "\r\n--"+boundary, but no more than c.
func mpHeld(c []byte, boundary string) int {
	delim := "\r\n--" + boundary
	x := append([]byte("\r\n"), c...)
	for k := min(len(delim)-1, len(x)); k > 0; k-- {
		if bytes.HasSuffix(x, []byte(delim[:k])) {
			return min(k, len(c))
		}
	}
	return 0
}

// want is what the scanner must report after the first n bytes of b.
func (b mpBody) want(n int) Progress {
	d := len("\r\n--" + b.boundary)
	var p Progress
	for _, s := range b.spans {
		if s.file == nil || n < s.start {
			continue
		}
		p.Number++
		if n >= s.end+d {
			p.Files = append(p.Files, *s.file)
			continue
		}
		f := *s.file
		c := b.body[s.start:n]
		f.Size = int64(len(c) - mpHeld(c, b.boundary))
		p.Current = &f
	}
	p.Done = n >= b.closeEnd
	return p
}

func mpCheck(t *testing.T, what string, got, want Progress) {
	t.Helper()
	if got.Number != want.Number || got.Done != want.Done || got.Broken != want.Broken ||
		!mpSameFiles(got.Files, want.Files) ||
		(got.Current == nil) != (want.Current == nil) ||
		got.Current != nil && *got.Current != *want.Current {
		t.Fatalf("%s:\n got %s\nwant %s", what, mpString(got), mpString(want))
	}
}

func mpString(p Progress) string {
	cur := "nil"
	if p.Current != nil {
		cur = fmt.Sprintf("%+v", *p.Current)
	}
	return fmt.Sprintf("{Current:%s Number:%d Files:%+v Done:%v Broken:%v}", cur, p.Number, p.Files, p.Done, p.Broken)
}

// mpFeed writes body to a new scanner in chunks of the sizes next returns.
func mpFeed(t testing.TB, boundary string, body []byte, next func() int) *Scanner {
	t.Helper()
	m := NewScanner(boundary)
	if m == nil {
		t.Fatalf("NewScanner(%q) = nil", boundary)
	}
	for len(body) > 0 {
		n := min(next(), len(body))
		m.Write(body[:n])
		body = body[n:]
	}
	return m
}

func mpEvery(n int) func() int { return func() int { return n } }

// mpRandomContent returns n random bytes that never contain "\r\n--"+boundary
// (a body with that in a part cannot be written).
func mpRandomContent(seed uint64, n int, boundary string) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for {
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if !bytes.Contains(b, []byte("\r\n--"+boundary)) && !bytes.HasPrefix(b, []byte("--"+boundary)) {
			return b
		}
	}
}

// mpBodies are the bodies most tests run over.
func mpBodies(t testing.TB) []mpBody {
	const b = "BoUnDaRy"
	// Content with prefixes of the delimiter in it, at its start and end.
	tricky := strings.Join([]string{
		"--BoUnDaR", // at the start, the delimiter's CRLF may be the header's
		"\r\n--BoUnDaR",
		"\r\n--BoUnDa\r\n-",
		"\r\r\n--BoUnDaR",
		"\r\n\r\n--",
		"--BoUnDaRy", // not after a line break: content
		"\n--BoUnDaRy",
		"\r\n--BoUnDaR",
	}, "x")
	long := strings.Repeat("b", 70)
	// A browser's boundary, long enough to be searched for by sampling:
	// content that mostly lets the samples skip, content made of the
	// boundary's own bytes that never does, and near-delimiters, at the
	// start, end and middle of the content, and across every split.
	const wb = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
	wtricky := strings.Join([]string{
		"--" + wb[:30],
		"\r\n--" + wb[:35],
		string(mpRandomContent(4, 700, wb)),
		strings.Repeat(wb[4:]+"\r\n-", 40),
		"\r\n--" + wb + "x", // RFC 2046 forbids it; the scanner breaks on it, so not in a file
		"\r\r\n--" + wb[:35],
		"\n--" + wb,
	}, "\r\n--"+wb[:20])
	wtricky = strings.ReplaceAll(wtricky, "\r\n--"+wb+"x", "\r\n-"+wb+"x")
	return []mpBody{
		mpBuild(t, "mixed", b, []mpPart{
			{field: "title", content: []byte("hello\r\nworld")},
			{field: "first", file: "a.txt", ctype: "text/plain", content: mpRandomContent(1, 1000, b)},
			{field: "desc", content: []byte("line one\r\n--BoUnDa\r\nline two\r\n")},
			{field: "second", file: "photo.jpg", ctype: "image/jpeg", content: mpRandomContent(2, 5000, b)},
			{field: "third", file: "empty.bin", ctype: "application/octet-stream"},
			{field: "fourth", file: "tricky.txt", ctype: "text/plain; charset=utf-8", content: []byte(tricky)},
			{field: "fifth", file: "cr.txt", content: []byte("\r")},
			{field: "sixth", file: "crlf.txt", content: []byte("\r\n")},
			{field: "seventh", file: "ends-held.txt", content: []byte("abc\r\n--BoUnDa")},
			{field: "eighth", file: "dash.txt", content: []byte("-")},
			{field: "last", content: []byte("bye")},
		}),
		mpBuild(t, "names", "x", []mpPart{
			{field: "f", file: "naïve résumé.pdf", ctype: "application/pdf", content: []byte("%PDF-1.7 \r\n--y")},
			{field: "g", file: "dir/sub/base.txt", content: []byte("x\n-x\r\n--")},
			{field: "h", disposed: `form-data; name="h"; filename=""`, content: []byte("not a file")},
			{field: "i", file: "quo\"te.txt", ctype: "text/x", content: []byte("q")},
		}),
		mpBuild(t, "long boundary", long, []mpPart{
			{field: "a", file: "1.bin", content: mpRandomContent(3, 3000, long)},
			{field: "b", file: "2.bin", content: []byte("\r\n--" + long[:69])},
		}),
		mpBuild(t, "browser boundary", wb, []mpPart{
			{field: "a", file: "a.bin", ctype: "application/octet-stream", content: mpRandomContent(5, 40000, wb)},
			{field: "b", file: "tricky.txt", content: []byte(wtricky)},
			{field: "c", content: []byte("\r\n--" + wb[:36])},
			{field: "d", file: "held.txt", content: []byte("abc\r\n--" + wb[:36])},
		}),
		mpBuild(t, "fields only", b, []mpPart{
			{field: "a", content: []byte("1")},
			{field: "b", content: []byte("2\r\n")},
		}),
		mpBuild(t, "no parts", b, nil),
		mpBuild(t, "one empty file", b, []mpPart{{field: "f", file: "e", content: nil}}),
	}
}

func TestNewMultipartScannerBoundary(t *testing.T) {
	for _, b := range []string{"", strings.Repeat("a", 71), "a\rb", "a\nb", "\r\n"} {
		if m := NewScanner(b); m != nil {
			t.Errorf("NewScanner(%q) != nil", b)
		}
	}
	for _, b := range []string{"a", strings.Repeat("a", 70), "----WebKitFormBoundary7MA4YWxkTrZu0gW", "with space"} {
		if m := NewScanner(b); m == nil {
			t.Errorf("NewScanner(%q) = nil", b)
		}
	}
}

func TestMultipartScannerNil(t *testing.T) {
	var m *Scanner
	m.Write([]byte("--b\r\n"))
	if p := m.Progress(); !reflect.DeepEqual(p, Progress{}) {
		t.Fatalf("nil scanner: %s", mpString(p))
	}
}

func TestMultipartScannerSplits(t *testing.T) {
	for _, b := range mpBodies(t) {
		t.Run(b.name, func(t *testing.T) {
			files := b.files
			want := Progress{Number: len(files), Files: files, Done: true}
			check := func(how string, m *Scanner) {
				t.Helper()
				mpCheck(t, how, m.Progress(), want)
				if mp, ok := mpMimeFiles(b.body, b.boundary); !ok || !mpSameFiles(mp, files) {
					t.Fatalf("mime/multipart disagrees: %+v %v", mp, ok)
				}
			}
			for n := 1; n <= 16; n++ {
				check(fmt.Sprintf("split %d", n), mpFeed(t, b.boundary, b.body, mpEvery(n)))
			}
			for _, n := range []int{63, 64, 1000, 4096, 32 << 10, len(b.body)} {
				check(fmt.Sprintf("split %d", n), mpFeed(t, b.boundary, b.body, mpEvery(n)))
			}
			r := rand.New(rand.NewPCG(42, 42))
			for i := range 200 {
				limit := []int{3, 20, 100, 2000}[i%4]
				check(fmt.Sprintf("random split #%d", i), mpFeed(t, b.boundary, b.body, func() int { return 1 + r.IntN(limit) }))
			}
		})
	}
}

// TestMultipartScannerEveryPrefix checks Progress after every byte against
// the rule for Size (see mpHeld) and the layout of the body.
func TestMultipartScannerEveryPrefix(t *testing.T) {
	for _, b := range mpBodies(t) {
		t.Run(b.name, func(t *testing.T) {
			for _, step := range []int{1, 2, 7} {
				m := NewScanner(b.boundary)
				for n := 0; n < len(b.body); {
					k := min(step, len(b.body)-n)
					m.Write(b.body[n : n+k])
					n += k
					mpCheck(t, fmt.Sprintf("step %d, after %d of %d bytes", step, n, len(b.body)), m.Progress(), b.want(n))
				}
			}
		})
	}
}

// TestMultipartScannerMidStream spells the Size rule out on one body.
func TestMultipartScannerMidStream(t *testing.T) {
	const b = "BOUNDARY"
	body := mpBuild(t, "mid", b, []mpPart{
		{field: "one", file: "one.txt", ctype: "text/plain", content: []byte("first")},
		{field: "note", content: []byte("a field")},
		{field: "two", file: "two.txt", ctype: "image/png", content: []byte("abc\r\n--BOUNx")},
		{field: "three", file: "three.txt", content: []byte("--BOUND!")},
	}).body
	m := NewScanner(b)
	feedTo := func(s string) {
		t.Helper()
		i := bytes.Index(body, []byte(s))
		if i < 0 {
			t.Fatalf("%q not in body", s)
		}
		m.Write(body[:i+len(s)])
		body = body[i+len(s):]
	}
	one := File{FieldName: "one", FileName: "one.txt", ContentType: "text/plain", Size: 5}
	two := File{FieldName: "two", FileName: "two.txt", ContentType: "image/png"}
	at := func(what string, cur *File, number int, files ...File) {
		t.Helper()
		mpCheck(t, what, m.Progress(), Progress{Current: cur, Number: number, Files: files})
	}
	with := func(f File, size int64) *File { f.Size = size; return &f }

	feedTo("Content-Type: text/plain\r\n\r\n")
	at("file 1 headers read", with(one, 0), 1)
	feedTo("first\r\n--BOUND")
	at("file 1 content and part of its delimiter", with(one, 5), 1)
	feedTo("ARY")
	at("file 1 delimiter complete", nil, 1, one)
	feedTo("a field\r\n--BOUNDARY\r\n")
	at("between files", nil, 1, one)
	feedTo("image/png\r\n\r\n")
	at("file 2 headers read", with(two, 0), 2, one)
	feedTo("abc")
	at("abc", with(two, 3), 2, one)
	feedTo("\r")
	at("abc\\r: the \\r may start the delimiter", with(two, 3), 2, one)
	feedTo("\n--BOUN")
	at("abc\\r\\n--BOUN: 7 bytes held back", with(two, 3), 2, one)
	feedTo("x")
	at("x: they were content", with(two, 12), 2, one)
	feedTo("\r\n--BOUNDAR")
	at("all but the last byte of the delimiter", with(two, 12), 2, one)
	two.Size = 12
	feedTo("Y")
	at("file 2 done", nil, 2, one, two)
	feedTo("\r\n\r\n")
	three := File{FieldName: "three", FileName: "three.txt"}
	at("file 3 headers read", with(three, 0), 3, one, two)
	feedTo("--BOUND")
	at("--BOUND at the start: may be a delimiter after the header's CRLF", with(three, 0), 3, one, two)
	feedTo("!")
	at("--BOUND!: content", with(three, 8), 3, one, two)
	three.Size = 8
	m.Write(body)
	mpCheck(t, "end", m.Progress(), Progress{Number: 3, Files: []File{one, two, three}, Done: true})
}

// mpCase is a hand-written body and what the scanner must make of it.
type mpCase struct {
	name   string
	body   string
	files  []File
	number int // Number when it is not len(files)
	cur    *File
	done   bool
	broken string // why, "" when not broken
	mime   mpMime
}

// mpMime is what mime/multipart makes of a body, compared to the scanner.
type mpMime int

const (
	mimeRejects mpMime = iota
	mimeAgrees         // accepts, and finds the files the scanner finds unless the scanner hit a limit
	mimeDiffers        // accepts, but is more lenient than RFC 2046 (see Scanner)
)

func mpFile(field, name, ctype string, size int64) File {
	return File{FieldName: field, FileName: name, ContentType: ctype, Size: size}
}

func TestMultipartScannerHandWritten(t *testing.T) {
	const cd = "Content-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n"
	fileA := func(size int64) File { return mpFile("f", "a.txt", "", size) }
	curA := func(size int64) *File { f := fileA(size); return &f }
	cases := []mpCase{
		{name: "empty", body: ""},
		{name: "garbage", body: "this is not a multipart body at all\r\n\r\n"},
		{name: "other boundary", body: "--other\r\n" + cd + "\r\nhello\r\n--other--\r\n"},
		{name: "minimal", body: "--b\r\n" + cd + "\r\nhello\r\n--b--", files: []File{fileA(5)}, done: true, mime: mimeAgrees},
		{name: "closing delimiter with junk in the preamble", body: "preamble\r\n--bX\r\n--b-\r\n--b--x\n--b\r\n" + cd + "\r\nhello\r\n--b--\r\n",
			done: true, mime: mimeDiffers},
		{name: "preamble lines", body: "preamble\r\n--bX\r\n--b-x\r\n --b\r\n--b\r\r\n\n--b\t \r\n" + cd + "\r\nhello\r\n--b--\r\nepilogue\r\n--b\r\n" + cd + "\r\n",
			files: []File{fileA(5)}, done: true, mime: mimeAgrees},
		{name: "preamble after bare LF", body: "pre\n--b\r\n" + cd + "\r\nhi\r\n--b--\r\n", files: []File{fileA(2)}, done: true, mime: mimeAgrees},
		{name: "transport padding", body: "--b \t \r\n" + cd + "\r\nhello\r\n--b\t\r\n" + cd + "\r\n\r\n--b-- \t\r\n",
			files: []File{fileA(5), fileA(0)}, done: true, mime: mimeAgrees},
		{name: "empty form", body: "--b--\r\n", done: true, mime: mimeAgrees},
		{name: "empty form with CRLF first", body: "\r\n--b--\r\n", done: true, mime: mimeAgrees},
		{name: "bare LF body", body: "--b\n" + "Content-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\n\nhello\r\n--b\nContent-Disposition: form-data; name=\"g\"\n\nx\n--b--\n",
			files: []File{fileA(6)}, done: true, mime: mimeAgrees},
		{name: "bare LF body with CR after boundary", body: "--b\n" + cd + "\nhello\n--b\r\n\r\nx\n--b--\n",
			files: []File{fileA(5)}, number: 1, broken: "malformed"},
		{name: "empty part, header CRLF shared with delimiter", body: "--b\r\n" + cd + "\r\n--b--", files: []File{fileA(0)}, done: true, mime: mimeAgrees},
		{name: "no header at all", body: "--b\r\n\r\n--b\r\n\r\nxyz\r\n--b--", done: true, mime: mimeAgrees},
		{name: "header names and parameters in any case", body: "--b\r\ncontent-disposition: Form-Data; NAME=f; FileName=\"x.bin\"\r\nCONTENT-TYPE: text/x\r\n\r\n12\r\n--b--\r\n",
			files: []File{mpFile("f", "x.bin", "text/x", 2)}, done: true, mime: mimeAgrees},
		{name: "filename*", body: "--b\r\nContent-Disposition: form-data; name=\"f\"; filename*=UTF-8''na%C3%AFve%20r%C3%A9sum%C3%A9.txt\r\n\r\n123\r\n--b--\r\n",
			files: []File{mpFile("f", "naïve résumé.txt", "", 3)}, done: true, mime: mimeAgrees},
		{name: "filename with a path", body: "--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"/etc/dir/p.txt\"\r\n\r\n1\r\n--b--\r\n",
			files: []File{{FieldName: "f", FileName: "p.txt", Path: "/etc/dir/p.txt", Size: 1}}, done: true, mime: mimeAgrees},
		{name: "empty filename is not a file", body: "--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"\"\r\nContent-Type: application/octet-stream\r\n\r\n\r\n--b--\r\n", done: true, mime: mimeAgrees},
		{name: "attachment", body: "--b\r\nContent-Disposition: attachment; name=\"f\"; filename=\"a.txt\"\r\n\r\n1\r\n--b--\r\n",
			files: []File{mpFile("", "a.txt", "", 1)}, done: true, mime: mimeAgrees},
		{name: "bad disposition is not a file", body: "--b\r\nContent-Disposition: form-data; filename=\"a.txt\"; filename=\"b\"\r\n\r\n1\r\n--b--\r\n", done: true, mime: mimeAgrees},
		{name: "folded header", body: "--b\r\nContent-Disposition: form-data; name=\"f\";\r\n filename=\"a.txt\"\r\nContent-Type: text/plain;\r\n\tcharset=utf-8\r\n\r\n1\r\n--b--\r\n",
			files: []File{mpFile("f", "a.txt", "text/plain; charset=utf-8", 1)}, done: true, mime: mimeAgrees},
		{name: "quoted-printable counts bytes as sent", body: "--b\r\n" + cd + "Content-Transfer-Encoding: quoted-printable\r\n\r\n=41=42\r\n--b--\r\n",
			files: []File{fileA(6)}, done: true, mime: mimeAgrees},
		{name: "header line without colon", body: "--b\r\n" + cd + "oops\r\n\r\nx\r\n--b--\r\n", broken: "malformed"},
		{name: "header starting with a space", body: "--b\r\n " + cd + "\r\nx\r\n--b--\r\n", broken: "malformed"},
		{name: "header at the limit", body: "--b\r\n" + cd + "X: " + strings.Repeat("a", multipartMaxHeader-len(cd)-7) + "\r\n\r\n1\r\n--b--",
			files: []File{fileA(1)}, done: true, mime: mimeAgrees},
		{name: "header too long", body: "--b\r\n" + cd + "X: " + strings.Repeat("a", multipartMaxHeader-len(cd)-6) + "\r\n\r\n1\r\n--b--", broken: "limit", mime: mimeAgrees},
		{name: "header never ends", body: "--b\r\n" + cd + strings.Repeat("X-A: b\r\n", 2000), broken: "limit"},
		{name: "delimiter followed by junk", body: "--b\r\n" + cd + "\r\nhello\r\n--bye\r\n--b--\r\n", files: []File{fileA(5)}, number: 1, broken: "malformed", mime: mimeDiffers},
		{name: "delimiter followed by one dash", body: "--b\r\n" + cd + "\r\nhello\r\n--b-\r\n--b--\r\n", files: []File{fileA(5)}, number: 1, broken: "malformed", mime: mimeDiffers},
		{name: "delimiter followed by junk at the start of content", body: "--b\r\n" + cd + "\r\n--bad\r\n--b--\r\n", files: []File{fileA(0)}, number: 1, broken: "malformed", mime: mimeDiffers},
		{name: "junk after padding", body: "--b\r\n" + cd + "\r\nhello\r\n--b x\r\n--b--\r\n", files: []File{fileA(5)}, number: 1, broken: "malformed"},
		{name: "bare LF after a later delimiter", body: "--b\r\n" + cd + "\r\nhello\r\n--b\n\r\n--b--\r\n", files: []File{fileA(5)}, number: 1, broken: "malformed"},
		{name: "CR without LF", body: "--b\r\n" + cd + "\r\nhello\r\n--b\rx\r\n--b--\r\n", files: []File{fileA(5)}, number: 1, broken: "malformed"},
		{name: "junk after closing delimiter", body: "--b\r\n" + cd + "\r\nhello\r\n--b--junk\r\n--b\r\n", files: []File{fileA(5)}, done: true},
		{name: "truncated in content", body: "--b\r\n" + cd + "\r\nhello\r\n-", number: 1, cur: curA(5)},
		{name: "truncated in headers", body: "--b\r\n" + cd, number: 0},
		{name: "truncated before the closing dashes", body: "--b\r\n" + cd + "\r\nhello\r\n--b", number: 1, files: []File{fileA(5)}},
		{name: "preamble too long", body: strings.Repeat("p", multipartMaxPreamble) + "\r\n--b\r\n" + cd + "\r\n1\r\n--b--", broken: "limit"},
		{name: "preamble too long in short lines", body: strings.Repeat(strings.Repeat("p", 1000)+"\r\n", 66) + "--b\r\n" + cd + "\r\n1\r\n--b--", broken: "limit", mime: mimeAgrees},
		{name: "long preamble", body: strings.Repeat(strings.Repeat("p", 1000)+"\r\n", 60) + "--b\r\n" + cd + "\r\n1\r\n--b--",
			files: []File{fileA(1)}, done: true, mime: mimeAgrees},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			number := c.number
			if number == 0 {
				number = len(c.files)
				if c.cur != nil {
					number++
				}
			}
			want := Progress{Current: c.cur, Number: number, Files: c.files, Done: c.done, Broken: c.broken != ""}
			for _, step := range []int{1, 2, 3, 5, 64, len(c.body) + 1} {
				m := mpFeed(t, "b", []byte(c.body), mpEvery(step))
				mpCheck(t, fmt.Sprintf("split %d", step), m.Progress(), want)
				if m.why != c.broken {
					t.Fatalf("split %d: broken %q, want %q", step, m.why, c.broken)
				}
			}
			files, ok := mpMimeFiles([]byte(c.body), "b")
			if ok != (c.mime != mimeRejects) {
				t.Fatalf("mime/multipart accepts: %v, want %v", ok, !ok)
			}
			agree := mpSameFiles(files, c.files) && !want.Broken
			if c.mime == mimeAgrees && !agree && c.broken != multipartLimit || c.mime == mimeDiffers && agree {
				t.Fatalf("mime/multipart finds %+v, want it to %s", files, map[mpMime]string{mimeAgrees: "agree", mimeDiffers: "differ"}[c.mime])
			}
			if c.mime == mimeDiffers && !mpMimeQuirk([]byte(c.body), "b") {
				t.Fatal("the fuzz oracle would not know this body for one where mime/multipart is lenient")
			}
		})
	}
}

func TestMultipartScannerPartLimit(t *testing.T) {
	body := func(parts int) []byte {
		var b bytes.Buffer
		for range parts {
			b.WriteString("--b\r\n\r\n\r\n")
		}
		b.WriteString("--b--")
		return b.Bytes()
	}
	m := mpFeed(t, "b", body(multipartMaxParts), mpEvery(4096))
	mpCheck(t, "at the limit", m.Progress(), Progress{Done: true})
	m = mpFeed(t, "b", body(multipartMaxParts+1), mpEvery(4096))
	mpCheck(t, "over the limit", m.Progress(), Progress{Broken: true})
	if m.why != multipartLimit {
		t.Fatalf("broken %q", m.why)
	}
}

func TestMultipartScannerMetaLimit(t *testing.T) {
	name := strings.Repeat("n", 8000)
	var b bytes.Buffer
	n := 0
	for ; n*len(name) <= multipartMaxMeta; n++ {
		fmt.Fprintf(&b, "--b\r\nContent-Disposition: form-data; filename=%s\r\n\r\nx\r\n", name)
	}
	b.WriteString("--b--")
	m := mpFeed(t, "b", b.Bytes(), mpEvery(32<<10))
	p := m.Progress()
	if !p.Broken || m.why != multipartLimit || len(p.Files) != n-1 || p.Current != nil {
		t.Fatalf("got %d files, broken %v (%q); want %d files and broken", len(p.Files), p.Broken, m.why, n-1)
	}
}

// TestMultipartScannerIgnoresInputOnceFinished: after Done or Broken, more
// bytes change nothing.
func TestMultipartScannerIgnoresInputOnceFinished(t *testing.T) {
	const cd = "Content-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n"
	for _, body := range []string{"--b\r\n" + cd + "\r\n1\r\n--b--", "--b\r\n" + cd + "\r\n1\r\n--bX"} {
		m := mpFeed(t, "b", []byte(body), mpEvery(3))
		before := m.Progress()
		m.Write([]byte("\r\n--b\r\n" + cd + "\r\n12345\r\n--b--\r\n"))
		mpCheck(t, body, m.Progress(), before)
	}
}

func TestMultipartScannerProgressIsACopy(t *testing.T) {
	b := mpBodies(t)[0]
	n := b.spans[3].start + 10
	m := mpFeed(t, b.boundary, b.body[:n], mpEvery(100))
	p := m.Progress()
	p.Files[0].FileName = "changed"
	p.Current.Size = -1
	mpCheck(t, "after changing a result", m.Progress(), b.want(n))
}

// TestMultipartScannerConcurrentProgress calls Progress in a loop while
// another goroutine writes; run it with -race.
func TestMultipartScannerConcurrentProgress(t *testing.T) {
	const b = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
	var parts []mpPart
	for i := range 6 {
		parts = append(parts, mpPart{field: fmt.Sprint("f", i), file: fmt.Sprint(i, ".bin"), content: mpRandomContent(uint64(i), 300<<10+i*1000, b)})
		parts = append(parts, mpPart{field: fmt.Sprint("n", i), content: []byte("note")})
	}
	body := mpBuild(t, "big", b, parts)
	m := NewScanner(b)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var polls int
	wg.Go(func() {
		var last Progress
		for !stop.Load() {
			p := m.Progress()
			polls++
			switch {
			case p.Number < last.Number, len(p.Files) < len(last.Files), last.Done && !p.Done:
				t.Errorf("went back: %s after %s", mpString(p), mpString(last))
				return
			case !mpSameFiles(p.Files[:len(last.Files)], last.Files):
				t.Errorf("finished files changed: %s after %s", mpString(p), mpString(last))
				return
			case p.Number != len(p.Files) && (p.Current == nil || p.Number != len(p.Files)+1):
				t.Errorf("inconsistent: %s", mpString(p))
				return
			case p.Current != nil && last.Current != nil && p.Number == last.Number && p.Current.Size < last.Current.Size:
				t.Errorf("size went back: %s after %s", mpString(p), mpString(last))
				return
			case p.Current != nil && p.Current.Size > body.files[p.Number-1].Size:
				t.Errorf("size too large: %s", mpString(p))
				return
			}
			last = p
		}
	})
	r := rand.New(rand.NewPCG(9, 9))
	for rest := body.body; len(rest) > 0; {
		n := min(1+r.IntN(8192), len(rest))
		m.Write(rest[:n])
		rest = rest[n:]
	}
	stop.Store(true)
	wg.Wait()
	mpCheck(t, "end", m.Progress(), Progress{Number: len(body.files), Files: body.files, Done: true})
	t.Logf("%d concurrent polls", polls)
}

func TestMultipartScannerWriteDoesNotAllocate(t *testing.T) {
	const b = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
	chunk := mpRandomContent(5, 32<<10, b)
	// Partial delimiters inside, and one across the end of the chunk.
	chunk[0] = '!'
	for i := 100; i < len(chunk)-200; i += 997 {
		copy(chunk[i:], "\r\n--"+b[:i%len(b)]+"!")
	}
	copy(chunk[len(chunk)-20:], "\r\n--"+b[:16])
	m := NewScanner(b)
	m.Write([]byte("--" + b + "\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\"\r\n\r\n"))
	m.Write(chunk)
	writes := 1
	if allocs := testing.AllocsPerRun(100, func() { m.Write(chunk); writes++ }); allocs != 0 {
		t.Fatalf("Write allocates %v times per 32 KiB chunk of file content", allocs)
	}
	if p := m.Progress(); p.Current == nil || p.Broken || p.Current.Size != int64(writes*len(chunk)-20) {
		t.Fatalf("after %d chunks: %s", writes, mpString(p))
	}
}

// mpBenchBody is three 1 MiB files (and a field) with a browser's boundary.
func mpBenchBody(b *testing.B) mpBody {
	const boundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
	var parts []mpPart
	for i := range 3 {
		parts = append(parts, mpPart{field: "files", file: fmt.Sprint("file", i, ".bin"), ctype: "application/octet-stream", content: mpRandomContent(uint64(i), 1<<20, boundary)})
	}
	parts = append(parts, mpPart{field: "comment", content: []byte("three files")})
	return mpBuild(b, "bench", boundary, parts)
}

const mpBenchChunk = 32 << 10

func BenchmarkMultipartScannerWrite(b *testing.B) {
	body := mpBenchBody(b)
	b.SetBytes(int64(len(body.body)))
	b.ReportAllocs()
	for b.Loop() {
		m := NewScanner(body.boundary)
		for rest := body.body; len(rest) > 0; {
			n := min(mpBenchChunk, len(rest))
			m.Write(rest[:n])
			rest = rest[n:]
		}
		if !m.Progress().Done {
			b.Fatal("not done")
		}
	}
}

// BenchmarkPlainCount is what Body.Read does without a scanner: one atomic
// add per chunk.
func BenchmarkPlainCount(b *testing.B) {
	body := mpBenchBody(b)
	b.SetBytes(int64(len(body.body)))
	b.ReportAllocs()
	var count atomic.Int64
	for b.Loop() {
		count.Store(0)
		for rest := body.body; len(rest) > 0; {
			n := min(mpBenchChunk, len(rest))
			count.Add(int64(n))
			rest = rest[n:]
		}
		if count.Load() != int64(len(body.body)) {
			b.Fatal("miscounted")
		}
	}
}
