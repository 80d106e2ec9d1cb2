package progress

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
	"time"
)

func testRecord() *Record { return newRecord(1, Anyone, "/body", -1, time.Now()) }

func randomPayload(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return p
}

// readAllWith reads r to the end with reads of size bufSize.
func readAllWith(t *testing.T, r io.Reader, bufSize int) []byte {
	t.Helper()
	var out bytes.Buffer
	buf := make([]byte, bufSize)
	for {
		n, err := r.Read(buf)
		out.Write(buf[:n])
		if err == io.EOF {
			return out.Bytes()
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
	}
}

func TestBodyCountsEveryByteUnchanged(t *testing.T) {
	payload := randomPayload(100_003)
	for _, size := range []int{1, 7, 512, 4096, 32 << 10, 1 << 20} {
		rec := testRecord()
		body := NewBody(io.NopCloser(bytes.NewReader(payload)), rec)
		got := readAllWith(t, body, size)
		if !bytes.Equal(got, payload) {
			t.Errorf("read size %d: bytes changed passing through Body", size)
		}
		if rec.Received() != int64(len(payload)) {
			t.Errorf("read size %d: Received = %d, want %d", size, rec.Received(), len(payload))
		}
		if err := rec.ReadError(); err != nil {
			t.Errorf("read size %d: ReadError = %v, want nil", size, err)
		}
	}
}

func TestBodyOneByteReader(t *testing.T) {
	payload := randomPayload(3000)
	rec := testRecord()
	body := NewBody(io.NopCloser(iotest.OneByteReader(bytes.NewReader(payload))), rec)
	got := readAllWith(t, body, 4096)
	if !bytes.Equal(got, payload) {
		t.Error("bytes changed passing through Body")
	}
	if rec.Received() != int64(len(payload)) {
		t.Errorf("Received = %d, want %d", rec.Received(), len(payload))
	}
}

func TestBodyDataWithEOF(t *testing.T) {
	// DataErrReader returns the last data together with io.EOF.
	payload := randomPayload(1000)
	rec := testRecord()
	body := NewBody(io.NopCloser(iotest.DataErrReader(bytes.NewReader(payload))), rec)
	got := readAllWith(t, body, 300)
	if !bytes.Equal(got, payload) {
		t.Error("bytes changed passing through Body")
	}
	if rec.Received() != int64(len(payload)) {
		t.Errorf("Received = %d, want %d", rec.Received(), len(payload))
	}
	if err := rec.ReadError(); err != nil {
		t.Errorf("ReadError = %v, want nil: io.EOF is not a read error", err)
	}
}

func TestBodyIsAWellBehavedReader(t *testing.T) {
	payload := randomPayload(5000)
	body := NewBody(io.NopCloser(bytes.NewReader(payload)), testRecord())
	if err := iotest.TestReader(body, payload); err != nil {
		t.Fatal(err)
	}
}

func TestBodyWithIOCopyCountsAndKeepsBytes(t *testing.T) {
	// io.Copy into a ReaderFrom (bytes.Buffer) must still go through Read.
	payload := randomPayload(250_000)
	rec := testRecord()
	var dst bytes.Buffer
	n, err := io.Copy(&dst, NewBody(io.NopCloser(bytes.NewReader(payload)), rec))
	if err != nil || n != int64(len(payload)) {
		t.Fatalf("io.Copy = %d, %v", n, err)
	}
	if !bytes.Equal(dst.Bytes(), payload) {
		t.Error("bytes changed passing through Body")
	}
	if rec.Received() != int64(len(payload)) {
		t.Errorf("Received = %d, want %d", rec.Received(), len(payload))
	}
}

func TestBodyIsNotWriterTo(t *testing.T) {
	var r io.Reader = NewBody(io.NopCloser(bytes.NewReader(nil)), testRecord())
	if _, ok := r.(io.WriterTo); ok {
		t.Fatal("Body implements io.WriterTo; io.Copy would bypass Read and the count")
	}
}

// scriptedReader returns its steps in order, then io.EOF.
type scriptedReader struct {
	steps []readStep
}

type readStep struct {
	n   int
	err error
}

func (s *scriptedReader) Read(p []byte) (int, error) {
	if len(s.steps) == 0 {
		return 0, io.EOF
	}
	st := s.steps[0]
	s.steps = s.steps[1:]
	n := min(st.n, len(p))
	clear(p[:n])
	return n, st.err
}

func TestBodyRecordsFirstReadError(t *testing.T) {
	errFirst := errors.New("connection reset")
	errSecond := errors.New("second failure")
	rec := testRecord()
	body := NewBody(io.NopCloser(&scriptedReader{steps: []readStep{
		{n: 10},
		{n: 5, err: errFirst}, // bytes that come with an error still count
		{n: 3, err: errSecond},
		{n: 0, err: io.EOF},
	}}), rec)

	buf := make([]byte, 64)
	var errs []error
	for range 4 {
		_, err := body.Read(buf)
		errs = append(errs, err)
	}
	if errs[1] != errFirst || errs[2] != errSecond || errs[3] != io.EOF {
		t.Errorf("Body changed the errors it passed on: %v", errs)
	}
	if got := rec.Received(); got != 18 {
		t.Errorf("Received = %d, want 18", got)
	}
	if err := rec.ReadError(); err != errFirst {
		t.Errorf("ReadError = %v, want the first error %v", err, errFirst)
	}
}

func TestBodyRecordsUnexpectedEOFButNotEOF(t *testing.T) {
	rec := testRecord()
	body := NewBody(io.NopCloser(&scriptedReader{steps: []readStep{{n: 4, err: io.EOF}}}), rec)
	if _, err := body.Read(make([]byte, 8)); err != io.EOF {
		t.Fatalf("err = %v, want io.EOF", err)
	}
	if err := rec.ReadError(); err != nil {
		t.Fatalf("io.EOF recorded as a read error: %v", err)
	}

	rec = testRecord()
	body = NewBody(io.NopCloser(&scriptedReader{steps: []readStep{{n: 4, err: io.ErrUnexpectedEOF}}}), rec)
	body.Read(make([]byte, 8))
	if err := rec.ReadError(); err != io.ErrUnexpectedEOF {
		t.Fatalf("ReadError = %v, want io.ErrUnexpectedEOF", err)
	}
	if rec.Received() != 4 {
		t.Fatalf("Received = %d, want 4", rec.Received())
	}
}

func TestBodyReadErrorUnderConcurrentFailures(t *testing.T) {
	// Only one error may win, and it must be one that was actually returned.
	rec := testRecord()
	errs := make([]error, 16)
	done := make(chan struct{})
	for i := range errs {
		errs[i] = errors.New("failure")
		go func() {
			defer func() { done <- struct{}{} }()
			NewBody(io.NopCloser(iotest.ErrReader(errs[i])), rec).Read(make([]byte, 1))
		}()
	}
	for range errs {
		<-done
	}
	got := rec.ReadError()
	found := false
	for _, e := range errs {
		found = found || got == e
	}
	if !found {
		t.Fatalf("ReadError = %v, not one of the errors returned", got)
	}
	for range 10 {
		if rec.ReadError() != got {
			t.Fatal("ReadError changed after it was set")
		}
	}
}

type closeRecorder struct {
	io.Reader
	closed int
	err    error
}

func (c *closeRecorder) Close() error {
	c.closed++
	return c.err
}

func TestBodyClosePassesThrough(t *testing.T) {
	errClose := errors.New("close failed")
	rc := &closeRecorder{Reader: bytes.NewReader(nil), err: errClose}
	body := NewBody(rc, testRecord())
	if err := body.Close(); err != errClose {
		t.Fatalf("Close = %v, want %v", err, errClose)
	}
	if rc.closed != 1 {
		t.Fatalf("wrapped body closed %d times, want 1", rc.closed)
	}
}

func TestBodyReadDoesNotAllocate(t *testing.T) {
	tr := newTestTracker(t, Options{})
	rec, err := tr.Begin(Anyone, "/alloc", -1)
	if err != nil {
		t.Fatal(err)
	}
	body := NewBody(io.NopCloser(zeroReader{}), rec)
	buf := make([]byte, 32<<10)
	if allocs := testing.AllocsPerRun(1000, func() { body.Read(buf) }); allocs != 0 {
		t.Errorf("Body.Read allocates %v times per call, want 0", allocs)
	}
}

func TestBodyReadWatchedDoesNotAllocate(t *testing.T) {
	tr := newTestTracker(t, Options{})
	rec, err := tr.Begin(Anyone, "/alloc", -1)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := tr.Subscribe(Anyone, "/alloc")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	const step = 1 << 50
	ctx, cancel := context.WithCancel(t.Context())
	nextDone := make(chan error, 1)
	go func() {
		_, err := sub.Next(ctx, sub.Current(), step)
		nextDone <- err
	}()
	waitWatched(t, rec, step)

	body := NewBody(io.NopCloser(zeroReader{}), rec)
	buf := make([]byte, 32<<10)
	if allocs := testing.AllocsPerRun(1000, func() { body.Read(buf) }); allocs != 0 {
		t.Errorf("Body.Read with a waiting watcher allocates %v times per call, want 0", allocs)
	}
	cancel()
	if err := <-nextDone; !errors.Is(err, context.Canceled) {
		t.Errorf("Next = %v, want context.Canceled", err)
	}
}

func BenchmarkBodyRead(b *testing.B) {
	tr := newTestTracker(b, Options{})
	rec, err := tr.Begin(Anyone, "/bench", -1)
	if err != nil {
		b.Fatal(err)
	}
	body := NewBody(io.NopCloser(zeroReader{}), rec)
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		body.Read(buf)
	}
}

func BenchmarkBodyReadWatched(b *testing.B) {
	tr := newTestTracker(b, Options{})
	rec, err := tr.Begin(Anyone, "/bench", -1)
	if err != nil {
		b.Fatal(err)
	}
	sub, err := tr.Subscribe(Anyone, "/bench")
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	const step = 1 << 60 // far more than any run reads: the watcher stays asleep
	ctx, cancel := context.WithCancel(context.Background())
	nextDone := make(chan error, 1)
	go func() {
		_, err := sub.Next(ctx, sub.Current(), step)
		nextDone <- err
	}()
	waitWatched(b, rec, step)

	body := NewBody(io.NopCloser(zeroReader{}), rec)
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		body.Read(buf)
	}
	b.StopTimer()
	cancel()
	if err := <-nextDone; !errors.Is(err, context.Canceled) {
		b.Errorf("Next = %v, want context.Canceled", err)
	}
}
