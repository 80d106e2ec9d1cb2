package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// newClient returns the load generator's HTTP/1.1 client: enough idle
// connections per host for every worker, no compression, large buffers so
// that the client is cheap per byte.
func newClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ResponseHeaderTimeout: 2 * time.Minute,
		WriteBufferSize:       64 << 10,
		ReadBufferSize:        64 << 10,
	}}
}

// pattern is the content of every generated body: 1 MiB of seeded
// pseudo-random bytes, the same on every run.
var pattern = func() []byte {
	b := make([]byte, 1<<20)
	r := rand.NewChaCha8([32]byte{'u', 'p', 'l', 'o', 'a', 'd', '-', 'b', 'e', 'n', 'c', 'h'})
	_, _ = r.Read(b)
	return b
}()

// patternBody streams n bytes of pattern, repeated, from memory.
type patternBody struct{ off, n int64 }

func newPatternBody(n int64) *patternBody { return &patternBody{n: n} }

func (b *patternBody) Read(p []byte) (int, error) {
	if b.off >= b.n {
		return 0, io.EOF
	}
	i := b.off % int64(len(pattern))
	k := copy(p, pattern[i:min(int64(len(pattern)), i+b.n-b.off)])
	b.off += int64(k)
	return k, nil
}

func (b *patternBody) Close() error { return nil }

// upload POSTs a body of size bytes made by newBody (called again if the
// request must be retried) and checks the origin's 201.
func upload(ctx context.Context, c *http.Client, url, contentType string, size int64, newBody func() io.ReadCloser) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, newBody())
	if err != nil {
		return err
	}
	req.ContentLength = size
	req.GetBody = func() (io.ReadCloser, error) { return newBody(), nil }
	req.Header.Set("Content-Type", contentType)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("POST %s: %s", url, resp.Status)
	}
	return nil
}

// uploadPattern uploads size bytes of pattern.
func uploadPattern(ctx context.Context, c *http.Client, url string, size int64) error {
	return upload(ctx, c, url, "application/octet-stream", size,
		func() io.ReadCloser { return newPatternBody(size) })
}

// uploadBytes uploads b.
func uploadBytes(ctx context.Context, c *http.Client, url, contentType string, b []byte) error {
	return upload(ctx, c, url, contentType, int64(len(b)),
		func() io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) })
}

// get GETs url, reads the whole reply and checks it is a 200; it returns
// the body.
func get(ctx context.Context, c *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return b, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b, nil
}

// pool runs fn(ctx, i) for i in [0, n) on conc workers. The first error
// cancels the others and is returned; so does the end of ctx.
func pool(ctx context.Context, n, conc int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(conc, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}
