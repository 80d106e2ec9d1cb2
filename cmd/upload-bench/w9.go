package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// dstorPrefix is the reference origin's dStor API, the dstor module's
// default prefix.
const dstorPrefix = "/v1/upload"

// dstorAuth is W9's credential: the reference origin takes any.
const dstorAuth = "Bearer w9"

// dstorSites is what W9 runs against: Caddy's two sites in front of the
// reference origin, the directory it stores into, and the folder sent.
type dstorSites struct {
	plain, tracked string // base URLs of PLAIN-dstor and TRACKED-dstor
	dir            string // the origin's store
	folder         *dstorFolder
	// verified tells, per side, whether a stored folder was compared with
	// what was sent: once per side is enough to know the path is sound.
	verified [2]bool
}

// base is the base URL of a side.
func (s *dstorSites) base(tracked bool) string {
	if tracked {
		return s.tracked
	}
	return s.plain
}

// dstorFile is a file of W9's folder: its path in the folder, and where
// its bytes lie in pattern.
type dstorFile struct {
	path      string
	off, size int64
}

// dstorFolder is W9's folder, built once: its files, and the multipart
// body of each chunk.
type dstorFolder struct {
	files  []dstorFile
	chunks [][]byte
	types  []string // each chunk's Content-Type, with its boundary
	bytes  int64    // the chunks' bodies in all
}

// newDstorFolder makes W9Files files of W9MinFile to W9MaxFile bytes (the
// sizes spread evenly over the range), in ten directories, and splits them
// into W9Chunks chunks of consecutive files, as a dStor client does.
func newDstorFolder(p plan) *dstorFolder {
	f := &dstorFolder{}
	span := p.W9MaxFile - p.W9MinFile + 1
	for i := range p.W9Files {
		size := p.W9MinFile + int64(i)*7919%span
		off := int64(i) * 4099 % (int64(len(pattern)) - p.W9MaxFile)
		f.files = append(f.files, dstorFile{path: fmt.Sprintf("d%d/f%03d.bin", i%10, i), off: off, size: size})
	}
	per := (len(f.files) + p.W9Chunks - 1) / p.W9Chunks
	for c := range p.W9Chunks {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		for _, file := range f.files[min(c*per, len(f.files)):min((c+1)*per, len(f.files))] {
			w, _ := mw.CreateFormFile("file", file.path) // writes to memory
			w.Write(pattern[file.off : file.off+file.size])
		}
		mw.Close()
		f.chunks = append(f.chunks, buf.Bytes())
		f.types = append(f.types, mw.FormDataContentType())
		f.bytes += int64(buf.Len())
	}
	return f
}

// setupW9 checks that W9's pair is what it claims: right after a token,
// TRACKED-dstor answers get-status itself (UPLOADING), while PLAIN-dstor
// passes it to the origin, which says PENDING.
func setupW9(ctx context.Context, b *bench) (func(), error) {
	if b.dstor == nil {
		return nil, errors.New("the dStor origin is not running")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, tracked := range []bool{false, true} {
		base := b.dstor.base(tracked)
		tok, err := dstorToken(ctx, b.client, base, "/w9-selfcheck", 1)
		if err != nil {
			return nil, fmt.Errorf("self-check token: %w", err)
		}
		st, body, err := dstorStatus(ctx, b.client, base, tok)
		want := map[bool]string{false: "PENDING", true: "UPLOADING"}[tracked]
		if err != nil || st.Status != want {
			return nil, fmt.Errorf("self-check: get-status right after the token through %s: %q (%v), want %s", base, body, err, want)
		}
	}
	return func() {}, nil
}

// runW9 uploads W9's folder through a side: a get-token, then its chunks
// one after the other, and returns the throughput from the get-token to
// the last chunk's answer. Untimed, it then waits for the origin's DONE
// and checks it (on TRACKED-dstor, with the proxy's counts of the whole
// folder; on PLAIN-dstor, without), checks what the origin stored (every
// file's size, and once per side their bytes), and removes the folder.
func runW9(ctx context.Context, b *bench, tracked bool, tag string) (map[string]float64, error) {
	s, f := b.dstor, b.dstor.folder
	base, folder := s.base(tracked), "/w9-"+tag
	start := time.Now()
	tok, err := dstorToken(ctx, b.client, base, folder, len(f.chunks))
	if err != nil {
		return nil, err
	}
	for i, chunk := range f.chunks {
		code, body, err := dstorRequest(ctx, b.client, http.MethodPost, base+dstorPrefix+"/", tok, f.types[i], chunk)
		if err != nil {
			return nil, err
		}
		if code != http.StatusOK {
			return nil, fmt.Errorf("chunk %d of %s: %d %s", i+1, folder, code, body)
		}
	}
	el := time.Since(start)
	defer os.RemoveAll(filepath.Join(s.dir, folder))

	st, body, err := dstorWaitDone(ctx, b.client, base, tok)
	if err != nil {
		return nil, err
	}
	counted := st.ChunksUploaded != nil
	if counted != tracked || len(st.Data.Files) != len(f.files) ||
		tracked && (*st.ChunksUploaded != len(f.chunks) || *st.FilesUploaded != len(f.files) || *st.BytesUploaded != f.bytes) {
		return nil, fmt.Errorf("%s was not tracked as its side should (tracked: %v): DONE %.300s", folder, tracked, body)
	}
	if err := s.checkStored(folder, !s.verified[side(tracked)]); err != nil {
		return nil, err
	}
	s.verified[side(tracked)] = true
	return map[string]float64{"throughput": float64(f.bytes) / mib / el.Seconds()}, nil
}

// dstorReply is the part of a get-status reply W9 checks: the origin's
// status and data, and the counts TRACKED-dstor adds.
type dstorReply struct {
	Status string `json:"status"`
	Data   struct {
		Files []json.RawMessage `json:"files"`
	} `json:"data"`
	ChunksUploaded *int   `json:"chunksUploaded"`
	FilesUploaded  *int   `json:"filesUploaded"`
	BytesUploaded  *int64 `json:"bytesUploaded"`
}

// dstorToken asks for a token for a folder of chunks chunks.
func dstorToken(ctx context.Context, c *http.Client, base, folder string, chunks int) (string, error) {
	req := fmt.Sprintf(`{"chunks_number":%d,"folder_path":%s}`, chunks, strconv.Quote(folder))
	code, body, err := dstorRequest(ctx, c, http.MethodPost, base+dstorPrefix+"/get-token", "", "application/json", []byte(req))
	if err != nil {
		return "", err
	}
	var v struct {
		Token string `json:"token"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &v) != nil || v.Token == "" {
		return "", fmt.Errorf("get-token: %d %s", code, body)
	}
	return v.Token, nil
}

// dstorStatus asks get-status about the upload of tok.
func dstorStatus(ctx context.Context, c *http.Client, base, tok string) (dstorReply, []byte, error) {
	var st dstorReply
	code, body, err := dstorRequest(ctx, c, http.MethodGet, base+dstorPrefix+"/get-status/", tok, "", nil)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("get-status: %d", code)
	}
	if err == nil {
		err = json.Unmarshal(body, &st)
	}
	return st, body, err
}

// dstorWaitDone polls get-status every 5 ms until the upload of tok is
// DONE, for at most 30 s; ERROR ends it too, as an error.
func dstorWaitDone(ctx context.Context, c *http.Client, base, tok string) (dstorReply, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		st, body, err := dstorStatus(ctx, c, base, tok)
		switch {
		case err != nil:
			return st, body, err
		case st.Status == "DONE":
			return st, body, nil
		case st.Status == "ERROR":
			return st, body, fmt.Errorf("the upload ended in ERROR: %s", body)
		}
		select {
		case <-ctx.Done():
			return st, body, fmt.Errorf("no DONE within 30 s: %s", body)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// dstorRequest sends a dStor request with W9's credential, the token tok
// (if set) and body (if not nil) of contentType; it returns the answer's
// status and body.
func dstorRequest(ctx context.Context, c *http.Client, method, url, tok, contentType string, body []byte) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", dstorAuth)
	if tok != "" {
		req.Header.Set("X-Dstor-Upload-Token", tok)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// checkStored checks that the origin stored every file of the folder in
// folder with its size and, with content, the bytes sent.
func (s *dstorSites) checkStored(folder string, content bool) error {
	for _, f := range s.folder.files {
		name := filepath.Join(s.dir, folder, filepath.FromSlash(f.path))
		if !content {
			st, err := os.Stat(name)
			if err != nil {
				return err
			}
			if st.Size() != f.size {
				return fmt.Errorf("the origin stored %d bytes of %s/%s, want %d", st.Size(), folder, f.path, f.size)
			}
			continue
		}
		got, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, pattern[f.off:f.off+f.size]) {
			return fmt.Errorf("the origin stored other bytes than were sent for %s/%s", folder, f.path)
		}
	}
	return nil
}
