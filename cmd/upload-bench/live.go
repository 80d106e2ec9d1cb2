package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// W5's live upload: an upload to TRACKED that is fed liveFed bytes at once,
// then one byte every 100 ms (so it stays "uploading" with a 7-digit
// count), and finished when W5 is done.
const (
	liveKey   = "/w5-live"
	liveTotal = 8 * mib
	liveFed   = 1 * mib
)

// liveRespondBody is the static route's body: a status reply of the live
// upload, byte for byte the size of the real one.
func liveRespondBody() string {
	return fmt.Sprintf(`{"total_size":%d,"uploaded":%d,"status":"uploading","error":""}`+"\n", liveTotal, liveFed)
}

type liveUpload struct {
	key         string
	respondBody string
	pw          *io.PipeWriter
	stopTrickle chan struct{}
	trickled    chan int64 // the trickle's byte count, when it stops
	result      chan error // the upload's outcome
}

// setupW5 starts the live upload and checks that its status reply has the
// static route's size; the teardown finishes the upload.
func setupW5(ctx context.Context, b *bench) (func(), error) {
	pr, pw := io.Pipe()
	l := &liveUpload{
		key: liveKey, respondBody: liveRespondBody(), pw: pw,
		stopTrickle: make(chan struct{}), trickled: make(chan int64, 1), result: make(chan error, 1),
	}
	uctx, cancel := context.WithCancel(ctx)
	go func() {
		req, err := http.NewRequestWithContext(uctx, http.MethodPost, b.uploadURL(true, liveKey), pr)
		if err != nil {
			l.result <- err
			return
		}
		req.ContentLength = liveTotal
		resp, err := newClient().Do(req) // its own connection, outside the measured pool
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				err = fmt.Errorf("live upload: %s", resp.Status)
			}
		}
		pr.CloseWithError(err)
		l.result <- err
	}()
	fail := func(err error) (func(), error) {
		pw.CloseWithError(err)
		cancel()
		return nil, err
	}
	if _, err := pw.Write(pattern[:liveFed]); err != nil {
		return fail(fmt.Errorf("live upload: %w", err))
	}
	if err := waitLive(ctx, b, l); err != nil {
		return fail(err)
	}
	go l.trickle()
	b.live = l
	return func() {
		defer cancel()
		b.live = nil
		close(l.stopTrickle)
		fed := liveFed + <-l.trickled
		if _, err := io.Copy(pw, newPatternBody(liveTotal-fed)); err != nil {
			return
		}
		pw.Close()
		select {
		case <-l.result:
		case <-time.After(30 * time.Second):
		}
	}, nil
}

// trickle feeds a byte every 100 ms until told to stop, and never more
// than a quarter of the rest, so the count keeps its digits.
func (l *liveUpload) trickle() {
	var n int64
	t := time.NewTicker(100 * time.Millisecond)
	defer func() { t.Stop(); l.trickled <- n }()
	for n < (liveTotal-liveFed)/4 {
		select {
		case <-l.stopTrickle:
			return
		case <-t.C:
			if _, err := l.pw.Write(pattern[:1]); err != nil {
				return
			}
			n++
		}
	}
	<-l.stopTrickle
}

// waitLive waits until TRACKED reports the live upload uploading with all
// of liveFed received, and checks its reply is the static body's size.
func waitLive(ctx context.Context, b *bench, l *liveUpload) error {
	url := b.tracked + "/progress?path=" + l.key
	deadline := time.Now().Add(10 * time.Second)
	for {
		body, err := get(ctx, b.client, url)
		var st struct {
			Status   string `json:"status"`
			Uploaded int64  `json:"uploaded"`
		}
		if err == nil {
			err = json.Unmarshal(body, &st)
		}
		if err == nil && st.Status == "uploading" && st.Uploaded >= liveFed {
			if len(body) != len(l.respondBody) {
				return fmt.Errorf("W5: status reply is %d bytes (%q), the static route's %d", len(body), body, len(l.respondBody))
			}
			return nil
		}
		if err == nil {
			err = fmt.Errorf("live upload shows %s", body)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("W5: live upload not seen uploading: %v", err)
		}
		select {
		case r := <-l.result:
			return fmt.Errorf("W5: live upload ended early: %v", r)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
