package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// sending is an upload ready to go: the key the server will know it by,
// and the request(s) that send its bytes.
type sending struct {
	key  string
	send func(ctx context.Context) error
}

// senders prepare an upload of the file in each protocol upload speaks.
var senders = map[string]func(ctx context.Context, r *run, f *os.File, size int64) (sending, error){
	"shard":  sendShard,
	"pcloud": sendPcloud,
	"tus":    sendTus,
}

// sendShard is POST /fso?path=KEY&informProgress=true with the file as
// the body and the API key in x-user-api-key.
func sendShard(_ context.Context, r *run, f *os.File, size int64) (sending, error) {
	q := url.Values{"path": {r.o.key}, "informProgress": {"true"}}
	if r.o.overwrite {
		q.Set("overwrite", "true")
	}
	u := r.o.url("/fso", q)
	return sending{key: r.o.key, send: func(ctx context.Context) error {
		h := r.o.header("X-User-Api-Key", r.o.apiKey, "Content-Type", "application/octet-stream")
		resp, err := r.do(ctx, http.MethodPost, u, h, f, size)
		if err != nil {
			return err
		}
		return answered(resp, "the upload")
	}}, nil
}

// sendPcloud is pCloud's uploadfile: a multipart POST of the file with
// the progresshash (--key, or a random one), the auth token and the
// file's name.
func sendPcloud(_ context.Context, r *run, f *os.File, size int64) (sending, error) {
	hash := r.o.key
	if hash == "" {
		b := make([]byte, 16)
		rand.Read(b)
		hash = hex.EncodeToString(b)
	}
	name := filepath.Base(f.Name())
	q := url.Values{"progresshash": {hash}, "filename": {name}}
	if r.o.apiKey != "" {
		q.Set("auth", r.o.apiKey)
	}
	u := r.o.url("/uploadfile", q)
	// The multipart framing around the file, written ahead, so that the
	// body has a length (the server's total) and the file streams.
	var head bytes.Buffer
	mw := multipart.NewWriter(&head)
	if _, err := mw.CreateFormFile("file", name); err != nil {
		return sending{}, err
	}
	prefix := bytes.Clone(head.Bytes())
	head.Reset()
	mw.Close()
	suffix := head.Bytes()
	return sending{key: hash, send: func(ctx context.Context) error {
		body := io.MultiReader(bytes.NewReader(prefix), f, bytes.NewReader(suffix))
		h := r.o.header("Content-Type", mw.FormDataContentType())
		resp, err := r.do(ctx, http.MethodPost, u, h, body, int64(len(prefix))+size+int64(len(suffix)))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
		var a struct {
			Result *int   `json:"result"`
			Error  string `json:"error"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &a) != nil || a.Result == nil {
			return fmt.Errorf("the upload was answered %s: %s", resp.Status, clip(b))
		}
		if *a.Result != 0 {
			return fmt.Errorf("the upload was refused: %s (result %d)", a.Error, *a.Result)
		}
		return nil
	}}, nil
}

// sendTus creates a tus upload at the tus endpoint (the creation is done
// here: its upload URL is the key) and sends the file in one PATCH.
func sendTus(ctx context.Context, r *run, f *os.File, size int64) (sending, error) {
	endpoint := r.o.url(r.o.tusEndpoint, nil)
	h := r.o.header("X-User-Api-Key", r.o.apiKey, "Tus-Resumable", "1.0.0",
		"Upload-Length", strconv.FormatInt(size, 10),
		"Upload-Metadata", "filename "+base64.StdEncoding.EncodeToString([]byte(filepath.Base(f.Name()))))
	resp, err := r.do(ctx, http.MethodPost, endpoint, h, nil, 0)
	if err != nil {
		return sending{}, err
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if resp.StatusCode != http.StatusCreated || err != nil {
		return sending{}, fmt.Errorf("creating the tus upload at %s: answered %s without an upload URL", endpoint, resp.Status)
	}
	return sending{key: loc.String(), send: func(ctx context.Context) error {
		h := r.o.header("X-User-Api-Key", r.o.apiKey, "Tus-Resumable", "1.0.0",
			"Upload-Offset", "0", "Content-Type", "application/offset+octet-stream")
		resp, err := r.do(ctx, http.MethodPatch, loc.String(), h, f, size)
		if err != nil {
			return err
		}
		return answered(resp, "the PATCH")
	}}, nil
}

// do sends a request with body of size bytes (none when body is nil).
// Uploads take as long as they take: the client has no timeout.
func (r *run) do(ctx context.Context, method, u string, h http.Header, body io.Reader, size int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	req.Header = h
	if body != nil {
		// A plain reader: the transport must not look into the file.
		req.Body, req.ContentLength = io.NopCloser(body), size
	}
	resp, err := uploadClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	return resp, nil
}

// uploadClient sends uploads: no overall timeout.
var uploadClient = &http.Client{}

// answered is nil for a 2xx answer, else an error with its status and
// the start of its body. It closes the body.
func answered(resp *http.Response, what string) error {
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return fmt.Errorf("%s was answered %s: %s", what, resp.Status, clip(b))
}

// clip is the start of an answer's body, for a message.
func clip(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
