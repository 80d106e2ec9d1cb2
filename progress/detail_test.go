package progress

import (
	"bytes"
	"io"
	mimemultipart "mime/multipart"
	"net/textproto"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress/multipart"
)

// finishNamed uploads n bytes to key as a raw upload of one named file.
func finishNamed(t *testing.T, tr *MemoryTracker, key, name string) *Record {
	t.Helper()
	rec, err := tr.Begin(Anyone, key, 10)
	if err != nil {
		t.Fatal(err)
	}
	rec.SetFileName(name)
	readBytes(t, zeroBody(rec), 10)
	tr.Finish(rec, Judge(Event{Status: 201, Received: 10}))
	return rec
}

func fileNameOf(s Snapshot) string {
	if s.Files == nil || len(s.Files.Files) != 1 {
		return ""
	}
	return s.Files.Files[0].FileName
}

func TestFileDetailsOfFinishedRecordsAreBounded(t *testing.T) {
	tr := newTestTracker(t, Options{MaxFileDetails: 1000})
	long := func(c string) string { return strings.Repeat(c, 600) }

	finishNamed(t, tr, "/a", long("a"))
	if st := tr.Stats(); st.FileDetailBytes != 600 || st.FileDetailsDropped != 0 {
		t.Fatalf("after one upload: %+v, want 600 bytes of detail kept", st)
	}
	if name := fileNameOf(tr.Lookup(Anyone, "/a")); name != long("a") {
		t.Fatalf("/a shows file %q, want its name", name)
	}

	// No room for a second name: the record keeps its counts, not the name.
	finishNamed(t, tr, "/b", long("b"))
	s := tr.Lookup(Anyone, "/b")
	if s.State != Completed || s.Received != 10 || s.Files != nil {
		t.Fatalf("/b past the bound = %+v; want completed, 10 bytes, no file detail", s)
	}
	if st := tr.Stats(); st.FileDetailBytes != 600 || st.FileDetailsDropped != 1 {
		t.Fatalf("after the second upload: %+v, want 600 bytes kept and one record dropped", st)
	}

	// A new upload to /a lets go of the old record and of what it held.
	finishNamed(t, tr, "/a", "short")
	if st := tr.Stats(); st.FileDetailBytes != int64(len("short")) {
		t.Fatalf("after replacing /a: %d bytes of detail, want %d", st.FileDetailBytes, len("short"))
	}
	finishNamed(t, tr, "/c", long("c"))
	if name := fileNameOf(tr.Lookup(Anyone, "/c")); name != long("c") {
		t.Fatalf("/c shows file %q once there is room again", name)
	}

	// Expired records give theirs back when the janitor drops them.
	tr.mu.Lock()
	tr.reapLocked(time.Now().Add(DefaultRetain + time.Minute))
	tr.mu.Unlock()
	if st := tr.Stats(); st.FileDetailBytes != 0 || st.Keys != 0 {
		t.Fatalf("after every record expired: %+v, want nothing held", st)
	}
}

func TestFileDetailOfARecordReplacedInFlightIsNotCharged(t *testing.T) {
	tr := newTestTracker(t, Options{})
	first, _ := tr.Begin(Anyone, "/k", 10)
	first.SetFileName("first.bin")
	if _, err := tr.Begin(Anyone, "/k", 10); err != nil { // replaces first, still in flight
		t.Fatal(err)
	}
	tr.Finish(first, Judge(Event{Status: 201, Received: 0}))
	if st := tr.Stats(); st.FileDetailBytes != 0 {
		t.Fatalf("a record the tracker no longer holds is charged %d bytes", st.FileDetailBytes)
	}
}

func TestMultipartDetailIsFrozenAtTheEnd(t *testing.T) {
	tr := newTestTracker(t, Options{})
	data, boundary := twoFileBody(t)
	rec, err := tr.Begin(Anyone, "/m", int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	rec.FollowMultipart(multipart.NewScanner(boundary))
	body := NewBody(io.NopCloser(bytes.NewReader(data)), rec)
	if _, err := io.Copy(io.Discard, body); err != nil {
		t.Fatal(err)
	}
	tr.Finish(rec, Judge(Event{Status: 201, Received: int64(len(data))}))

	s := tr.Lookup(Anyone, "/m")
	if s.Files == nil || len(s.Files.Files) != 2 || !s.Files.Done {
		t.Fatalf("finished multipart upload shows %+v, want its two files, done", s.Files)
	}
	// Charged: the progress, one entry per file, and the bytes of each
	// file's field name, file name (without its directory), path (where it
	// has one) and content type.
	want := int64(unsafe.Sizeof(multipart.Progress{})) + 2*int64(unsafe.Sizeof(multipart.File{})) +
		int64(len("file1")+len("one.txt")+len("text/plain")) +
		int64(len("file2")+len("two.bin")+len("dir/two.bin")+len("application/octet-stream"))
	if st := tr.Stats(); st.FileDetailBytes != want {
		t.Fatalf("detail charged %d bytes, want %d", st.FileDetailBytes, want)
	}
	// Each snapshot's files are its own.
	s.Files.Files[0].FileName = "changed"
	if again := tr.Lookup(Anyone, "/m"); again.Files.Files[0].FileName != "one.txt" {
		t.Fatalf("a caller's change reached the record: %q", again.Files.Files[0].FileName)
	}
}

// twoFileBody is a multipart/form-data body of a field and two files,
// one.txt and dir/two.bin.
func twoFileBody(t *testing.T) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	w := mimemultipart.NewWriter(&buf)
	if err := w.WriteField("folderid", "0"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ field, name, ctype, content string }{
		{"file1", "one.txt", "text/plain", strings.Repeat("a", 1000)},
		{"file2", "dir/two.bin", "application/octet-stream", strings.Repeat("b", 3000)},
	} {
		h := make(textproto.MIMEHeader)
		h.Set("Content-Disposition", `form-data; name="`+f.field+`"; filename="`+f.name+`"`)
		h.Set("Content-Type", f.ctype)
		pw, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		pw.Write([]byte(f.content))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), w.Boundary()
}
