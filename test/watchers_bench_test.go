package test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/testkit"
)

// Bounds of BenchmarkUploadWatchedBy1000.
const (
	benchWatchers      = 1000
	benchWatchedUpload = 256 << 20
)

// BenchmarkUploadWatchedBy1000 measures what 1,000 WebSocket watchers cost
// the upload they watch. Each round sends the same 256 MiB upload through
// Caddy twice, in alternating order: once unwatched and once watched by
// 1,000 watchers, and reports the median
// throughput of each, the median per-round ratio watched/unwatched, and
// the messages the reading watchers got per round. Connecting the
// watchers is outside the timed part; what they are sent and read while
// the upload runs is inside it, on the same cores as Caddy, the client and
// the origin. In idle=100, 900 watchers read every message (their reading
// shares the two cores); in idle=1000 none reads, which leaves what the
// proxy pays for writing to them.
//
//	go test -run '^$' -bench UploadWatchedBy1000 -benchtime 10x ./test/
func BenchmarkUploadWatchedBy1000(b *testing.B) {
	for _, idle := range []int{100, benchWatchers} {
		b.Run(fmt.Sprintf("idle=%d", idle), func(b *testing.B) { benchWatchedBy(b, idle) })
	}
}

func benchWatchedBy(b *testing.B, idle int) {
	sink := startSinkOrigin(b)
	e := newEnv(b, "")
	e.load("", sink)
	body := pattern(benchWatchedUpload)
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer client.CloseIdleConnections()

	var unwatched, watched, ratios, msgs []float64
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		var plain, with time.Duration
		run := func(w bool) {
			key := fmt.Sprintf("/bench/%d-%v.bin", i, w)
			if w {
				var n int64
				with, n = benchWatchedRound(b, e, client, key, body, idle)
				msgs = append(msgs, float64(n))
			} else {
				plain = benchUpload(b, e, client, key, body)
			}
		}
		run(i%2 == 0)
		run(i%2 != 0)
		mbps := func(d time.Duration) float64 { return float64(len(body)) / (1 << 20) / d.Seconds() }
		unwatched = append(unwatched, mbps(plain))
		watched = append(watched, mbps(with))
		ratios = append(ratios, plain.Seconds()/with.Seconds())
	}
	b.StopTimer()
	b.ReportMetric(testkit.Median(unwatched), "unwatched-MiB/s")
	b.ReportMetric(testkit.Median(watched), "watched-MiB/s")
	b.ReportMetric(testkit.Median(ratios), "ratio")
	b.ReportMetric(testkit.Median(msgs), "msgs/round")
	b.ReportMetric(0, "ns/op")
}

// benchWatchedRound connects the watchers of key, idle of which never
// read, then times the upload until its answer. It returns that time and the messages the reading
// watchers got, once each has had the final state and the close.
func benchWatchedRound(b *testing.B, e *env, client *http.Client, key string, body []byte, idle int) (time.Duration, int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	u := testkit.WebSocketURL(e.proxy) + "/ws/progress?path=" + key
	opts := &websocket.DialOptions{HTTPHeader: http.Header{"X-User-Api-Key": {apiKey}}}
	conns := make([]*websocket.Conn, benchWatchers)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.CloseNow()
			}
		}
	}()
	var first, final sync.WaitGroup
	var received atomic.Int64
	errs := make(chan error, benchWatchers)
	for i := range conns {
		c, _, err := websocket.Dial(ctx, u, opts)
		if err != nil {
			b.Fatalf("watcher %d: %v", i, err)
		}
		conns[i] = c
		if i < idle {
			continue
		}
		first.Add(1)
		final.Add(1)
		go func() {
			defer final.Done()
			got := false
			for {
				_, _, err := c.Read(ctx)
				if !got {
					got = true
					first.Done()
				}
				if err != nil {
					if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
						errs <- err
					}
					return
				}
				received.Add(1)
			}
		}()
	}
	first.Wait()

	took := benchUpload(b, e, client, key, body)
	final.Wait()
	close(errs)
	for err := range errs {
		b.Fatalf("a reading watcher ended with %v", err)
	}
	return took, received.Load()
}

// benchUpload sends body to key and returns how long until the answer.
func benchUpload(b *testing.B, e *env, client *http.Client, key string, body []byte) time.Duration {
	req, err := http.NewRequest(http.MethodPost, e.proxy+"/fso?path="+key+"&informProgress=true", bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("X-User-Api-Key", apiKey)
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if resp.StatusCode != http.StatusCreated {
		b.Fatalf("upload answered %d", resp.StatusCode)
	}
	return took
}

// startSinkOrigin runs an origin that reads and discards every body and
// answers 201, so that benchmarks measure the proxy, not a disk.
func startSinkOrigin(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(testkit.Sink)}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}
