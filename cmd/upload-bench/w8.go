package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddy-upload-progress/caddy-upload-progress/cmd/upload-origin/origin"
)

// sandboxSites is what W8 runs against: Caddy's two sites in front of the
// reference origin's sandbox, and the directory the origin stores into.
type sandboxSites struct {
	plain, tracked string // base URLs of PLAIN-sandbox and TRACKED-sandbox
	dir            string // the origin's store
	// verified tells, per side, whether a stored file was compared with
	// what was sent: once per side is enough to know the path is sound.
	verified [2]bool
}

// base is the base URL of a side.
func (s *sandboxSites) base(tracked bool) string {
	if tracked {
		return s.tracked
	}
	return s.plain
}

// W8's sessions all belong to one sandbox and one bearer token.
const (
	w8Token    = "Bearer upload-bench"
	w8Sessions = origin.DefaultSandboxPrefix + "/sandboxes/sb_bench/uploads"
)

// sandboxObject is the part of a session object W8 reads: the origin's
// fields, and the two the proxy adds to a status answer.
type sandboxObject struct {
	UploadID      string          `json:"upload_id"`
	Status        string          `json:"status"`
	ContentLength int64           `json:"content_length"`
	AcceptedBytes int64           `json:"accepted_bytes"`
	ReceivedBytes *int64          `json:"received_bytes"`
	PartsInFlight json.RawMessage `json:"parts_in_flight"`
}

// setupW8 checks that W8's pair is what it claims: the status answer of a
// session created through TRACKED-sandbox comes back overlaid
// (received_bytes, parts_in_flight), while PLAIN-sandbox passes the
// origin's own. The sessions are aborted after.
func setupW8(ctx context.Context, b *bench) (func(), error) {
	if b.sandbox == nil {
		return nil, errors.New("the sandbox origin is not running")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, tracked := range []bool{false, true} {
		base := b.sandbox.base(tracked)
		id, err := sandboxCreate(ctx, b.client, base, fmt.Sprintf("/w8-selfcheck-%d.bin", side(tracked)), 1, 1)
		if err != nil {
			return nil, fmt.Errorf("self-check creation: %w", err)
		}
		obj, body, err := sandboxStatus(ctx, b.client, base, id)
		_, _, derr := sandboxRequest(ctx, b.client, http.MethodDelete, base+w8Sessions+"/"+id, 0, nil, http.StatusNoContent)
		switch {
		case err != nil:
			return nil, fmt.Errorf("self-check status: %w", err)
		case derr != nil:
			return nil, fmt.Errorf("self-check abort: %w", derr)
		case tracked && (obj.Status != "created" || obj.ReceivedBytes == nil || *obj.ReceivedBytes != 0 || string(obj.PartsInFlight) != "[]"):
			return nil, fmt.Errorf("self-check: TRACKED-sandbox status of a created session is not overlaid: %s", body)
		case !tracked && (obj.Status != "created" || obj.ReceivedBytes != nil || obj.PartsInFlight != nil):
			return nil, fmt.Errorf("self-check: PLAIN-sandbox status is not the origin's own: %s", body)
		}
	}
	return func() {}, nil
}

// runW8 runs W8Sessions sandbox sessions through a side, W8Conc at once:
// each a creation, W8Parts parts of W8PartSize sent one after the other,
// and a synchronous completion (answered 200 completed, so that every
// session ends in its run). It returns the throughput, from the first
// creation to the last completion's answer. It then checks what the origin
// stored (every file's size, one file's content once per side) and, on
// TRACKED-sandbox, that the last session was tracked to its end, and
// removes the files.
func runW8(ctx context.Context, b *bench, tracked bool, tag string) (map[string]float64, error) {
	p := b.plan
	size := int64(p.W8Parts) * p.W8PartSize
	base := b.sandbox.base(tracked)
	targets := make([]string, p.W8Sessions)
	for i := range targets {
		targets[i] = fmt.Sprintf("/w8-%s-%d.bin", tag, i)
	}
	defer b.sandbox.remove(targets)
	ids := make([]string, p.W8Sessions)
	start := time.Now()
	err := pool(ctx, p.W8Sessions, p.W8Conc, func(ctx context.Context, i int) error {
		var err error
		ids[i], err = sandboxUpload(ctx, b.client, base, targets[i], p.W8Parts, p.W8PartSize)
		return err
	})
	el := time.Since(start)
	if err != nil {
		return nil, err
	}
	for i, target := range targets {
		content := i == len(targets)-1 && !b.sandbox.verified[side(tracked)]
		if err := b.sandbox.checkStored(target, size, p.W8PartSize, content); err != nil {
			return nil, err
		}
	}
	b.sandbox.verified[side(tracked)] = true
	if tracked {
		id := ids[len(ids)-1]
		obj, body, err := sandboxStatus(ctx, b.client, base, id)
		if err != nil {
			return nil, err
		}
		if obj.Status != "completed" || obj.ReceivedBytes == nil || *obj.ReceivedBytes != size || obj.AcceptedBytes != size || string(obj.PartsInFlight) != "[]" {
			return nil, fmt.Errorf("session %s was not tracked to its end: status %s", id, body)
		}
	}
	return map[string]float64{"throughput": float64(p.W8Sessions) * float64(size) / mib / el.Seconds()}, nil
}

// sandboxUpload sends one session as a client of the sandbox does: a
// creation of parts × partSize bytes of pattern to target, the parts in
// order, each answered 200, and a synchronous completion answered 200
// completed with every byte accepted. It returns the session's upload_id.
func sandboxUpload(ctx context.Context, c *http.Client, base, target string, parts int, partSize int64) (string, error) {
	id, err := sandboxCreate(ctx, c, base, target, int64(parts)*partSize, partSize)
	if err != nil {
		return "", err
	}
	session := base + w8Sessions + "/" + id
	for n := 1; n <= parts; n++ {
		if _, _, err := sandboxRequest(ctx, c, http.MethodPut, fmt.Sprintf("%s/parts/%d", session, n), partSize,
			func() io.ReadCloser { return newPatternBody(partSize) }, http.StatusOK); err != nil {
			return id, err
		}
	}
	_, body, err := sandboxRequest(ctx, c, http.MethodPost, session+"/complete?mode=sync", 0, nil, http.StatusOK)
	if err != nil {
		return id, err
	}
	var obj sandboxObject
	if err := json.Unmarshal(body, &obj); err != nil || obj.Status != "completed" || obj.AcceptedBytes != int64(parts)*partSize {
		return id, fmt.Errorf("completion of %s answered %s", id, body)
	}
	return id, nil
}

// sandboxCreate creates a session of size bytes in parts of partSize, to
// be stored at target, and returns its upload_id.
func sandboxCreate(ctx context.Context, c *http.Client, base, target string, size, partSize int64) (string, error) {
	req, err := json.Marshal(map[string]any{
		"target_path": target, "content_length": size, "part_size": partSize, "kind": "file", "conflict": "replace",
	})
	if err != nil {
		return "", err
	}
	_, body, err := sandboxRequest(ctx, c, http.MethodPost, base+w8Sessions, int64(len(req)),
		func() io.ReadCloser { return io.NopCloser(bytes.NewReader(req)) }, http.StatusCreated)
	if err != nil {
		return "", err
	}
	var obj sandboxObject
	if err := json.Unmarshal(body, &obj); err != nil || obj.UploadID == "" || strings.Contains(obj.UploadID, "/") || obj.ContentLength != size {
		return "", fmt.Errorf("creation answered %s", body)
	}
	return obj.UploadID, nil
}

// sandboxStatus asks a side how session id stands; it returns the object
// and its bytes.
func sandboxStatus(ctx context.Context, c *http.Client, base, id string) (sandboxObject, []byte, error) {
	var obj sandboxObject
	_, body, err := sandboxRequest(ctx, c, http.MethodGet, base+w8Sessions+"/"+id, 0, nil, http.StatusOK)
	if err != nil {
		return obj, body, err
	}
	err = json.Unmarshal(body, &obj)
	return obj, body, err
}

// sandboxRequest sends a request of the sandbox API with W8's token and a
// body of size bytes made by newBody (nil: none; called again if the
// request must be retried), and checks that it is answered want; it
// returns the answer and its body.
func sandboxRequest(ctx context.Context, c *http.Client, method, url string, size int64, newBody func() io.ReadCloser, want int) (*http.Response, []byte, error) {
	var body io.ReadCloser
	if newBody != nil {
		body = newBody()
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, nil, err
	}
	req.ContentLength = size
	if newBody != nil {
		req.GetBody = func() (io.ReadCloser, error) { return newBody(), nil }
	}
	req.Header.Set("Authorization", w8Token)
	if method == http.MethodPost && newBody != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp, b, err
	}
	if resp.StatusCode != want {
		return resp, b, fmt.Errorf("%s %s: %s, want %d: %s", method, url, resp.Status, want, b)
	}
	return resp, b, nil
}

// file is where the origin stores a session's target.
func (s *sandboxSites) file(target string) string {
	return filepath.Join(s.dir, filepath.FromSlash(target))
}

// checkStored checks that the origin stored size bytes at target and, with
// content, that they are the bytes sent: each part of partSize bytes is
// pattern, repeated, from its start.
func (s *sandboxSites) checkStored(target string, size, partSize int64, content bool) error {
	if !content {
		st, err := os.Stat(s.file(target))
		if err != nil {
			return err
		}
		if st.Size() != size {
			return fmt.Errorf("the origin stored %d bytes at %s, want %d", st.Size(), target, size)
		}
		return nil
	}
	b, err := os.ReadFile(s.file(target))
	if err != nil {
		return err
	}
	if int64(len(b)) != size {
		return fmt.Errorf("the origin stored %d bytes at %s, want %d", len(b), target, size)
	}
	for off := int64(0); off < size; {
		k := off % partSize          // where in its part the byte at off lies
		i := k % int64(len(pattern)) // and so where in pattern
		n := min(int64(len(pattern))-i, partSize-k, size-off)
		if !bytes.Equal(b[off:off+n], pattern[i:i+n]) {
			return fmt.Errorf("the origin stored other bytes than were sent at %s, at offset %d", target, off)
		}
		off += n
	}
	return nil
}

// remove deletes the stored targets, so that the rounds do not fill the
// disk.
func (s *sandboxSites) remove(targets []string) {
	for _, t := range targets {
		_ = os.Remove(s.file(t))
	}
}
