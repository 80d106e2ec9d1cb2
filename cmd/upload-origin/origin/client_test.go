package origin

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// fetch sends r with ts's client and returns the answer, its body read
// whole.
func fetch(ts *httptest.Server, r *http.Request) (*http.Response, []byte, error) {
	resp, err := ts.Client().Do(r)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// heldRequest is an upload request under way, its body held after its
// first half until release.
type heldRequest struct {
	pw   *io.PipeWriter
	rest []byte
	done chan struct{} // closed once the origin answered
	err  error         // the answer, once done: nil for a 200
}

// holdRequest starts sending body to url with the headers (name, value,
// …) and returns once the origin reads the body, that is once it counts
// the upload as under way: the client sends Expect: 100-continue and
// waits for the origin's 100 before any byte. what names the request in
// errors.
func holdRequest(t *testing.T, what, method, url string, body []byte, header ...string) *heldRequest {
	t.Helper()
	pr, pw := io.Pipe()
	h := &heldRequest{pw: pw, rest: body[len(body)/2:], done: make(chan struct{})}
	// A test that stops early must not leave the request hanging: the
	// test server waits for it on closing.
	t.Cleanup(func() {
		pw.CloseWithError(errors.New("the test ended"))
		<-h.done
	})
	r, err := http.NewRequest(method, url, pr)
	if err != nil {
		t.Fatal(err)
	}
	r.ContentLength = int64(len(body))
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	r.Header.Set("Expect", "100-continue")
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}
	go func() {
		defer client.CloseIdleConnections()
		resp, err := client.Do(r)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("%s: %s %s", what, resp.Status, b)
			}
		}
		pr.CloseWithError(err)
		h.err = err
		close(h.done)
	}()
	if _, err := pw.Write(body[:len(body)/2]); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return h
}

// release sends the rest of the body and waits for the origin's answer.
func (h *heldRequest) release() error {
	if _, err := h.pw.Write(h.rest); err != nil {
		return err
	}
	h.pw.Close()
	<-h.done
	return h.err
}

// atOnce runs each of sends in a goroutine of its own and, once all are
// done, fails the test with any error they returned.
func atOnce(t *testing.T, sends ...func() error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(sends))
	for _, send := range sends {
		wg.Go(func() { errs <- send() })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
