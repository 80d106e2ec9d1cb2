package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/testkit"
	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
	redisstore "github.com/caddy-upload-progress/caddy-upload-progress/stores/redis"
)

// sharedZone and sharedSecret are TRACKED-redis's zone and owner secret;
// R3's second node names them too, to share its records.
const (
	sharedZone   = "bench-redis"
	sharedSecret = "upload-bench shared secret"
)

// redisSites is what R1-R3 run against: TRACKED-redis and its Redis.
type redisSites struct {
	addr    string // the redis-server
	tracked string // base URL of TRACKED-redis
}

func sharedWorkloads(p plan) []workload {
	const notes = "both sides tracked (shard, owner check off) in the same Caddy: A is TRACKED (the zone in memory), B is TRACKED-redis (the zone in a redis-server on loopback, flush_interval 100ms); the ratio is what the shared store costs uploads."
	return []workload{
		{
			ID: "R1", Title: fmt.Sprintf("W1 on a zone in Redis: %d concurrent %d MiB uploads", p.W1Uploads, p.W1Size/mib), Sides: [2]string{"memory", "redis"},
			Notes:   notes,
			Metrics: []metric{{Name: "throughput", Unit: "MiB/s", HigherBetter: true, MinRatio: 0.95, Target: ">= 0.95"}},
			setup:   setupShared,
			run:     runW1,
		},
		{
			ID: "R2", Title: fmt.Sprintf("W2 on a zone in Redis: %d x %d KiB uploads, concurrency %d", p.W2Count, p.W2Size>>10, p.W2Conc), Sides: [2]string{"memory", "redis"},
			Notes: notes + " Redis commands per upload: the redis-server's total_commands_processed over the run, divided by its uploads.",
			Metrics: []metric{
				{Name: "requests/s", Unit: "req/s", HigherBetter: true, MinRatio: 0.95, Target: ">= 0.95"},
				{Name: "p50 latency", Unit: "ms", Target: "info"},
				{Name: "p99 latency", Unit: "ms", Target: "info"},
				{Name: "redis commands/upload", Unit: "cmds", Target: "info", TrackedOnly: true},
			},
			setup: setupShared,
			run:   runR2,
		},
		{
			ID: "R3", Title: fmt.Sprintf("a byte counted on node A seen by a watcher on node B, %d bytes a run", p.R3Samples), Sides: [2]string{"-", "A to B"},
			Notes: "node A is TRACKED-redis (Caddy, flush_interval 100ms); node B is a SharedTracker of the same zone, secret and Redis in the bench process, subscribed to the upload's key. The bench sends one byte of a slow upload through A at a random moment and times until B's subscription shows it; the A side does nothing.",
			Metrics: []metric{
				{Name: "p50 A to B", Unit: "ms", Target: "info", TrackedOnly: true},
				{Name: "p99 A to B", Unit: "ms", Target: "info", TrackedOnly: true},
			},
			setup: setupR3,
			run:   runR3,
		},
	}
}

// setupShared makes the A/B pair TRACKED (memory) and TRACKED-redis, and
// puts PLAIN and TRACKED back afterwards.
func setupShared(ctx context.Context, b *bench) (func(), error) {
	if b.redis == nil {
		return nil, errors.New("redis-server is not running")
	}
	plain, tracked := b.plain, b.tracked
	b.plain, b.tracked = tracked, b.redis.tracked
	return func() { b.plain, b.tracked = plain, tracked }, nil
}

// runR2 is W2, and on the Redis side the commands Redis served per upload.
func runR2(ctx context.Context, b *bench, tracked bool, tag string) (map[string]float64, error) {
	var before int64
	if tracked {
		var err error
		if before, err = redisCommands(b.redis.addr); err != nil {
			return nil, err
		}
	}
	res, err := runW2(ctx, b, tracked, tag)
	if err != nil || !tracked {
		return res, err
	}
	// The last uploads' ends are written at once; let that flush land.
	time.Sleep(200 * time.Millisecond)
	after, err := redisCommands(b.redis.addr)
	if err != nil {
		return nil, err
	}
	res["redis commands/upload"] = float64(after-before-1) / float64(b.plan.W2Count)
	return res, nil
}

// r3Node is R3's node B.
var r3Node *progress.SharedTracker

func setupR3(ctx context.Context, b *bench) (func(), error) {
	if b.redis == nil {
		return nil, errors.New("redis-server is not running")
	}
	c := redis.NewClient(&redis.Options{Addr: b.redis.addr})
	r3Node = progress.NewSharedTracker(progress.Options{OwnerSecret: []byte(sharedSecret)},
		redisstore.New(c, "upload_progress", sharedZone), progress.SharedOptions{})
	return r3Node.Close, nil
}

// runR3 times R3Samples bytes of one slow upload through node A until node
// B's subscription shows each.
func runR3(ctx context.Context, b *bench, tracked bool, tag string) (map[string]float64, error) {
	if !tracked {
		return map[string]float64{}, nil
	}
	n := b.plan.R3Samples
	key := "/r3-" + tag
	sub, err := r3Node.Subscribe(progress.Anyone, key)
	if err != nil {
		return nil, err
	}
	defer sub.Close()
	pr, pw := io.Pipe()
	defer pw.CloseWithError(io.ErrUnexpectedEOF)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.redis.tracked+"/fso?informProgress=true&path="+key, pr)
	if err != nil {
		return nil, err
	}
	req.ContentLength = int64(n)
	done := make(chan error, 1)
	go func() {
		resp, err := b.client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				err = fmt.Errorf("upload answered %s", resp.Status)
			}
		}
		done <- err
	}()
	prev := sub.Current()
	for !prev.Found {
		if prev, err = sub.Next(ctx, prev, 1); err != nil {
			return nil, fmt.Errorf("node B never saw the upload start: %w", err)
		}
	}
	lat := make([]time.Duration, 0, n)
	for i := range n {
		// A random moment within the flush cycle.
		time.Sleep(time.Duration(rand.Int64N(int64(150 * time.Millisecond))))
		t0 := time.Now()
		if _, err := pw.Write([]byte{byte(i)}); err != nil {
			return nil, err
		}
		for prev.Received < int64(i+1) {
			if prev, err = sub.Next(ctx, prev, 1); err != nil {
				return nil, fmt.Errorf("node B: %w", err)
			}
		}
		lat = append(lat, time.Since(t0))
	}
	pw.Close()
	if err := <-done; err != nil {
		return nil, err
	}
	ms := millis(lat)
	return map[string]float64{"p50 A to B": percentile(ms, 50), "p99 A to B": percentile(ms, 99)}, nil
}

// startRedis runs a redis-server on a free loopback port, without
// persistence, in dir.
func startRedis(ctx context.Context, dir string) (*child, string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, "", fmt.Errorf("R1-R3 need redis-server (apt-get install redis-server): %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", err
	}
	port, err := testkit.FreePort()
	if err != nil {
		return nil, "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no")
	c, err := startChild(ctx, "redis-server", cmd)
	if err != nil {
		return nil, "", err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := redisCommands(addr); err == nil {
			return c, addr, nil
		}
		if time.Now().After(deadline) {
			c.stop(time.Second)
			return nil, "", fmt.Errorf("redis-server on %s not up within 10s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// redisCommands is the server's total_commands_processed.
func redisCommands(addr string) (int64, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("*2\r\n$4\r\nINFO\r\n$5\r\nstats\r\n")); err != nil {
		return 0, err
	}
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return 0, err
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
}
