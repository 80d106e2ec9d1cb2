package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/testkit"
)

// runW6 is one W6Size upload to TRACKED, watched (B side) by W6Watchers
// WebSocket watchers that never read, or unwatched (A side). The watchers
// connect before the upload and are let go after it; only the upload is
// timed. Watchers that never read cost the bench process nothing while
// the upload runs, so the ratio is what the proxy pays for them.
func runW6(ctx context.Context, b *bench, watched bool, tag string) (map[string]float64, error) {
	key := "/w6-" + tag
	if watched {
		conns, err := idleWatchers(ctx, b, key, b.plan.W6Watchers)
		defer func() {
			for _, c := range conns {
				c.CloseNow()
			}
		}()
		if err != nil {
			return nil, err
		}
	}
	start := time.Now()
	if err := uploadPattern(ctx, b.client, b.uploadURL(true, key), b.plan.W6Size); err != nil {
		return nil, err
	}
	el := time.Since(start)
	if err := b.checkTracked(ctx, true, key); err != nil {
		return nil, err
	}
	return map[string]float64{"throughput": float64(b.plan.W6Size) / mib / el.Seconds()}, nil
}

// idleWatchers connects n WebSocket watchers of key on TRACKED, 32 at a
// time, that read nothing.
func idleWatchers(ctx context.Context, b *bench, key string, n int) ([]*websocket.Conn, error) {
	url := testkit.WebSocketURL(b.tracked) + "/ws/progress?path=" + key
	conns := make([]*websocket.Conn, n)
	var mu sync.Mutex
	client := newClient()
	err := pool(ctx, n, 32, func(ctx context.Context, i int) error {
		c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: client})
		if err != nil {
			return fmt.Errorf("watcher %d: %w", i, err)
		}
		mu.Lock()
		conns[i] = c
		mu.Unlock()
		return nil
	})
	var open []*websocket.Conn
	for _, c := range conns {
		if c != nil {
			open = append(open, c)
		}
	}
	return open, err
}
