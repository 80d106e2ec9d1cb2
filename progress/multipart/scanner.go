package multipart

import (
	"bufio"
	"bytes"
	"mime"
	"net/textproto"
	"path/filepath"
	"strings"
	"sync/atomic"
	"unsafe"
)

// Limits of the multipart scanner. Crossing one makes the scanner Broken.
const (
	// multipartMaxBoundary is the longest boundary RFC 2046 allows.
	multipartMaxBoundary = 70
	// multipartMaxHeader bounds one part's header block, blank line included.
	multipartMaxHeader = 8 << 10
	// multipartMaxParts bounds the number of parts (files and other fields).
	multipartMaxParts = 10000
	// multipartMaxPreamble bounds how far into the body the first boundary
	// line must have ended; a body that has none by then is not followed.
	multipartMaxPreamble = 64 << 10
	// multipartMaxMeta bounds the bytes of names and content types kept for
	// all files together, so that the list of files stays small in memory.
	multipartMaxMeta = 1 << 20
)

// File describes one file of a multipart/form-data body.
type File struct {
	// FieldName is the name parameter of a form-data Content-Disposition.
	FieldName string
	// FileName is the filename parameter (filename* decoded), without any
	// directory part, exactly as mime/multipart's Part.FileName gives it.
	FileName string
	// Path is the filename parameter as sent where it names directories
	// too (a folder upload names each file by its path in the folder);
	// "" where it is FileName. See FullPath.
	Path string
	// ContentType is the part's Content-Type header as sent, or "".
	ContentType string
	// Size is the number of bytes of the file's own content: no headers, no
	// boundary, not the line break that precedes the next boundary. For the
	// current file it counts only bytes known to be content (see
	// Scanner).
	Size int64
}

// FullPath is the file's name as the client sent it, directories included.
func (f File) FullPath() string {
	if f.Path != "" {
		return f.Path
	}
	return f.FileName
}

// Progress is what a Scanner knows at one moment.
type Progress struct {
	// Current is the file being received now, nil when between files or done.
	// Its Size is the bytes of content so far.
	Current *File
	// Number is the 1-based number of the current file (or of the last file
	// when none is current); 0 before the first file.
	Number int
	// Files are the files finished so far, in order, with their sizes.
	Files []File
	// Done is set once the closing boundary was seen.
	Done bool
	// Broken is set once the body stopped making sense (malformed, header too
	// long, too many parts...); from then on the scanner ignores input and
	// reports what it had.
	Broken bool
}

// Scanner follows a multipart/form-data body as it streams past,
// finding part boundaries and part headers across read boundaries, without
// copying the body.
//
// Write is called by the one goroutine that reads the body; Progress may be
// called from any goroutine at any time. Write publishes what changes at part
// boundaries as an immutable snapshot behind an atomic pointer, and the size
// of the current file as an atomic counter, so it never takes a lock and,
// inside file content, never allocates.
//
// # What counts as content
//
// The line break before a boundary belongs to the boundary, so the bytes at
// the end of what was written that could still be the start of the next
// delimiter d = "\r\n--"+boundary are held back from the current file's Size
// until the next bytes decide. Precisely, with c the bytes of the current
// part's content received so far and L the length of the longest suffix of
// "\r\n"+c that is a proper prefix of d, the current file's Size is
// len(c) - min(L, len(c)). ("\r\n"+c, because the line break that ends the
// part's header block also serves as the line break of a delimiter that
// follows it at once: an empty part.) In a body with bare line feeds (see
// below), read "\n" for "\r\n". So Size only grows, never counts a byte
// that is not content, and lags by at most len(d)-1 bytes, which are only
// counted, never copied. Once the whole delimiter has arrived, the file is
// finished with its exact size.
//
// # Syntax
//
// The scanner follows RFC 2046 section 5.1 and agrees with Go's
// mime/multipart Reader on every body that reader accepts, except where
// noted:
//
//   - The preamble is skipped line by line, as mime/multipart does: the first
//     delimiter is "--"+boundary at the start of the body or after a line
//     feed, followed by optional spaces and tabs and a line break; a line
//     that starts with "--"+boundary but is not followed so is preamble.
//   - If that first delimiter line ends in a bare "\n" instead of "\r\n", the
//     whole body is taken to use bare line feeds (as mime/multipart does;
//     such bodies occur in practice).
//   - "--"+boundary+"--" where a delimiter may stand closes the body: Done.
//     Whatever follows is epilogue. In the preamble this also holds when the
//     rest of the line is not just padding, where mime/multipart would skip
//     the line; RFC 2046 has no place for such a line.
//   - Inside a part, the delimiter ends the part wherever it occurs, as
//     RFC 2046 says it must not occur in content. A delimiter followed by
//     anything but "--", padding and the line break makes the body Broken.
//     (mime/multipart takes "\r\n--"+boundary followed by another character
//     as content; RFC 2046 does not allow a body to contain it.)
//   - A part's header block ends at the first empty line and is parsed with
//     net/textproto, like mime/multipart does. A part is a file if its
//     Content-Disposition (parsed with mime.ParseMediaType, so filename* is
//     understood) has a non-empty filename parameter, as for
//     mime/multipart's Part.FileName. Content-Transfer-Encoding is ignored:
//     Size counts the bytes on the wire.
//
// # Limits
//
// The scanner becomes Broken, keeping what it had, at a header block longer
// than 8 KiB, at the 10,001st part, when the first delimiter line has not
// ended within the first 64 KiB of the body, or when the names and content
// types of the files add up to more than 1 MiB. Its memory is bounded
// accordingly whatever the body.
type Scanner struct {
	// These fields belong to the goroutine that calls Write.

	st multipartState
	// delim is the delimiter being looked for: "\n--"+boundary in the
	// preamble, then "\r\n--"+boundary (or "\n--"+boundary in a body with
	// bare line feeds) after the first delimiter line.
	delim []byte
	// matched is how many bytes of delim end what was written so far; virt of
	// them are not bytes of the body but the line break that ended the
	// header block (or, in the preamble, the start of the body).
	matched, virt int
	// pending is the content counted during this Write, added to cur at the
	// end of it (or when the part ends).
	pending int64
	// cur is the file being received, nil when the current part is not a file.
	cur *multipartLive
	// lenient is set while reading the first delimiter line, where a line
	// that is not one is preamble rather than an error.
	lenient bool
	// lf is set for a body with bare line feeds.
	lf bool

	dashBoundary int    // len("--"+boundary)
	crlfDelim    []byte // "\r\n--"+boundary
	hdr          []byte // the header block being accumulated
	line         int    // where in hdr the current header line starts
	preamble     int    // bytes consumed before the first delimiter line ended
	parts        int
	meta         int
	files        []File // finished files; published prefixes are never changed
	why          string // why the scanner is broken, for tests

	// delimBytes holds every byte of crlfDelim, so of either delim, for
	// indexSampled; sampled says to use it rather than bytes.Index.
	delimBytes byteSet
	sampled    bool

	snap atomic.Pointer[multipartSnapshot]
}

type multipartState uint8

const (
	mpPreamble multipartState = iota // looking for the first delimiter
	mpHeader                         // accumulating a header block
	mpContent                        // in a part's content, looking for the delimiter
	mpTail                           // right after "--"+boundary
	mpPad                            // in the transport padding after a delimiter
	mpCR                             // after the "\r" that ends a delimiter line
	mpDash                           // after "--"+boundary+"-"
	mpDone
	mpBroken
)

// multipartLive is the file being received. Its fields other than size never
// change once published; size only grows, and stops when the file ends.
type multipartLive struct {
	file File
	size atomic.Int64
}

// multipartSnapshot is what changes at part boundaries; never modified once
// published.
type multipartSnapshot struct {
	files  []File
	cur    *multipartLive
	done   bool
	broken bool
}

// Reasons the scanner broke.
const (
	multipartMalformed = "malformed"
	multipartLimit     = "limit"
)

// NewScanner returns a scanner for a body with the given boundary
// (the boundary parameter of the Content-Type). It returns nil if the boundary
// is invalid: empty, longer than 70 bytes (RFC 2046), or containing a line
// break. A nil *Scanner may be used: it ignores writes and reports
// nothing.
func NewScanner(boundary string) *Scanner {
	if len(boundary) == 0 || len(boundary) > multipartMaxBoundary {
		return nil
	}
	for i := 0; i < len(boundary); i++ {
		if c := boundary[i]; c == '\r' || c == '\n' {
			return nil
		}
	}
	d := make([]byte, 0, 4+len(boundary))
	d = append(d, "\r\n--"...)
	d = append(d, boundary...)
	m := &Scanner{
		crlfDelim:    d,
		delim:        d[1:],
		dashBoundary: len(d) - 2,
		// The body may start with the delimiter: as if a line feed preceded it.
		matched: 1,
		virt:    1,
		// "\n--"+boundary, the shorter delimiter, decides.
		sampled: len(d)-1 >= sampledDelimMin,
	}
	for _, c := range d {
		m.delimBytes.add(c)
	}
	m.snap.Store(&multipartSnapshot{})
	return m
}

// Write feeds the next bytes of the body, as the proxy read them. It never
// fails and never keeps p. It must be called from one goroutine at a time.
func (m *Scanner) Write(p []byte) {
	if m == nil {
		return
	}
	for len(p) > 0 && m.st < mpDone {
		switch m.st {
		case mpContent:
			var found bool
			p, found = m.find(p)
			if found {
				m.endPart()
			}
		case mpHeader:
			p = m.header(p)
		case mpPreamble:
			q := p
			if room := multipartMaxPreamble - m.preamble; len(q) > room {
				q = q[:room]
			}
			if len(q) == 0 {
				m.fail(multipartLimit)
				break
			}
			rest, found := m.find(q)
			m.pending = 0 // the preamble is no one's content
			m.preamble += len(q) - len(rest)
			p = p[len(q)-len(rest):]
			if found {
				m.st = mpTail
				m.lenient = true
			}
		default:
			if m.lenient {
				if m.preamble >= multipartMaxPreamble {
					m.fail(multipartLimit)
					break
				}
				if m.delimLine(p[0]) {
					m.preamble++
					p = p[1:]
				}
			} else {
				m.delimLine(p[0])
				p = p[1:]
			}
		}
	}
	if m.pending != 0 {
		if m.cur != nil {
			m.cur.size.Add(m.pending)
		}
		m.pending = 0
	}
}

// find looks for m.delim in p, continuing a partial match from the previous
// Write. Bytes that certainly are not part of a delimiter are added to
// m.pending. If the delimiter completes, find reports it and returns what
// follows it; otherwise it consumes all of p, remembering in m.matched how
// much of a delimiter p ends with.
func (m *Scanner) find(p []byte) (rest []byte, found bool) {
	d := m.delim
	if m.matched > 0 {
		want := d[m.matched:]
		n := min(len(p), len(want))
		if bytes.Equal(p[:n], want[:n]) {
			m.matched += n
			if m.matched < len(d) {
				return p[n:], false
			}
			m.matched, m.virt = 0, 0
			return p[n:], true
		}
		// Not a delimiter after all: what was held back is content. The
		// part of p that did match cannot start a delimiter (d[0] occurs
		// only at the start of d), so the search goes on from p[0].
		m.pending += int64(m.matched - m.virt)
		m.matched, m.virt = 0, 0
	}
	if i := m.index(p); i >= 0 {
		m.pending += int64(i)
		return p[i+len(d):], true
	}
	// Hold back a tail of p that is a prefix of d. Only the last d[0] in
	// the last len(d)-1 bytes can start one, as d[0] is nowhere else in d.
	from := max(len(p)-len(d)+1, 0)
	if j := bytes.LastIndexByte(p[from:], d[0]); j >= 0 {
		j += from
		if bytes.HasPrefix(d, p[j:]) {
			m.pending += int64(j)
			m.matched = len(p) - j
			return nil, false
		}
	}
	m.pending += int64(len(p))
	return nil, false
}

// index returns the index of the first m.delim in p, or -1.
func (m *Scanner) index(p []byte) int {
	if m.sampled {
		return indexSampled(p, m.delim, &m.delimBytes)
	}
	return bytes.Index(p, m.delim)
}

// delimLine takes one byte of what follows "--"+boundary and reports
// whether it consumed it; it does not when the line turned out to be
// preamble and the byte must be looked at again as such.
func (m *Scanner) delimLine(c byte) bool {
	switch m.st {
	case mpTail, mpPad:
		switch c {
		case ' ', '\t':
			m.st = mpPad
			return true
		case '-':
			if m.st == mpTail {
				m.st = mpDash
				return true
			}
		case '\r':
			if !m.lf {
				m.st = mpCR
				return true
			}
		case '\n':
			if m.lenient && !m.lf {
				// The first delimiter line ends in a bare line feed: so do
				// all the others.
				m.lf = true
				m.delim = m.crlfDelim[1:]
			}
			if m.lf {
				m.startPart()
				return true
			}
		}
	case mpCR:
		if c == '\n' {
			if m.lenient {
				m.delim = m.crlfDelim
			}
			m.startPart()
			return true
		}
	case mpDash:
		if c == '-' {
			m.st = mpDone
			m.publish()
			return true
		}
	}
	if m.lenient {
		// Not a delimiter line: back to the preamble, with c.
		m.st = mpPreamble
		m.matched, m.virt = 0, 0
		return false
	}
	m.fail(multipartMalformed)
	return true
}

// startPart begins a part after its delimiter line.
func (m *Scanner) startPart() {
	if m.parts >= multipartMaxParts {
		m.fail(multipartLimit)
		return
	}
	m.parts++
	m.lenient = false
	m.st = mpHeader
	m.hdr = m.hdr[:0]
	m.line = 0
}

// header accumulates the header block and, once it is complete, parses it
// and enters the part's content.
func (m *Scanner) header(p []byte) []byte {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		n := i + 1
		if i < 0 {
			n = len(p)
		}
		if len(m.hdr)+n > multipartMaxHeader {
			m.fail(multipartLimit)
			return nil
		}
		if m.hdr == nil {
			m.hdr = make([]byte, 0, 512)
		}
		m.hdr = append(m.hdr, p[:n]...)
		p = p[n:]
		if i < 0 {
			break
		}
		// An empty line ("\n" or "\r\n") ends the block, as for textproto.
		if line := m.hdr[m.line:]; len(line) == 1 || len(line) == 2 && line[0] == '\r' {
			m.headerDone()
			return p
		}
		m.line = len(m.hdr)
	}
	return p
}

// headerDone parses the complete header block m.hdr.
func (m *Scanner) headerDone() {
	r := textproto.NewReader(bufio.NewReaderSize(bytes.NewReader(m.hdr), len(m.hdr)))
	h, err := r.ReadMIMEHeader()
	if err != nil {
		m.fail(multipartMalformed)
		return
	}
	m.st = mpContent
	// The line break that ended the block may be the one of a delimiter
	// that follows at once.
	m.matched = len(m.delim) - m.dashBoundary
	m.virt = m.matched

	disposition, params, err := mime.ParseMediaType(h.Get("Content-Disposition"))
	if err != nil || params["filename"] == "" {
		return // not a file
	}
	// Copies: each of these is a piece of a header line of up to 8 KiB,
	// which it would keep alive for as long as the file is listed.
	path := strings.Clone(params["filename"])
	f := File{
		FileName:    filepath.Base(path),
		ContentType: strings.Clone(h.Get("Content-Type")),
	}
	if f.FileName != path {
		f.Path = path
	}
	if disposition == "form-data" {
		f.FieldName = strings.Clone(params["name"])
	}
	m.meta += len(f.FieldName) + len(f.FileName) + len(f.Path) + len(f.ContentType)
	if m.meta > multipartMaxMeta {
		m.fail(multipartLimit)
		return
	}
	m.cur = &multipartLive{file: f}
	m.publish()
}

// endPart ends the current part: its delimiter has been seen.
func (m *Scanner) endPart() {
	m.st = mpTail
	if m.cur != nil {
		f := m.cur.file
		f.Size = m.cur.size.Add(m.pending)
		m.files = append(m.files, f)
		m.cur = nil
		m.publish()
	}
	m.pending = 0
}

// fail makes the scanner Broken, keeping what it knew.
func (m *Scanner) fail(why string) {
	if m.cur != nil && m.pending != 0 {
		m.cur.size.Add(m.pending)
	}
	m.pending = 0
	m.st = mpBroken
	m.why = why
	m.publish()
}

// publish makes the state that changes at part boundaries visible to Progress.
func (m *Scanner) publish() {
	n := len(m.files)
	m.snap.Store(&multipartSnapshot{
		files:  m.files[:n:n],
		cur:    m.cur,
		done:   m.st == mpDone,
		broken: m.st == mpBroken,
	})
}

// Progress returns what the scanner knows now. It may be called from any
// goroutine, concurrently with Write, and never blocks it. The result is the
// caller's own: Files is a fresh copy.
func (m *Scanner) Progress() Progress {
	if m == nil {
		return Progress{}
	}
	s := m.snap.Load()
	p := Progress{Number: len(s.files), Done: s.done, Broken: s.broken}
	if len(s.files) > 0 {
		p.Files = append([]File(nil), s.files...)
	}
	if s.cur != nil {
		f := s.cur.file
		f.Size = s.cur.size.Load()
		p.Current = &f
		p.Number++
	}
	return p
}

// Memory is about what p holds in memory: its files and their strings.
func (p *Progress) Memory() int64 {
	const file = int64(unsafe.Sizeof(File{}))
	n := int64(unsafe.Sizeof(*p)) + int64(len(p.Files))*file
	for _, f := range p.Files {
		n += int64(len(f.FieldName) + len(f.FileName) + len(f.Path) + len(f.ContentType))
	}
	if c := p.Current; c != nil {
		n += file + int64(len(c.FieldName)+len(c.FileName)+len(c.Path)+len(c.ContentType))
	}
	return n
}
