package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// tusSites is what W7 runs against: Caddy's two sites in front of tusd,
// and the directory tusd stores its uploads in.
type tusSites struct {
	plain, tracked string // base URLs of PLAIN-tus and TRACKED-tus
	dir            string // tusd's store
	// verified tells, per side, whether a stored upload was compared with
	// what was sent: once per side is enough to know the path is sound.
	verified [2]bool
}

// base is the base URL of a side.
func (s *tusSites) base(tracked bool) string {
	if tracked {
		return s.tracked
	}
	return s.plain
}

// setupW7 checks that W7's pair is what it claims: an upload created
// through TRACKED-tus is then reported by its status endpoint, while
// PLAIN-tus passes the same status URL to tusd, which has no such thing.
func setupW7(ctx context.Context, b *bench) (func(), error) {
	if b.tus == nil {
		return nil, errors.New("tusd is not running")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, tracked := range []bool{false, true} {
		up, _, err := tusCreate(ctx, b.client, b.tus.base(tracked), 1)
		if up != "" {
			defer b.tus.remove(up)
		}
		if err != nil {
			return nil, fmt.Errorf("self-check creation: %w", err)
		}
		status := "/tus/progress?upload=" + url.QueryEscape(up)
		if !tracked {
			if body, err := get(ctx, b.client, b.tus.plain+status); err == nil || strings.Contains(string(body), `"status"`) {
				return nil, fmt.Errorf("self-check: PLAIN-tus answered a status request itself: %q", body)
			}
			continue
		}
		if r, body, err := tusStatus(ctx, b, up); err != nil || r.Status != "created" || r.Length != 1 {
			return nil, fmt.Errorf("self-check: TRACKED-tus status of a created upload: %q, %v", body, err)
		}
	}
	return func() {}, nil
}

// runW7 makes one W7Size tus upload in W7Patch PATCHes through a side and
// returns its throughput, from the creation to the last PATCH's answer. It
// then checks what tusd stored (the size every time, the content once per
// side) and, on TRACKED-tus, that the upload was tracked to its end, and
// removes the upload from tusd's store.
func runW7(ctx context.Context, b *bench, tracked bool, tag string) (map[string]float64, error) {
	size := b.plan.W7Size
	start := time.Now()
	up, err := tusUpload(ctx, b.client, b.tus.base(tracked), size, b.plan.W7Patch)
	el := time.Since(start)
	if up != "" {
		defer b.tus.remove(up)
	}
	if err != nil {
		return nil, err
	}
	if err := b.tus.checkStored(up, size, !b.tus.verified[side(tracked)]); err != nil {
		return nil, err
	}
	b.tus.verified[side(tracked)] = true
	if tracked {
		r, body, err := tusStatus(ctx, b, up)
		if err != nil {
			return nil, err
		}
		if r.Status != "completed" || r.Offset != size || r.Length != size {
			return nil, fmt.Errorf("upload %s was not tracked to its end: status %s", up, body)
		}
	}
	return map[string]float64{"throughput": float64(size) / mib / el.Seconds()}, nil
}

// tusUpload uploads size bytes of pattern as a tus 1.0 client does: a
// creation POST, then PATCHes of at most patch bytes, each from the offset
// the server answered last. Every PATCH must be answered 204 with the
// offset it reached. It returns the upload's path, also when a PATCH
// failed, so that the caller can clean up.
func tusUpload(ctx context.Context, c *http.Client, base string, size, patch int64) (string, error) {
	up, off, err := tusCreate(ctx, c, base, size)
	if err != nil {
		return up, err
	}
	for off < size {
		n := min(patch, size-off)
		from := off
		resp, err := tusRequest(ctx, c, http.MethodPatch, base+up, n,
			func() io.ReadCloser { return &patternBody{off: from, n: from + n} },
			map[string]string{"Upload-Offset": strconv.FormatInt(off, 10), "Content-Type": "application/offset+octet-stream"})
		if err != nil {
			return up, err
		}
		if resp.StatusCode != http.StatusNoContent {
			return up, fmt.Errorf("PATCH %s at %d: %s", up, off, resp.Status)
		}
		// Each answer must move the offset by the PATCH's length, which
		// also bounds the loop to size/patch PATCHes.
		got, err := strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
		if err != nil || got != off+n {
			return up, fmt.Errorf("PATCH %s at %d of %d bytes answered Upload-Offset %q", up, off, n, resp.Header.Get("Upload-Offset"))
		}
		off = got
	}
	return up, nil
}

// tusCreate creates an upload of size bytes and returns its path and the
// offset to start from (0 unless the server answers otherwise).
func tusCreate(ctx context.Context, c *http.Client, base string, size int64) (string, int64, error) {
	resp, err := tusRequest(ctx, c, http.MethodPost, base+tusdBase, 0, nil,
		map[string]string{"Upload-Length": strconv.FormatInt(size, 10)})
	if err != nil {
		return "", 0, err
	}
	if resp.StatusCode != http.StatusCreated {
		return "", 0, fmt.Errorf("creation: %s", resp.Status)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.Path, tusdBase) || len(loc.Path) == len(tusdBase) {
		return "", 0, fmt.Errorf("creation answered Location %q", resp.Header.Get("Location"))
	}
	var off int64
	if h := resp.Header.Get("Upload-Offset"); h != "" {
		if off, err = strconv.ParseInt(h, 10, 64); err != nil || off < 0 || off > size {
			return loc.Path, 0, fmt.Errorf("creation answered Upload-Offset %q", h)
		}
	}
	return loc.Path, off, nil
}

// tusRequest sends a tus request with a body of size bytes made by newBody
// (nil: no body; called again if the request must be retried) and returns
// the answer, its body read and closed.
func tusRequest(ctx context.Context, c *http.Client, method, target string, size int64, newBody func() io.ReadCloser, hdr map[string]string) (*http.Response, error) {
	var body io.ReadCloser
	if newBody != nil {
		body = newBody()
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, err
	}
	req.ContentLength = size
	if newBody != nil {
		req.GetBody = func() (io.ReadCloser, error) { return newBody(), nil }
	}
	req.Header.Set("Tus-Resumable", "1.0.0")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return nil, err
	}
	return resp, nil
}

// tusReply is the part of TRACKED-tus's status reply W7 checks.
type tusReply struct {
	Status string `json:"status"`
	Length int64  `json:"length"`
	Offset int64  `json:"offset"`
}

// tusStatus asks TRACKED-tus's status endpoint about upload up; it returns
// the reply and its body.
func tusStatus(ctx context.Context, b *bench, up string) (tusReply, []byte, error) {
	var r tusReply
	body, err := get(ctx, b.client, b.tus.tracked+"/tus/progress?upload="+url.QueryEscape(up))
	if err != nil {
		return r, body, err
	}
	err = json.Unmarshal(body, &r)
	return r, body, err
}

// file is where tusd stores the bytes of upload up.
func (s *tusSites) file(up string) string { return filepath.Join(s.dir, path.Base(up)) }

// checkStored checks that tusd stored size bytes for upload up and, with
// content, that they are the bytes sent: pattern repeated, compared in
// pattern-sized reads.
func (s *tusSites) checkStored(up string, size int64, content bool) error {
	f, err := os.Open(s.file(up))
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() != size {
		return fmt.Errorf("tusd stored %d bytes of %s, want %d", st.Size(), up, size)
	}
	if !content {
		return nil
	}
	buf := make([]byte, len(pattern))
	for off := int64(0); off < size; off += int64(len(buf)) {
		n, err := io.ReadFull(f, buf)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("reading %s at %d: %w", up, off, err)
		}
		if !bytes.Equal(buf[:n], pattern[:n]) {
			return fmt.Errorf("tusd stored other bytes than were sent for %s, in the MiB at %d", up, off)
		}
	}
	return nil
}

// remove deletes upload up from tusd's store (its data and its .info), so
// that the rounds do not fill the disk.
func (s *tusSites) remove(up string) {
	_ = os.Remove(s.file(up))
	_ = os.Remove(s.file(up) + ".info")
}
