package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-upload-progress/caddy-upload-progress/cmd/upload-origin/origin"
)

func writeCLIFile(t testing.TB, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// `upload` sends a file with each protocol it speaks and follows the
// server's count to completed; the origin then holds the file byte for
// byte.
func TestCLIUpload(t *testing.T) {
	const size = 5<<20 + 7
	src := pattern(size)
	file := filepath.Join(t.TempDir(), "up.bin")
	writeCLIFile(t, file, src)
	e := newEnv(t, "protocol shard pcloud tus")

	for _, tc := range []struct {
		protocol string
		args     []string
		total    int64 // -2: the multipart body's, which the origin frames
		stored   func() string
	}{
		{"shard", []string{"--key", "/cli/up.bin", "--api-key", apiKey}, size, func() string { return e.storedSHA256("/cli/up.bin") }},
		{"pcloud", []string{"--api-key", apiKey}, -2, func() string { return e.storedSHA256("/up.bin") }},
		{"tus", []string{"--api-key", apiKey}, size, func() string { return tusStored(t, e) }},
	} {
		t.Run(tc.protocol, func(t *testing.T) {
			args := append([]string{"upload", file, "--server", e.proxy, "--protocol", tc.protocol, "--json"}, tc.args...)
			c := startCLI(t, args...)
			last := c.expectCompleted(-1, tc.total)
			if tc.total == -2 && (last.Total <= size || last.Uploaded != last.Total) {
				t.Fatalf("pcloud's count %d/%d is not the multipart body's", last.Uploaded, last.Total)
			}
			if tc.total != -2 && last.Uploaded != size {
				t.Fatalf("the server counted %d bytes of %d", last.Uploaded, size)
			}
			if got := tc.stored(); got != sha256Hex(src) {
				t.Fatalf("the origin's file is not the source")
			}
		})
	}
}

// tusStored is the sha256 of the one upload the origin's tus store holds.
func tusStored(t *testing.T, e *env) string {
	t.Helper()
	bins, _ := filepath.Glob(filepath.Join(e.originDir, origin.TusDir, "*"))
	var data []string
	for _, b := range bins {
		if !strings.HasSuffix(b, ".info") {
			data = append(data, b)
		}
	}
	if len(data) != 1 {
		t.Fatalf("the tus store holds %v, want one upload", bins)
	}
	b, err := os.ReadFile(data[0])
	if err != nil {
		t.Fatal(err)
	}
	return sha256Hex(b)
}

// An upload the origin refuses after reading it: the server's count
// reaches the file's length, then the upload failed, exit 1; a re-upload
// to a path taken (no --overwrite) fails the same way.
func TestCLIUploadFailed(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f.bin")
	writeCLIFile(t, file, pattern(1<<20))
	e := newEnv(t, "protocol shard")
	args := []string{"upload", file, "--server", e.proxy, "--key", "/cli/f.bin", "--api-key", apiKey, "--json"}

	c := startCLI(t, append(args, "-H", "X-Origin-Fail: 500")...)
	c.expectExit(1)
	if ls := c.jsonLines(); ls[len(ls)-1].Status != "failed" || !strings.Contains(c.err.String(), "500") {
		t.Fatalf("output:\n%s\nstderr: %s", c.out, c.err)
	}

	c = startCLI(t, args...)
	c.expectCompleted(1<<20, 1<<20)
	c = startCLI(t, args...)
	c.expectExit(1)
	if !strings.Contains(c.err.String(), "409") {
		t.Fatalf("want the origin's 409 on stderr: %s", c.err)
	}
	// With --overwrite the path's earlier (completed) upload is not
	// taken for this one's end.
	c = startCLI(t, append(args, "--overwrite")...)
	c.expectCompleted(1<<20, 1<<20)
}
