package progress

import (
	"io"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress/multipart"
)

// Body counts the bytes of a request body into a Record as they are read.
//
// It is a plain Read/Close type on purpose: it does not implement
// io.WriterTo (io.Copy would then bypass Read and the count), and it changes
// nothing about the bytes. Reads happen on the transport's goroutine and
// Close may come after the handler returned; Record is safe for both.
type Body struct {
	rc   io.ReadCloser
	rec  *Record
	st   *Stream // the session stream the body is, or nil
	scan *multipart.Scanner
}

// NewBody wraps rc so that its bytes count into rec, and pass through the
// multipart scanner rec follows, if any.
func NewBody(rc io.ReadCloser, rec *Record) *Body {
	b := new(Body)
	b.Init(rc, rec)
	return b
}

// Init sets up b as NewBody does, for a Body that is a field of a larger
// per-request struct, so that tracking an upload costs one allocation
// less. Call it once, before the body is read.
func (b *Body) Init(rc io.ReadCloser, rec *Record) {
	*b = Body{rc: rc, rec: rec, scan: rec.files.Load()}
}

// InitStream sets up b as Init does, for the body of a session's request:
// its bytes count into st and into st's session.
func (b *Body) InitStream(rc io.ReadCloser, st *Stream) {
	*b = Body{rc: rc, rec: st.rec, st: st, scan: st.scan.Load()}
}

// Read reads from the wrapped body and counts what it got.
func (b *Body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		if b.scan != nil {
			b.scan.Write(p[:n])
		}
		if b.st != nil {
			// Before the record's count, which wakes the watchers.
			b.st.n.Add(int64(n))
		}
		b.rec.add(n)
	}
	switch {
	case err == nil:
	case b.st != nil:
		// A session lives on past its requests: the error is the stream's.
		if err != io.EOF {
			b.st.noteReadError(err)
		}
	case err == io.EOF:
		b.rec.bodyDone.Store(true)
	default:
		b.rec.noteReadError(err)
	}
	return n, err
}

// Close closes the wrapped body.
func (b *Body) Close() error { return b.rc.Close() }
