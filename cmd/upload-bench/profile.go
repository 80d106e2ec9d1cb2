package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// profiler takes CPU profiles of the Caddy process through its admin
// endpoint (/debug/pprof/profile), one per side of a workload, so that a
// ratio that misses its target can be traced to functions. Both sites run
// in one process, so a side is profiled alone: its runs go back to back
// for the whole profile, and nothing of the other side is in it.
//
// The sides go A, B, A: the tracked side leaves records behind (kept for
// the retention), so the process's heap, and the garbage collector's work
// per cycle, grow during B; the second A shows what that growth alone
// costs, and the heap profile taken last shows what the heap holds.
type profiler struct {
	admin string        // base URL of Caddy's admin endpoint
	dir   string        // where the profiles are written
	d     time.Duration // how long each profile lasts
}

// profileWorkload profiles each side of w in turn and writes
// dir/<ID>-<side>.pprof. It logs how many runs each profile holds, so that
// the sides can be compared per run.
func (p *profiler) profileWorkload(ctx context.Context, b *bench, w workload) error {
	for i, tracked := range []bool{false, true, false} {
		name := filepath.Join(p.dir, fmt.Sprintf("%s-%s.pprof", w.ID, w.Sides[side(tracked)]))
		if i == 2 {
			name = filepath.Join(p.dir, fmt.Sprintf("%s-%s-again.pprof", w.ID, w.Sides[side(tracked)]))
		}
		done := make(chan error, 1)
		go func() { done <- p.fetch(ctx, "profile?seconds="+strconv.Itoa(p.seconds()), name) }()
		// The profile starts when Caddy gets the request; runs start right
		// away, so the first run's start may fall just outside it.
		var runs int
		var busy time.Duration
		var perr error
	loop:
		for {
			select {
			case perr = <-done:
				break loop
			default:
			}
			rctx, cancel := context.WithTimeout(ctx, runTimeout)
			t := time.Now()
			_, err := w.run(rctx, b, tracked, fmt.Sprintf("prof%d-%d", side(tracked), runs))
			cancel()
			if err != nil {
				<-done
				return fmt.Errorf("profiling %s side: %w", w.Sides[side(tracked)], err)
			}
			select {
			case perr = <-done:
				// This run ended after the profile: count the part inside it.
				log.Printf("  %s profile %-8s %d full runs + the last one cut, %v of %v busy",
					w.ID, w.Sides[side(tracked)], runs, busy.Round(time.Millisecond), p.d)
				break loop
			default:
			}
			runs++
			busy += time.Since(t)
		}
		if perr != nil {
			return fmt.Errorf("profiling %s side: %w", w.Sides[side(tracked)], perr)
		}
		log.Printf("  %s profile %-8s written to %s", w.ID, w.Sides[side(tracked)], name)
	}
	name := filepath.Join(p.dir, w.ID+"-heap.pprof")
	if err := p.fetch(ctx, "heap?gc=1", name); err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	log.Printf("  %s heap profile written to %s", w.ID, name)
	return nil
}

// seconds is the length of a CPU profile, in the whole seconds pprof takes.
func (p *profiler) seconds() int { return max(1, int(p.d/time.Second)) }

// fetch gets /debug/pprof/<what> and writes it to name.
func (p *profiler) fetch(ctx context.Context, what, name string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(p.seconds())*time.Second+30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.admin+"/debug/pprof/"+what, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET /debug/pprof/%s: %s: %s", what, resp.Status, b)
	}
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
