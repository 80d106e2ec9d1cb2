package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/testkit"
)

// W10 is watchers at scale: what Caddy pays for many WebSocket watchers
// of a few uploads. Its shape is not an A/B pair, so it has a runner and a
// table of its own:
//
//   - rounds of W10Uploads uploads of W10Size at once on TRACKED, watched
//     by 0 and by each count of W10Watchers watchers spread evenly over
//     the uploads' keys (connected first; they see not_exist and stay),
//     the counts in a rotating order; the watchers read every message and
//     must end with completed and a 1000 close. Per round and count:
//     throughput, Caddy's CPU while connecting the watchers (per accept),
//     Caddy's Go memory per connected watcher (heap in use + goroutine
//     stacks, each after a forced GC, through the admin endpoint), its
//     goroutines per watcher, and Caddy's CPU during the uploads (per
//     message: the excess over the unwatched uploads, over the messages
//     the watchers read). REST status requests of the same key, on a new
//     connection each and kept-alive, give the CPU an accept is held
//     against.
//   - then, once, W10Idle counts of idle watchers (of keys with no
//     upload): memory and goroutines per watcher at that scale.
//
// The watchers run in a process of their own (the bench binary again,
// runW10Child), minimal clients of a goroutine and 512 bytes of buffer
// each, so that 100,000 fit on the machine beside Caddy.
type w10Plan struct {
	Rounds   int   `json:"rounds"`
	Uploads  int   `json:"uploads"`
	Size     int64 `json:"size"`
	Watchers []int `json:"watchers"`
	Idle     []int `json:"idle"`
	IdleSSE  []int `json:"idle_sse"`
	// IdleOwn are counts of idle WebSocket watchers each of a key of its
	// own (each key's feed to itself).
	IdleOwn []int `json:"idle_own"`
	REST    int   `json:"rest_requests"`
}

var (
	w10Full  = w10Plan{Rounds: 5, Uploads: 10, Size: 128 * mib, Watchers: []int{1000, 3000, 10000}, Idle: []int{10000, 18000, 100000}, IdleSSE: []int{10000}, IdleOwn: []int{10000}, REST: 5000}
	w10Quick = w10Plan{Rounds: 2, Uploads: 10, Size: 64 * mib, Watchers: []int{1000, 10000}, Idle: []int{10000}, IdleSSE: []int{10000}, IdleOwn: []int{10000}, REST: 2000}
)

// w10FileLimit is the open-file limit the bench sets for itself and its
// children (Caddy and the watcher process inherit it) so that 100,000
// watchers fit: each is a descriptor in Caddy and one in the watcher
// process.
const w10FileLimit = 250_000

// w10Child is the watcher process.
type w10Child struct {
	*child
	in  io.WriteCloser
	out *bufio.Scanner
}

func startW10Child(ctx context.Context) (*w10Child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, w10ChildArg)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c, err := startChild(ctx, "watcher process", cmd)
	if err != nil {
		return nil, err
	}
	return &w10Child{child: c, in: in, out: bufio.NewScanner(out)}, nil
}

// do sends a command and returns what follows "ok" in the answer.
func (c *w10Child) do(format string, args ...any) (string, error) {
	cmd := fmt.Sprintf(format, args...)
	if _, err := fmt.Fprintln(c.in, cmd); err != nil {
		return "", err
	}
	if !c.out.Scan() {
		return "", fmt.Errorf("watcher process: no answer to %q: %v", cmd, cmp(c.out.Err(), c.exitError()))
	}
	line := c.out.Text()
	if rest, ok := strings.CutPrefix(line, "ok"); ok {
		return strings.TrimSpace(rest), nil
	}
	return "", fmt.Errorf("watcher process, %q: %s", cmd, line)
}

func cmp(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// caddyMemory is Caddy's Go memory and goroutines, after a forced GC.
type caddyMemory struct {
	heap, stack uint64
	goroutines  int
}

func (m caddyMemory) total() uint64 { return m.heap + m.stack }

// readCaddyMemory forces two GCs in Caddy (a heap profile with gc=1) and
// reads its memstats (/debug/vars) and goroutine count.
func readCaddyMemory(ctx context.Context, admin string) (caddyMemory, error) {
	var m caddyMemory
	getBody := func(path string) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, admin+path, nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return b, err
	}
	for range 2 {
		if _, err := getBody("/debug/pprof/heap?gc=1"); err != nil {
			return m, err
		}
	}
	b, err := getBody("/debug/vars")
	if err != nil {
		return m, err
	}
	var v struct {
		Memstats struct{ HeapInuse, StackInuse uint64 } `json:"memstats"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return m, err
	}
	m.heap, m.stack = v.Memstats.HeapInuse, v.Memstats.StackInuse
	b, err = getBody("/debug/pprof/goroutine?debug=1")
	if err != nil {
		return m, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	m.goroutines, err = strconv.Atoi(strings.TrimPrefix(line, "goroutine profile: total "))
	return m, err
}

// w10Round is what one round measured with n watchers.
type w10Round struct {
	n          int
	throughput float64 // MiB/s
	uploadCPU  time.Duration
	clientCPU  time.Duration // the watcher process's, during the uploads
	msgs       int64
	acceptCPU  time.Duration // connecting all n
	mem        float64       // bytes per watcher
	goroutines float64       // per watcher
	restFresh  time.Duration // Caddy CPU per REST status request, new connection each
	restKept   time.Duration // the same, kept-alive
}

// runW10 runs W10 and prints its table.
// With heapDir set, it writes Caddy's heap and goroutine profiles there
// while each count of idle watchers is connected, and a CPU profile of the
// first round's most watched uploads.
func runW10(ctx context.Context, b *bench, admin string, caddyPID int, p w10Plan, files uint64, heapDir string) error {
	log.Printf("W10: watchers at scale: %d uploads of %d MiB at once, watched by %v watchers; idle %v; open-file limit %d", p.Uploads, p.Size/mib, p.Watchers, p.Idle, files)
	wc, err := startW10Child(ctx)
	if err != nil {
		return err
	}
	defer func() {
		wc.in.Close()
		wc.stop(5 * time.Second)
	}()
	cpu := func() time.Duration {
		d, _ := processCPU(caddyPID)
		return d
	}
	wsBase := testkit.WebSocketURL(b.tracked) + "/ws/progress?path="

	cpuProfiled := false
	one := func(n int, tag string) (w10Round, error) {
		r := w10Round{n: n}
		keys := make([]string, p.Uploads)
		for i := range keys {
			keys[i] = fmt.Sprintf("/w10-%s-%d", tag, i)
		}
		if n > 0 {
			m0, err := readCaddyMemory(ctx, admin)
			if err != nil {
				return r, err
			}
			c0 := cpu()
			if _, err := wc.do("dial %d %s %s", n, wsBase, strings.Join(keys, ",")); err != nil {
				return r, err
			}
			r.acceptCPU = cpu() - c0
			m1, err := readCaddyMemory(ctx, admin)
			if err != nil {
				return r, err
			}
			r.mem = (float64(m1.total()) - float64(m0.total())) / float64(n)
			r.goroutines = float64(m1.goroutines-m0.goroutines) / float64(n)
			status := b.tracked + "/progress?path=" + keys[0]
			for _, fresh := range []int{1, 0} {
				c0 := cpu()
				if _, err := wc.do("rest %d 16 %d %s", p.REST, fresh, status); err != nil {
					return r, err
				}
				d := (cpu() - c0) / time.Duration(p.REST)
				if fresh == 1 {
					r.restFresh = d
				} else {
					r.restKept = d
				}
			}
		}
		var profiled chan error
		if heapDir != "" && n == slices.Max(p.Watchers) && !cpuProfiled {
			// A CPU profile of Caddy while the most watched uploads run.
			cpuProfiled, profiled = true, make(chan error, 1)
			name := fmt.Sprintf("%s/W10-%d-watchers.cpu.pprof", heapDir, n)
			go func() {
				profiled <- (&profiler{admin: admin, d: 3 * time.Second}).fetch(ctx, "profile?seconds=3", name)
			}()
		}
		c0 := cpu()
		w0, _ := processCPU(wc.cmd.Process.Pid)
		start := time.Now()
		err := pool(ctx, p.Uploads, p.Uploads, func(ctx context.Context, i int) error {
			return uploadPattern(ctx, b.client, b.uploadURL(true, keys[i]), p.Size)
		})
		el := time.Since(start)
		if err != nil {
			return r, err
		}
		r.throughput = float64(p.Uploads) * float64(p.Size) / mib / el.Seconds()
		if n > 0 {
			out, err := wc.do("wait 120")
			if err != nil {
				return r, err
			}
			if r.msgs, err = strconv.ParseInt(out, 10, 64); err != nil {
				return r, err
			}
		}
		r.uploadCPU = cpu() - c0
		w1, _ := processCPU(wc.cmd.Process.Pid)
		r.clientCPU = w1 - w0
		if profiled != nil {
			if err := <-profiled; err != nil {
				return r, err
			}
		}
		return r, b.checkTracked(ctx, true, keys[0])
	}

	counts := append([]int{0}, p.Watchers...)
	if _, err := one(0, "warm"); err != nil {
		return fmt.Errorf("W10 warm-up: %w", err)
	}
	res := map[int][]w10Round{}
	for round := range p.Rounds {
		order := slices.Clone(counts)
		k := round % len(order)
		order = append(order[k:], order[:k]...)
		for _, n := range order {
			r, err := one(n, fmt.Sprintf("r%d-%d", round, n))
			if err != nil {
				return fmt.Errorf("W10 round %d, %d watchers: %w", round+1, n, err)
			}
			log.Printf("  W10 round %d/%d %6d watchers: %.0f MiB/s, caddy CPU %v (watcher process %v) during the uploads, %d messages; accept %v each, %.1f KiB and %.2f goroutines per watcher; REST %v (new connection) %v (kept-alive)",
				round+1, p.Rounds, n, r.throughput, r.uploadCPU, r.clientCPU, r.msgs, r.acceptCPU/time.Duration(max(n, 1)), r.mem/1024, r.goroutines, r.restFresh, r.restKept)
			res[n] = append(res[n], r)
		}
	}

	type idle struct {
		n          int
		sse        bool // event streams, not WebSockets
		own        bool // each watcher of a key of its own
		mem        float64
		goroutines float64
		accept     time.Duration
		err        error
	}
	var idles []idle
	var idleRuns []idle
	for _, n := range p.Idle {
		idleRuns = append(idleRuns, idle{n: n})
	}
	for _, n := range p.IdleSSE {
		idleRuns = append(idleRuns, idle{n: n, sse: true})
	}
	for _, n := range p.IdleOwn {
		idleRuns = append(idleRuns, idle{n: n, own: true})
	}
	for _, run := range idleRuns {
		n, dial, what := run.n, "dial", "watchers"
		if run.sse {
			dial, what = "dialsse", "event streams"
		}
		if uint64(n)+1000 > files {
			idles = append(idles, idle{n: n, sse: run.sse, own: run.own, err: fmt.Errorf("open-file limit %d", files)})
			continue
		}
		keys := make([]string, p.Uploads)
		for i := range keys {
			keys[i] = fmt.Sprintf("/w10-idle-%s-%d-%d", dial, n, i)
		}
		if run.own {
			keys, what = []string{fmt.Sprintf("/w10-idle-own-%d-*", n)}, "watchers of a key each"
		}
		m0, err := readCaddyMemory(ctx, admin)
		if err != nil {
			return err
		}
		c0 := cpu()
		if _, err := wc.do("%s %d %s %s", dial, n, wsBase, strings.Join(keys, ",")); err != nil {
			idles = append(idles, idle{n: n, sse: run.sse, own: run.own, err: err})
			wc.do("close")
			continue
		}
		acc := (cpu() - c0) / time.Duration(n)
		m1, err := readCaddyMemory(ctx, admin)
		if err != nil {
			return err
		}
		it := idle{n: n, sse: run.sse, own: run.own, accept: acc, mem: (float64(m1.total()) - float64(m0.total())) / float64(n), goroutines: float64(m1.goroutines-m0.goroutines) / float64(n)}
		if heapDir != "" {
			for _, what := range []string{"heap", "goroutine"} {
				tag := dial
				if run.own {
					tag += "-own"
				}
				name := fmt.Sprintf("%s/W10-idle-%s-%d.%s.pprof", heapDir, tag, n, what)
				if err := (&profiler{admin: admin}).fetch(ctx, what, name); err != nil {
					return err
				}
				log.Printf("  W10 %s profile written to %s", what, name)
			}
		}
		log.Printf("  W10 idle %6d %s: %.1f KiB and %.2f goroutines per watcher (Caddy heap+stacks %d MiB), accept %v each", n, what, it.mem/1024, it.goroutines, m1.total()/mib, acc)
		idles = append(idles, it)
		if _, err := wc.do("close"); err != nil {
			return err
		}
	}

	// The table.
	med := func(n int, f func(w10Round) float64) float64 {
		var xs []float64
		for _, r := range res[n] {
			xs = append(xs, f(r))
		}
		return testkit.Median(xs)
	}
	base := med(0, func(r w10Round) float64 { return r.throughput })
	baseCPU := med(0, func(r w10Round) float64 { return float64(r.uploadCPU) })
	fmt.Printf("\nW10: %d uploads of %d MiB at once on TRACKED, watchers spread evenly over their keys in a separate process; medians of %d rounds\n\n", p.Uploads, p.Size/mib, p.Rounds)
	fmt.Println("| watchers | throughput (MiB/s) | ratio to unwatched | per-round ratios | Caddy CPU during uploads (ms) | messages | CPU per message (µs) | accept CPU per watcher (µs) | REST status CPU, new conn / kept-alive (µs) | accept / REST new conn | Go memory per watcher (KiB) | goroutines per watcher |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, n := range counts {
		tp := med(n, func(r w10Round) float64 { return r.throughput })
		ucpu := med(n, func(r w10Round) float64 { return float64(r.uploadCPU) })
		var ratios []string
		for i, r := range res[n] {
			if i < len(res[0]) {
				ratios = append(ratios, fmt.Sprintf("%.2f", r.throughput/res[0][i].throughput))
			}
		}
		if n == 0 {
			fmt.Printf("| 0 | %.0f | 1 | - | %.0f | - | - | - | - | - | - | - |\n", tp, ucpu/1e6)
			continue
		}
		msgs := med(n, func(r w10Round) float64 { return float64(r.msgs) })
		acc := med(n, func(r w10Round) float64 { return float64(r.acceptCPU) / float64(n) })
		fresh := med(n, func(r w10Round) float64 { return float64(r.restFresh) })
		kept := med(n, func(r w10Round) float64 { return float64(r.restKept) })
		fmt.Printf("| %d | %.0f | %.3f | %s | %.0f | %.0f | %.1f | %.0f | %.0f / %.0f | %.2f | %.1f | %.2f |\n",
			n, tp, tp/base, strings.Join(ratios, " "), ucpu/1e6, msgs, (ucpu-baseCPU)/msgs/1e3,
			acc/1e3, fresh/1e3, kept/1e3, acc/fresh,
			med(n, func(r w10Round) float64 { return r.mem })/1024, med(n, func(r w10Round) float64 { return r.goroutines }))
	}
	if len(idles) > 0 {
		fmt.Println("\nIdle watchers (keys with no upload), once each:")
		fmt.Println()
		fmt.Println("| idle watchers | Go memory per watcher (KiB) | Caddy Go memory for them (MiB) | goroutines per watcher | accept CPU per watcher (µs) |")
		fmt.Println("|---|---|---|---|---|")
		for _, it := range idles {
			label := strconv.Itoa(it.n)
			switch {
			case it.sse:
				label += " event streams (HTTP/1.1)"
			case it.own:
				label += ", a key each"
			}
			if it.err != nil {
				fmt.Printf("| %s | not measured: %v | | | |\n", label, it.err)
				continue
			}
			fmt.Printf("| %s | %.1f | %.0f | %.2f | %.0f |\n", label, it.mem/1024, it.mem*float64(it.n)/mib, it.goroutines, float64(it.accept)/1e3)
		}
		// Where the open-file limit stops a count, the largest measured
		// count's memory per watcher, scaled.
		var last *idle
		for i := range idles {
			if idles[i].err == nil && !idles[i].sse && !idles[i].own {
				last = &idles[i]
			}
		}
		for _, it := range idles {
			if it.err != nil && !it.sse && !it.own && last != nil {
				fmt.Printf("\n%d idle watchers, extrapolated from %d at %.1f KiB each: %.0f MiB of Caddy Go memory.\n", it.n, last.n, last.mem/1024, last.mem*float64(it.n)/mib)
			}
		}
	}
	fmt.Printf("\nCPU is Caddy's user+system time from /proc (10 ms ticks); memory is Caddy's HeapInuse+StackInuse after forced GCs, with the watchers connected minus before; CPU per message is (Caddy CPU watched - unwatched) / messages read, closes included. Load average %s.\n", loadAvg())
	return nil
}

// errNoW10 is returned when W10 cannot run.
var errNoW10 = errors.New("W10 needs Linux (/proc) for Caddy's CPU")
