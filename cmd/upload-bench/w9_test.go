package main

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"testing"

	_ "github.com/caddy-upload-progress/caddy-upload-progress/protocols/dstor"
)

// TestW9Sites checks W9's A/B pair the same way: TRACKED-dstor runs the
// handler as `upload_progress { protocol dstor }` configures it, then a
// reverse_proxy to the reference origin, and PLAIN-dstor that
// reverse_proxy alone.
func TestW9Sites(t *testing.T) {
	withDstor := baseSpec
	withDstor.dstor, withDstor.dstorPlainPort, withDstor.dstorTrackedPort = "127.0.0.1:10", 11, 12
	checkPairSites(t, withDstor, "dstor", "127.0.0.1:10", "127.0.0.1:11", "127.0.0.1:12")
}

// TestW9Folder checks the folder W9 sends: W9Files files in the size range
// asked, in W9Chunks multipart bodies that hold each of them once, in
// order, with its path and bytes.
func TestW9Folder(t *testing.T) {
	p := fullPlan
	f := newDstorFolder(p)
	if len(f.files) != p.W9Files || len(f.chunks) != p.W9Chunks || len(f.types) != p.W9Chunks {
		t.Fatalf("%d files in %d chunks, want %d in %d", len(f.files), len(f.chunks), p.W9Files, p.W9Chunks)
	}
	var total int64
	sizes := map[int64]bool{}
	for _, file := range f.files {
		if file.size < p.W9MinFile || file.size > p.W9MaxFile {
			t.Errorf("%s: %d bytes, out of [%d, %d]", file.path, file.size, p.W9MinFile, p.W9MaxFile)
		}
		sizes[file.size] = true
	}
	if len(sizes) < p.W9Files/2 {
		t.Errorf("only %d different sizes among %d files", len(sizes), p.W9Files)
	}
	next := 0
	for c, body := range f.chunks {
		total += int64(len(body))
		_, params, err := mime.ParseMediaType(f.types[c])
		if err != nil {
			t.Fatal(err)
		}
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("chunk %d: %v", c, err)
			}
			got, _ := io.ReadAll(part)
			if next >= len(f.files) {
				t.Fatalf("chunk %d holds more files than the folder", c)
			}
			want := f.files[next]
			// The path as sent: Part.FileName keeps only its last element.
			_, disp, _ := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
			if disp["filename"] != want.path || !bytes.Equal(got, pattern[want.off:want.off+want.size]) {
				t.Errorf("chunk %d, file %d: %q of %d bytes, want %q of %d", c, next, disp["filename"], len(got), want.path, want.size)
			}
			next++
		}
	}
	if next != len(f.files) || total != f.bytes {
		t.Errorf("the chunks hold %d files in %d bytes, want %d in %d", next, total, len(f.files), f.bytes)
	}
}
