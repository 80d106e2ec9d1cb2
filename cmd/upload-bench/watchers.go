package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/testkit"
)

// watchedUploads is W4's tracked side: W4Watchers WebSocket watchers spread
// over the W1 uploads' keys connect first (they see not_exist and stay),
// then the uploads run with W4Pollers REST pollers, each polling a key
// every W4PollEvery. It returns the uploads' throughput, the messages the
// watchers received and the polls made; it fails unless every watcher saw
// its upload completed and a normal close.
func watchedUploads(ctx context.Context, b *bench, prefix string) (map[string]float64, error) {
	keys := make([]string, b.plan.W1Uploads)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	wsBase := testkit.WebSocketURL(b.tracked) + "/ws/progress?path="

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	// Watchers.
	var msgs atomic.Int64
	ready := make(chan error, b.plan.W4Watchers)
	finals := make(chan error, b.plan.W4Watchers)
	wsClient := newClient()
	for i := range b.plan.W4Watchers {
		go func() {
			finals <- watch(ctx, wsClient, wsBase+keys[i%len(keys)], ready, &msgs)
		}()
	}
	for range b.plan.W4Watchers {
		select {
		case err := <-ready:
			if err != nil {
				return nil, fmt.Errorf("watcher: %w", err)
			}
		case <-time.After(30 * time.Second):
			return nil, errors.New("watchers not connected within 30s")
		}
	}

	// Pollers, for as long as the uploads run.
	var polls atomic.Int64
	started := make(chan struct{})
	uploadsDone := make(chan struct{})
	var pollers sync.WaitGroup
	for j := range b.plan.W4Pollers {
		pollers.Go(func() {
			<-started
			t := time.NewTicker(b.plan.W4PollEvery)
			defer t.Stop()
			for k := j; ; k++ {
				select {
				case <-uploadsDone:
					return
				case <-ctx.Done():
					return
				case <-t.C:
				}
				if _, err := get(ctx, b.client, b.tracked+"/progress?path="+keys[k%len(keys)]); err != nil {
					cancel(fmt.Errorf("poller: %w", err))
					return
				}
				polls.Add(1)
			}
		})
	}

	mibs, err := concurrentUploads(ctx, b, true, prefix, started)
	close(uploadsDone)
	pollers.Wait()
	if err != nil {
		return nil, err
	}
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}

	// Every watcher must end with its upload completed.
	deadline := time.After(30 * time.Second)
	for range b.plan.W4Watchers {
		select {
		case err := <-finals:
			if err != nil {
				return nil, fmt.Errorf("watcher: %w", err)
			}
		case <-deadline:
			return nil, errors.New("watchers not finished 30s after the uploads")
		}
	}
	return map[string]float64{
		"throughput":  mibs,
		"ws messages": float64(msgs.Load()),
		"polls":       float64(polls.Load()),
	}, nil
}

// watch follows one key over WebSocket: it reports on ready once the first
// message came, then reads every message until the server closes, and
// returns nil if the last one said completed and the close was normal.
func watch(ctx context.Context, client *http.Client, url string, ready chan<- error, msgs *atomic.Int64) error {
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		ready <- err
		return err
	}
	defer c.CloseNow()
	var last []byte
	for first := true; ; first = false {
		_, msg, err := c.Read(ctx)
		if first {
			ready <- err
		}
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
				return fmt.Errorf("%s: %w", url, err)
			}
			break
		}
		msgs.Add(1)
		last = msg
	}
	var st struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(last, &st); err != nil || st.Status != "completed" {
		return fmt.Errorf("%s: last message %q, want completed", url, last)
	}
	return nil
}
