// Command upload-bench is a reproducible A/B benchmark of upload_progress:
// one Caddy process (built from this repository) with a PLAIN site
// (reverse_proxy only) and a TRACKED site (upload_progress + reverse_proxy)
// in front of the same sink origin, all on loopback, and workloads W1-W6
// run interleaved against both; W7 does the same with tus uploads, through
// PLAIN-tus and TRACKED-tus (`upload_progress { protocol tus }`) sites in
// front of the real tusd, W8 with the sandbox's upload sessions, through
// PLAIN-sandbox and TRACKED-sandbox (`upload_progress { protocol sandbox }`)
// in front of the reference origin, and W9 with dStor's chunked folder
// uploads, through PLAIN-dstor and TRACKED-dstor
// (`upload_progress { protocol dstor }`) in front of the reference origin
// too. It prints the medians, their ratio and
// whether each meets its target.
//
//	go run ./cmd/upload-bench            # full run, about 6 minutes
//	go run ./cmd/upload-bench -quick     # smoke run, under a minute
//	go run ./cmd/upload-bench -json results.json -only W1,W5
//	go run ./cmd/upload-bench -only W7 -rounds 11      # tus uploads to tusd
//	go run ./cmd/upload-bench -only W8                 # sandbox sessions to the reference origin
//	go run ./cmd/upload-bench -only W9                 # dStor folder uploads to the reference origin
//	go run ./cmd/upload-bench -quick -only W2 -cpuprofile /tmp/prof   # + a CPU profile of Caddy per side
//	go run ./cmd/upload-bench -only W10                # watchers at scale (only when named; see w10.go)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == originChildArg {
		if err := runOriginChild(); err != nil {
			log.Fatalf("origin: %v", err)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == tusdChildArg {
		if err := runTusdChild(os.Args[2:]); err != nil {
			log.Fatalf("tusd: %v", err)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == sandboxOriginChildArg {
		if err := runSandboxOriginChild(os.Args[2:]); err != nil {
			log.Fatalf("sandbox origin: %v", err)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == w10ChildArg {
		if err := runW10Child(); err != nil {
			log.Fatalf("watcher process: %v", err)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == dstorChildArg {
		if err := runDstorChild(os.Args[2:]); err != nil {
			log.Fatalf("dstor origin: %v", err)
		}
		return
	}
	log.SetFlags(0)
	log.SetPrefix("upload-bench: ")
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		log.Fatal(err)
	}
}

type options struct {
	quick    bool
	rounds   int
	caddyBin string
	jsonPath string
	only     string
	timeout  time.Duration
	profDir  string
	profTime time.Duration
	logLevel string
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("upload-bench", flag.ContinueOnError)
	fs.BoolVar(&o.quick, "quick", false, "smoke run (under a minute): smaller workloads, 5 rounds")
	fs.IntVar(&o.rounds, "rounds", 0, "measured rounds per side (default 31, or 5 with -quick)")
	fs.StringVar(&o.caddyBin, "caddy", "", "use this Caddy binary instead of building ./cmd/caddy")
	fs.StringVar(&o.jsonPath, "json", "", "also write the results as JSON to this file")
	fs.StringVar(&o.only, "only", "", "comma-separated workloads to run (default all: W1,W2,W3,W4,W5,W6,W7,W8,W9,R1,R2,R3)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Minute, "abort the whole run after this long")
	fs.StringVar(&o.profDir, "cpuprofile", "", "after each workload's rounds, profile Caddy's CPU on each side alone and write DIR/<workload>-<side>.pprof")
	fs.DurationVar(&o.profTime, "profile-time", 10*time.Second, "how long each -cpuprofile profile lasts (whole seconds)")
	fs.StringVar(&o.logLevel, "upload-log-level", "", "level of Caddy's http.handlers.upload_progress logger (default Caddy's INFO: warnings only; DEBUG adds a line per untracked upload)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if o.rounds < 0 {
		return o, errors.New("-rounds must be positive")
	}
	switch strings.ToUpper(o.logLevel) {
	case "", "DEBUG", "INFO", "WARN", "ERROR":
	default:
		return o, fmt.Errorf("-upload-log-level %q: want debug, info, warn or error", o.logLevel)
	}
	return o, nil
}

func run(args []string) (err error) {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	p, mode := fullPlan, "full"
	if o.quick {
		p, mode = quickPlan, "quick"
	}
	if o.rounds > 0 {
		p.Rounds = o.rounds
	}
	var selected []workload
	for _, w := range workloads(p) {
		if o.only == "" || slices.Contains(strings.Split(strings.ToUpper(o.only), ","), w.ID) {
			selected = append(selected, w)
		}
	}
	// W10 runs only when named: it holds up to 100,000 connections.
	w10 := slices.Contains(strings.Split(strings.ToUpper(o.only), ","), "W10")
	w10p := w10Full
	if o.quick {
		w10p = w10Quick
	}
	if o.rounds > 0 {
		w10p.Rounds = o.rounds
	}
	var files uint64
	if w10 {
		if _, err := processCPU(os.Getpid()); err != nil {
			return errNoW10
		}
		// Before any child starts: they inherit it.
		files = raiseFileLimit(w10FileLimit)
	}
	if len(selected) == 0 && !w10 {
		return fmt.Errorf("-only %q names no workload", o.only)
	}

	// Everything below ends with ctx: on interrupt, on -timeout, or on
	// return, when the deferred stops take Caddy and the origin down.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	dir, err := os.MkdirTemp("", "upload-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	started := time.Now()
	bin := o.caddyBin
	if bin == "" {
		log.Printf("building %s", caddyPkg)
		if bin, err = buildCaddy(ctx, dir); err != nil {
			return err
		}
	}

	origin, originAddr, err := startOrigin(ctx)
	if err != nil {
		return err
	}
	defer origin.stop(5 * time.Second)

	// tusd runs only for W7, which needs it and its sites in Caddy.
	var tusdAddr, tusdDir string
	if slices.ContainsFunc(selected, func(w workload) bool { return w.ID == "W7" }) {
		tusdDir = filepath.Join(dir, "tusd")
		var tusd *child
		if tusd, tusdAddr, err = startTusd(ctx, tusdDir); err != nil {
			return err
		}
		defer tusd.stop(5 * time.Second)
	}
	// So does the reference origin for W8.
	var sandboxAddr, sandboxDir string
	if slices.ContainsFunc(selected, func(w workload) bool { return w.ID == "W8" }) {
		sandboxDir = filepath.Join(dir, "sandbox-origin")
		var so *child
		if so, sandboxAddr, err = startSandboxOrigin(ctx, sandboxDir); err != nil {
			return err
		}
		defer so.stop(5 * time.Second)
	}
	// And W9 its own, whose dStor stages after the last chunk are short.
	var dstorAddr, dstorDir string
	if slices.ContainsFunc(selected, func(w workload) bool { return w.ID == "W9" }) {
		dstorDir = filepath.Join(dir, "dstor")
		var dstor *child
		if dstor, dstorAddr, err = startDstorOrigin(ctx, dstorDir); err != nil {
			return err
		}
		defer dstor.stop(5 * time.Second)
	}

	// And a redis-server for R1-R3.
	var redisAddr string
	if slices.ContainsFunc(selected, func(w workload) bool { return strings.HasPrefix(w.ID, "R") }) {
		var rs *child
		if rs, redisAddr, err = startRedis(ctx, filepath.Join(dir, "redis")); err != nil {
			return err
		}
		defer rs.stop(5 * time.Second)
	}

	caddy, err := startCaddy(ctx, bin, dir, originAddr, tusdAddr, sandboxAddr, dstorAddr, redisAddr, liveRespondBody(), o.profDir != "" || w10, o.logLevel, w10)
	if err != nil {
		return err
	}
	defer caddy.shutdown()
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\ncaddy log (tail):\n%s", err, tailFile(caddy.log, 4096))
		}
	}()
	log.Printf("origin on %s, caddy PLAIN %s TRACKED %s", originAddr, caddy.plain, caddy.tracked)

	b := &bench{plan: p, plain: caddy.plain, tracked: caddy.tracked, client: newClient()}
	if tusdAddr != "" {
		log.Printf("tusd on %s storing in %s, caddy PLAIN-tus %s TRACKED-tus %s", tusdAddr, tusdDir, caddy.tusPlain, caddy.tusTracked)
		b.tus = &tusSites{plain: caddy.tusPlain, tracked: caddy.tusTracked, dir: tusdDir}
	}
	if sandboxAddr != "" {
		log.Printf("reference origin on %s storing in %s, caddy PLAIN-sandbox %s TRACKED-sandbox %s", sandboxAddr, sandboxDir, caddy.sandboxPlain, caddy.sandboxTracked)
		b.sandbox = &sandboxSites{plain: caddy.sandboxPlain, tracked: caddy.sandboxTracked, dir: sandboxDir}
	}
	if dstorAddr != "" {
		log.Printf("dstor origin on %s storing in %s, caddy PLAIN-dstor %s TRACKED-dstor %s", dstorAddr, dstorDir, caddy.dstorPlain, caddy.dstorTracked)
		b.dstor = &dstorSites{plain: caddy.dstorPlain, tracked: caddy.dstorTracked, dir: dstorDir, folder: newDstorFolder(p)}
	}
	if redisAddr != "" {
		log.Printf("redis-server on %s, caddy TRACKED-redis %s", redisAddr, caddy.redisTracked)
		b.redis = &redisSites{addr: redisAddr, tracked: caddy.redisTracked}
	}
	if o.profDir != "" {
		if err := os.MkdirAll(o.profDir, 0o755); err != nil {
			return err
		}
		b.prof = &profiler{admin: caddy.admin, dir: o.profDir, d: o.profTime}
	}
	if m := (&cpuMeter{caddyPID: caddy.cmd.Process.Pid}); m.works() {
		b.cpu = m
	}
	if b.multipartBody, b.multipartType, err = buildMultipart(p); err != nil {
		return err
	}
	if err := selfCheck(ctx, b); err != nil {
		return err
	}
	load0 := loadAvg() // after the build, before the load

	rep := &report{
		Command: command(args), Mode: mode, Started: started, Machine: machineInfo(bin, o.caddyBin == ""), Plan: p,
		LoadAvg: [2]string{load0},
		Notes: []string{
			"Ratio = tracked median / plain median, medians over the rounds; the result compares it with the target. Rounds alternate the order (A B, B A, ...); the per-round ratios (tracked/plain within a round) show the noise. caddy CPU is Caddy's user+system CPU per run, from /proc (10 ms ticks).",
		},
	}
	for _, w := range selected {
		rows, err := runWorkload(ctx, b, w)
		if err != nil {
			return fmt.Errorf("%s: %w", w.ID, err)
		}
		rep.Rows = append(rep.Rows, rows...)
		if w.Notes != "" {
			rep.Notes = append(rep.Notes, w.ID+": "+w.Notes)
		}
	}
	if w10 {
		if err := runW10(ctx, b, caddy.admin, caddy.cmd.Process.Pid, w10p, files, o.profDir); err != nil {
			return err
		}
	}
	rep.Duration = time.Since(started).Round(time.Second).String()
	rep.LoadAvg[1] = loadAvg()

	fmt.Println()
	rep.writeMarkdown(os.Stdout)
	if o.jsonPath != "" {
		if err := rep.writeJSON(o.jsonPath); err != nil {
			return err
		}
		log.Printf("results written to %s", o.jsonPath)
	}
	if err := caddy.exitError(); err != nil {
		return err // Caddy died during the run: the numbers above are suspect
	}
	return nil
}

// runWorkload warms both sides up once, then measures plan.Rounds rounds,
// alternating which side goes first, and returns a row per metric.
func runWorkload(ctx context.Context, b *bench, w workload) ([]row, error) {
	log.Printf("%s: %s", w.ID, w.Title)
	if w.setup != nil {
		teardown, err := w.setup(ctx, b)
		if err != nil {
			return nil, err
		}
		defer teardown()
	}
	metrics := slices.Clone(w.Metrics)
	if b.cpu != nil {
		metrics = append(metrics, metric{Name: caddyCPUMetric, Unit: "ms per run", Target: "info"})
		if w.BenchCPU {
			metrics = append(metrics, metric{Name: benchCPUMetric, Unit: "ms per run", Target: "info"})
		}
	}
	one := func(tracked bool, tag string) (map[string]float64, error) {
		rctx, cancel := context.WithTimeout(ctx, runTimeout)
		defer cancel()
		var cpu0 cpuSample
		if b.cpu != nil {
			cpu0, _ = b.cpu.sample()
		}
		res, err := w.run(rctx, b, tracked, tag)
		if err != nil {
			return nil, fmt.Errorf("%s side, run %s: %w", w.Sides[side(tracked)], tag, err)
		}
		if b.cpu != nil {
			cpu1, err := b.cpu.sample()
			if err != nil {
				return nil, err
			}
			res[caddyCPUMetric] = float64(cpu1.caddy-cpu0.caddy) / float64(time.Millisecond)
			res[benchCPUMetric] = float64(cpu1.bench-cpu0.bench) / float64(time.Millisecond)
		}
		return res, nil
	}
	for _, tracked := range []bool{false, true} {
		if _, err := one(tracked, fmt.Sprintf("warm-%d", side(tracked))); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	vals := make([][2][]float64, len(metrics))
	for r := range b.plan.Rounds {
		order := []bool{false, true}
		if r%2 == 1 {
			order = []bool{true, false}
		}
		for _, tracked := range order {
			res, err := one(tracked, fmt.Sprintf("r%d-%d", r, side(tracked)))
			if err != nil {
				return nil, err
			}
			var line []string
			for i, m := range metrics {
				v, ok := res[m.Name]
				if !ok && m.TrackedOnly && !tracked {
					continue
				}
				if !ok {
					return nil, fmt.Errorf("run returned no %q", m.Name)
				}
				vals[i][side(tracked)] = append(vals[i][side(tracked)], v)
				line = append(line, fmt.Sprintf("%s %s %s", m.Name, num(v), m.Unit))
			}
			log.Printf("  %s round %d/%d %-16s %s", w.ID, r+1, b.plan.Rounds, w.Sides[side(tracked)], strings.Join(line, ", "))
		}
	}
	rows := make([]row, len(metrics))
	for i, m := range metrics {
		rows[i] = newRow(w, m, vals[i][0], vals[i][1])
	}
	if b.prof != nil {
		if err := b.prof.profileWorkload(ctx, b, w); err != nil {
			return nil, err
		}
	}
	return rows, nil
}

// side is the index of a side: 0 for A (plain), 1 for B (tracked).
func side(tracked bool) int {
	if tracked {
		return 1
	}
	return 0
}

// selfCheck makes sure the A/B pair is what it claims: an upload to TRACKED
// is then reported completed by TRACKED's status endpoint, while PLAIN
// passes the same status URL to the origin.
func selfCheck(ctx context.Context, b *bench) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, tracked := range []bool{false, true} {
		if err := uploadBytes(ctx, b.client, b.uploadURL(tracked, "/selfcheck"), "application/octet-stream", pattern[:1024]); err != nil {
			return fmt.Errorf("self-check upload: %w", err)
		}
	}
	body, err := get(ctx, b.client, b.tracked+"/progress?path=/selfcheck")
	if err != nil || !strings.Contains(string(body), `"completed"`) {
		return fmt.Errorf("self-check: TRACKED status of an upload: %q, %v", body, err)
	}
	if body, err := get(ctx, b.client, b.plain+"/progress?path=/selfcheck"); err == nil || strings.Contains(string(body), "status") {
		return fmt.Errorf("self-check: PLAIN answered a status request itself: %q", body)
	}
	return nil
}
