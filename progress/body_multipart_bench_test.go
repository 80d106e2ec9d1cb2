package progress

import (
	"bytes"
	"github.com/caddy-upload-progress/caddy-upload-progress/progress/multipart"
	"io"
	"math/rand/v2"
	mimemultipart "mime/multipart"
	"testing"
)

// threeFileBody is a multipart/form-data body of three 1 MiB files, as W3
// of the performance harness sends it.
func threeFileBody(b *testing.B) ([]byte, string) {
	b.Helper()
	var buf bytes.Buffer
	mw := mimemultipart.NewWriter(&buf)
	for i, name := range []string{"a.bin", "b.bin", "c.bin"} {
		fw, err := mw.CreateFormFile("file", name)
		if err != nil {
			b.Fatal(err)
		}
		// Random content, as real files are to the scanner: a CR every
		// 256 bytes or so, each a possible start of a delimiter.
		content := make([]byte, 1<<20)
		rand.NewChaCha8([32]byte{byte(i)}).Read(content)
		fw.Write(content)
	}
	mw.Close()
	return buf.Bytes(), mw.Boundary()
}

// benchmarkBodyThreeFiles reads the body through Body in 32 KiB reads, as
// the proxy's transport does, with or without following its files.
func benchmarkBodyThreeFiles(b *testing.B, follow bool, readSize int) {
	data, boundary := threeFileBody(b)
	tr := newTestTracker(b, Options{})
	buf := make([]byte, readSize)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		rec, err := tr.Begin(Anyone, "/bench", int64(len(data)))
		if err != nil {
			b.Fatal(err)
		}
		if follow {
			rec.FollowMultipart(multipart.NewScanner(boundary))
		}
		body := NewBody(io.NopCloser(bytes.NewReader(data)), rec)
		for {
			if _, err := body.Read(buf); err != nil {
				break
			}
		}
	}
}

// BenchmarkBodyThreeFilesCounted is the baseline: counting only.
func BenchmarkBodyThreeFilesCounted(b *testing.B) { benchmarkBodyThreeFiles(b, false, 32<<10) }

// BenchmarkBodyThreeFilesScanned also follows the files; the README reports
// its ratio to the baseline.
func BenchmarkBodyThreeFilesScanned(b *testing.B) { benchmarkBodyThreeFiles(b, true, 32<<10) }

// The same in 4 KiB reads, the size of the proxy transport's write buffer.
func BenchmarkBodyThreeFilesCounted4K(b *testing.B) { benchmarkBodyThreeFiles(b, false, 4<<10) }
func BenchmarkBodyThreeFilesScanned4K(b *testing.B) { benchmarkBodyThreeFiles(b, true, 4<<10) }
