package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"time"
)

const mib = 1 << 20

// plan is the size of every workload; see fullPlan and quickPlan.
type plan struct {
	Rounds int `json:"rounds"`

	W1Uploads int   `json:"w1_uploads"`
	W1Size    int64 `json:"w1_size"`

	W2Count int   `json:"w2_count"`
	W2Conc  int   `json:"w2_concurrency"`
	W2Size  int64 `json:"w2_size"`

	W3Count    int   `json:"w3_count"`
	W3Conc     int   `json:"w3_concurrency"`
	W3Files    int   `json:"w3_files"`
	W3FileSize int64 `json:"w3_file_size"`

	W4Watchers  int           `json:"w4_watchers"`
	W4Pollers   int           `json:"w4_pollers"`
	W4PollEvery time.Duration `json:"w4_poll_every_ns"`

	W5Count int `json:"w5_count"`
	W5Conc  int `json:"w5_concurrency"`

	W6Watchers int   `json:"w6_watchers"`
	W6Size     int64 `json:"w6_size"`

	W7Size  int64 `json:"w7_size"`
	W7Patch int64 `json:"w7_patch"`

	W8Sessions int   `json:"w8_sessions"`
	W8Conc     int   `json:"w8_concurrency"`
	W8Parts    int   `json:"w8_parts"`
	W8PartSize int64 `json:"w8_part_size"`

	W9Files   int   `json:"w9_files"`
	W9Chunks  int   `json:"w9_chunks"`
	W9MinFile int64 `json:"w9_min_file"`
	W9MaxFile int64 `json:"w9_max_file"`

	R3Samples int `json:"r3_samples"` // bytes timed per R3 run
}

// fullPlan is the default run. The workloads are short on loopback (about
// a second each), so the run takes many rounds for stable medians.
var fullPlan = plan{
	Rounds:    31,
	W1Uploads: 4, W1Size: 256 * mib,
	W2Count: 2000, W2Conc: 32, W2Size: 64 << 10,
	W3Count: 200, W3Conc: 8, W3Files: 3, W3FileSize: mib,
	W4Watchers: 100, W4Pollers: 10, W4PollEvery: 50 * time.Millisecond,
	W5Count: 40000, W5Conc: 16,
	W6Watchers: 1000, W6Size: 1024 * mib,
	W7Size: 256 * mib, W7Patch: 8 * mib,
	W8Sessions: 64, W8Conc: 8, W8Parts: 4, W8PartSize: mib,
	W9Files: 200, W9Chunks: 8, W9MinFile: 64 << 10, W9MaxFile: 256 << 10,
	R3Samples: 30,
}

// quickPlan is a smoke run: every workload, smaller, fewer rounds.
var quickPlan = plan{
	Rounds:    5,
	W1Uploads: 4, W1Size: 128 * mib,
	W2Count: 1000, W2Conc: 32, W2Size: 64 << 10,
	W3Count: 100, W3Conc: 8, W3Files: 3, W3FileSize: mib,
	W4Watchers: 100, W4Pollers: 10, W4PollEvery: 50 * time.Millisecond,
	W5Count: 10000, W5Conc: 16,
	W6Watchers: 1000, W6Size: 256 * mib,
	W7Size: 128 * mib, W7Patch: 8 * mib,
	W8Sessions: 32, W8Conc: 8, W8Parts: 4, W8PartSize: mib,
	W9Files: 200, W9Chunks: 8, W9MinFile: 64 << 10, W9MaxFile: 256 << 10,
	R3Samples: 10,
}

// runTimeout bounds one measured run of any workload.
const runTimeout = 3 * time.Minute

// bench is what the workloads run against.
type bench struct {
	plan    plan
	plain   string // base URL of PLAIN
	tracked string // base URL of TRACKED
	client  *http.Client

	multipartBody []byte // W3's request body, built once
	multipartType string

	live *liveUpload // W5's in-flight upload, while W5 runs

	tus *tusSites // W7's sites and tusd's store, when W7 is selected

	sandbox *sandboxSites // W8's sites and the origin's store, when W8 is selected
	dstor   *dstorSites   // W9's sites, the origin's store and the folder, when W9 is selected
	redis   *redisSites   // R1-R3's site and Redis, when one of them is selected

	// cpu, when the OS tells CPU times, measures each run's CPU cost in
	// Caddy (caddyCPUMetric, every workload) and in the bench process
	// (benchCPUMetric, workloads with BenchCPU).
	cpu *cpuMeter

	// prof, with -cpuprofile, profiles Caddy after each workload's rounds.
	prof *profiler
}

// The CPU times of a run.
const (
	caddyCPUMetric = "caddy CPU"
	benchCPUMetric = "bench CPU"
)

// base is the base URL of a side of the A/B pair.
func (b *bench) base(tracked bool) string {
	if tracked {
		return b.tracked
	}
	return b.plain
}

// metric is one measured quantity of a workload.
type metric struct {
	Name         string  `json:"name"`
	Unit         string  `json:"unit"`
	HigherBetter bool    `json:"higher_better"`
	MinRatio     float64 `json:"min_ratio,omitempty"` // pass when tracked/plain >= MinRatio; 0: informational
	Target       string  `json:"target"`
	TrackedOnly  bool    `json:"tracked_only,omitempty"` // measured on the B side only
}

// workload is one A/B workload. run measures one side once; the tag makes
// its upload keys unique.
type workload struct {
	ID      string
	Title   string
	Sides   [2]string // names of the A (baseline) and B side
	Notes   string
	Metrics []metric
	// BenchCPU also reports the bench process's CPU per run, for workloads
	// whose client side differs between A and B.
	BenchCPU bool
	// setup, if set, runs before the warm-up and returns the teardown.
	setup func(ctx context.Context, b *bench) (func(), error)
	run   func(ctx context.Context, b *bench, tracked bool, tag string) (map[string]float64, error)
}

func workloads(p plan) []workload {
	return append([]workload{
		{
			ID: "W1", Title: fmt.Sprintf("%d concurrent %d MiB uploads", p.W1Uploads, p.W1Size/mib), Sides: [2]string{"plain", "tracked"},
			Metrics: []metric{{Name: "throughput", Unit: "MiB/s", HigherBetter: true, MinRatio: 0.97, Target: ">= 0.97"}},
			run:     runW1,
		},
		{
			ID: "W2", Title: fmt.Sprintf("%d x %d KiB uploads, concurrency %d", p.W2Count, p.W2Size>>10, p.W2Conc), Sides: [2]string{"plain", "tracked"},
			Metrics: []metric{
				{Name: "requests/s", Unit: "req/s", HigherBetter: true, MinRatio: 0.97, Target: ">= 0.97"},
				{Name: "p50 latency", Unit: "ms", Target: "info"},
				{Name: "p99 latency", Unit: "ms", Target: "info"},
			},
			run: runW2,
		},
		{
			ID: "W3", Title: fmt.Sprintf("%d multipart uploads (%d x %d MiB), concurrency %d", p.W3Count, p.W3Files, p.W3FileSize/mib, p.W3Conc), Sides: [2]string{"plain", "tracked"},
			Metrics: []metric{{Name: "requests/s", Unit: "req/s", HigherBetter: true, MinRatio: 0.95, Target: ">= 0.95"}},
			run:     runW3,
		},
		{
			ID: "W4", Title: fmt.Sprintf("W1 + %d WebSocket watchers + %d REST pollers (every %v)", p.W4Watchers, p.W4Pollers, p.W4PollEvery), Sides: [2]string{"plain W1", "tracked+watchers"},
			Notes:    "PLAIN has no progress endpoints: W4's baseline is the W1 PLAIN measurement (no watchers), re-run interleaved with W4's tracked rounds. The watchers and pollers run in the bench process, on the same cores: bench CPU shows what they cost the client side.",
			BenchCPU: true,
			Metrics: []metric{
				{Name: "throughput", Unit: "MiB/s", HigherBetter: true, MinRatio: 0.95, Target: ">= 0.95 vs W1 plain"},
				{Name: "ws messages", Unit: "msgs", Target: "info", TrackedOnly: true},
				{Name: "polls", Unit: "polls", Target: "info", TrackedOnly: true},
			},
			run: runW4,
		},
		{
			ID: "W5", Title: fmt.Sprintf("%d status queries of a live upload, concurrency %d", p.W5Count, p.W5Conc), Sides: [2]string{"respond", "status"},
			Notes:   "on TRACKED, GET /progress?path= of a live upload (status) against a static respond route of the same byte size and headers (respond); target respond/status <= 1.2, i.e. status/respond >= 0.833.",
			Metrics: []metric{{Name: "requests/s", Unit: "req/s", HigherBetter: true, MinRatio: 1 / 1.2, Target: ">= 0.833 (respond/status <= 1.2)"}},
			setup:   setupW5,
			run:     runW5,
		},
		{
			ID: "W6", Title: fmt.Sprintf("one %d MiB upload, %d WebSocket watchers that never read", p.W6Size/mib, p.W6Watchers), Sides: [2]string{"unwatched", "watched"},
			Notes:   "both sides on TRACKED: the same upload, unwatched (A) and watched (B) by watchers that connect first and never read, so that the bench process pays nothing for them while the upload runs; the ratio is what the proxy pays for its watchers.",
			Metrics: []metric{{Name: "throughput", Unit: "MiB/s", HigherBetter: true, MinRatio: 0.95, Target: ">= 0.95"}},
			run:     runW6,
		},
		{
			ID: "W7", Title: fmt.Sprintf("one %d MiB tus upload to tusd in %d MiB PATCHes", p.W7Size/mib, p.W7Patch/mib), Sides: [2]string{"plain", "tracked"},
			Notes:   "the real tusd (handler, file store in a temporary directory, in-memory locker) in its own process, behind two sites of the same Caddy: PLAIN-tus (reverse_proxy) and TRACKED-tus (`upload_progress { protocol tus }` + reverse_proxy); a creation POST, then PATCHes from the offsets tusd answers; throughput from the creation to the last PATCH's answer.",
			Metrics: []metric{{Name: "throughput", Unit: "MiB/s", HigherBetter: true, MinRatio: 0.95, Target: ">= 0.95"}},
			setup:   setupW7,
			run:     runW7,
		},
		{
			ID: "W8", Title: fmt.Sprintf("%d sandbox sessions of %d x %d MiB parts, %d at once", p.W8Sessions, p.W8Parts, p.W8PartSize/mib, p.W8Conc), Sides: [2]string{"plain", "tracked"},
			Notes:   "the reference origin (cmd/upload-origin, its sandbox at /v1/sandboxes/, storing into a temporary directory) in its own process, behind two sites of the same Caddy: PLAIN-sandbox (reverse_proxy) and TRACKED-sandbox (`upload_progress { protocol sandbox }` + reverse_proxy); each session a creation, its parts one after the other, and a completion with ?mode=sync (200 completed); throughput from the first creation to the last completion's answer.",
			Metrics: []metric{{Name: "throughput", Unit: "MiB/s", HigherBetter: true, MinRatio: 0.95, Target: ">= 0.95"}},
			setup:   setupW8,
			run:     runW8,
		},
		{
			ID: "W9", Title: fmt.Sprintf("a %d-file folder (%d-%d KiB files) in %d dStor chunks", p.W9Files, p.W9MinFile>>10, p.W9MaxFile>>10, p.W9Chunks), Sides: [2]string{"plain", "tracked"},
			Notes:   "the reference origin (cmd/upload-origin: chunks kept in a temporary folder, the files moved into place after the last one) in its own process, behind two sites of the same Caddy: PLAIN-dstor (reverse_proxy) and TRACKED-dstor (`upload_progress { protocol dstor }` + reverse_proxy); a get-token, then the chunks one after the other, as multipart bodies of their files; throughput from the get-token to the last chunk's answer, the origin's stages (1 ms each) and the wait for DONE after it untimed.",
			Metrics: []metric{{Name: "throughput", Unit: "MiB/s", HigherBetter: true, MinRatio: 0.95, Target: ">= 0.95"}},
			setup:   setupW9,
			run:     runW9,
		},
	}, sharedWorkloads(p)...)
}

// uploadURL is the URL of a tracked-protocol upload (informProgress=true)
// of key on a side.
func (b *bench) uploadURL(tracked bool, key string) string {
	return b.base(tracked) + "/fso?path=" + key + "&informProgress=true"
}

// multipartURL is the URL of a pCloud-style multipart upload named hash,
// whose files TRACKED follows.
func (b *bench) multipartURL(tracked bool, hash string) string {
	return b.base(tracked) + "/uploadfile?progresshash=" + hash
}

// checkScanned makes sure, after a TRACKED W3 run, that its last upload
// was tracked and its files followed: otherwise W3 measured no scanning.
func (b *bench) checkScanned(ctx context.Context, tracked bool, hash string) error {
	if !tracked {
		return nil
	}
	body, err := get(ctx, b.client, b.tracked+"/uploadprogress?progresshash="+hash)
	if err != nil {
		return err
	}
	var p struct {
		Finished bool              `json:"finished"`
		Files    []json.RawMessage `json:"files"`
	}
	if err := json.Unmarshal(body, &p); err != nil || !p.Finished || len(p.Files) != b.plan.W3Files {
		return fmt.Errorf("upload %s was not scanned: %s", hash, body)
	}
	return nil
}

// checkTracked makes sure, after a TRACKED run, that its upload key was
// tracked (not passed untracked, e.g. past max_keys): otherwise the run
// measured nothing of tracking.
func (b *bench) checkTracked(ctx context.Context, tracked bool, key string) error {
	if !tracked {
		return nil
	}
	body, err := get(ctx, b.client, b.tracked+"/progress?path="+key)
	if err != nil {
		return err
	}
	if !bytes.Contains(body, []byte(`"status":"completed"`)) {
		return fmt.Errorf("upload %s was not tracked: status %s", key, body)
	}
	return nil
}

// runW1 uploads W1Uploads bodies of W1Size at once and returns the
// aggregate throughput.
func runW1(ctx context.Context, b *bench, tracked bool, tag string) (map[string]float64, error) {
	mibs, err := concurrentUploads(ctx, b, tracked, "/w1-"+tag, nil)
	if err != nil {
		return nil, err
	}
	if err := b.checkTracked(ctx, tracked, "/w1-"+tag+"-0"); err != nil {
		return nil, err
	}
	return map[string]float64{"throughput": mibs}, nil
}

// concurrentUploads runs W1's uploads under keys prefix-0, prefix-1, ... and
// returns MiB/s from the first byte sent to the last answer. started, if
// set, is closed when the clock starts.
func concurrentUploads(ctx context.Context, b *bench, tracked bool, prefix string, started chan<- struct{}) (float64, error) {
	n := b.plan.W1Uploads
	start := time.Now()
	if started != nil {
		close(started)
	}
	err := pool(ctx, n, n, func(ctx context.Context, i int) error {
		return uploadPattern(ctx, b.client, b.uploadURL(tracked, fmt.Sprintf("%s-%d", prefix, i)), b.plan.W1Size)
	})
	el := time.Since(start)
	if err != nil {
		return 0, err
	}
	return float64(n) * float64(b.plan.W1Size) / mib / el.Seconds(), nil
}

// runW2 sends W2Count small uploads at W2Conc and returns requests/s and
// the p50 and p99 latency.
func runW2(ctx context.Context, b *bench, tracked bool, tag string) (map[string]float64, error) {
	body := pattern[:b.plan.W2Size]
	lat := make([]time.Duration, b.plan.W2Count)
	start := time.Now()
	err := pool(ctx, b.plan.W2Count, b.plan.W2Conc, func(ctx context.Context, i int) error {
		t := time.Now()
		err := uploadBytes(ctx, b.client, b.uploadURL(tracked, fmt.Sprintf("/w2-%s-%d", tag, i)), "application/octet-stream", body)
		lat[i] = time.Since(t)
		return err
	})
	el := time.Since(start)
	if err != nil {
		return nil, err
	}
	if err := b.checkTracked(ctx, tracked, fmt.Sprintf("/w2-%s-%d", tag, b.plan.W2Count-1)); err != nil {
		return nil, err
	}
	ms := millis(lat)
	return map[string]float64{
		"requests/s":  float64(b.plan.W2Count) / el.Seconds(),
		"p50 latency": percentile(ms, 50),
		"p99 latency": percentile(ms, 99),
	}, nil
}

// buildMultipart builds W3's body once, in memory: files file-0.bin ...
// of W3FileSize pattern bytes each.
func buildMultipart(p plan) ([]byte, string, error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for i := range p.W3Files {
		f, err := w.CreateFormFile(fmt.Sprintf("file%d", i), fmt.Sprintf("file-%d.bin", i))
		if err != nil {
			return nil, "", err
		}
		if _, err := io.Copy(f, newPatternBody(p.W3FileSize)); err != nil {
			return nil, "", err
		}
	}
	if err := w.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), w.FormDataContentType(), nil
}

// runW3 sends W3Count multipart uploads at W3Conc and returns requests/s.
func runW3(ctx context.Context, b *bench, tracked bool, tag string) (map[string]float64, error) {
	start := time.Now()
	err := pool(ctx, b.plan.W3Count, b.plan.W3Conc, func(ctx context.Context, i int) error {
		return uploadBytes(ctx, b.client, b.multipartURL(tracked, fmt.Sprintf("w3-%s-%d", tag, i)), b.multipartType, b.multipartBody)
	})
	el := time.Since(start)
	if err != nil {
		return nil, err
	}
	if err := b.checkScanned(ctx, tracked, fmt.Sprintf("w3-%s-%d", tag, b.plan.W3Count-1)); err != nil {
		return nil, err
	}
	return map[string]float64{"requests/s": float64(b.plan.W3Count) / el.Seconds()}, nil
}

// runW4 is W1 with watchers and pollers on TRACKED, and plain W1 on PLAIN.
func runW4(ctx context.Context, b *bench, tracked bool, tag string) (map[string]float64, error) {
	if !tracked {
		return runW1(ctx, b, false, "w4base-"+tag)
	}
	return watchedUploads(ctx, b, "/w4-"+tag)
}

// runW5 sends W5Count GETs at W5Conc: of the live upload's status on the
// status side, of the same-size static route on the respond side.
func runW5(ctx context.Context, b *bench, status bool, tag string) (map[string]float64, error) {
	url := b.tracked + respondPath
	if status {
		url = b.tracked + "/progress?path=" + b.live.key
	}
	want := len(b.live.respondBody)
	start := time.Now()
	err := pool(ctx, b.plan.W5Count, b.plan.W5Conc, func(ctx context.Context, i int) error {
		body, err := get(ctx, b.client, url)
		if err == nil && len(body) != want {
			err = fmt.Errorf("GET %s: %d bytes, want %d: %s", url, len(body), want, body)
		}
		return err
	})
	el := time.Since(start)
	if err != nil {
		return nil, err
	}
	return map[string]float64{"requests/s": float64(b.plan.W5Count) / el.Seconds()}, nil
}
