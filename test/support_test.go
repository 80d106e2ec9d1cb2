package test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/coder/websocket"
)

// held is a request in flight whose client sends the rest of its body
// only when told to, or drops it; R is what the client got.
type held[R any] struct {
	pw     *io.PipeWriter
	done   <-chan R
	rest   []byte
	cancel context.CancelFunc // ends the request's context
	once   sync.Once
	res    R
}

// finish sends the rest of the body and returns what the client got.
func (h *held[R]) finish() R {
	h.once.Do(func() {
		h.pw.Write(h.rest)
		h.pw.Close()
		h.res = <-h.done
		h.cancel()
	})
	return h.res
}

// drop has the client go away mid-body, as a dropped connection does, and
// returns what it got.
func (h *held[R]) drop() R {
	h.once.Do(func() {
		h.cancel()
		h.pw.CloseWithError(errors.New("the client went away"))
		h.res = <-h.done
	})
	return h.res
}

// holdUpload starts an upload of size bytes to path, sends the first
// bytes of it and returns once the record shows them. The rest waits for
// finish; a test that never calls it has the upload dropped as it ends.
func (e *env) holdUpload(path string, size, first int) *held[uploadResult] {
	e.t.Helper()
	data := pattern(size)
	pr, pw := io.Pipe()
	h := &held[uploadResult]{pw: pw, done: e.asyncUpload(path, pr, int64(size), "", nil), rest: data[first:], cancel: func() {}}
	e.t.Cleanup(func() { h.drop() })
	if _, err := pw.Write(data[:first]); err != nil {
		e.t.Fatalf("sending the first %d bytes of %s: %v", first, path, err)
	}
	e.waitStatus(path, func(p progressReply) bool { return p.Uploaded == int64(first) })
	return h
}

// dialWS opens a WebSocket to the proxy at pathAndQuery with hdr.
func (e *env) dialWS(ctx context.Context, pathAndQuery string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	return websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.proxy, "http")+pathAndQuery, &websocket.DialOptions{HTTPHeader: hdr})
}

// statusWith asks GET /progress?path= with the headers hdr only, and
// returns the status code and the reply's body.
func (e *env) statusWith(path string, hdr http.Header) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.proxy+"/progress?path="+url.QueryEscape(path), nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("progress request: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// grew is how much series grew between two scrapes of /metrics.
func grew(before, after, series string) float64 {
	return metricValue(after, series) - metricValue(before, series)
}
