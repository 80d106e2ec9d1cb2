package main

import (
	"bufio"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/testkit"
)

// row is one metric of one workload, over all rounds.
type row struct {
	Workload string    `json:"workload"`
	Title    string    `json:"title"`
	Sides    [2]string `json:"sides"`
	Metric   metric    `json:"metric"`
	Plain    []float64 `json:"plain"`   // per round, side A
	Tracked  []float64 `json:"tracked"` // per round, side B
	PlainMed float64   `json:"plain_median"`
	TrackMed float64   `json:"tracked_median"`
	Ratio    float64   `json:"ratio"`  // tracked/plain of the medians
	Result   string    `json:"result"` // pass, miss or info
	// RoundRatios are tracked/plain within each round, whose spread shows
	// how much the machine's noise moves the ratio.
	RoundRatios []float64 `json:"round_ratios,omitempty"`
}

// newRow computes the medians, the ratio and the verdict.
func newRow(w workload, m metric, plain, tracked []float64) row {
	r := row{Workload: w.ID, Title: w.Title, Sides: w.Sides, Metric: m, Plain: plain, Tracked: tracked,
		TrackMed: testkit.Median(tracked)}
	if len(plain) > 0 { // else a tracked-only metric: no median, no ratio
		r.PlainMed = testkit.Median(plain)
		// A side that costs nothing (R3's A side) has no ratio either.
		if r.PlainMed != 0 {
			r.Ratio = r.TrackMed / r.PlainMed
		}
		for i := range min(len(plain), len(tracked)) {
			if plain[i] != 0 {
				r.RoundRatios = append(r.RoundRatios, tracked[i]/plain[i])
			}
		}
	}
	switch {
	case m.MinRatio == 0:
		r.Result = "info"
	case r.Ratio >= m.MinRatio:
		r.Result = "pass"
	default:
		r.Result = "miss"
	}
	return r
}

// machine describes where the bench ran.
type machine struct {
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
	NumCPU     int    `json:"nproc"`
	GoVersion  string `json:"go_version"`
	CPUModel   string `json:"cpu_model"`
	Kernel     string `json:"kernel,omitempty"`
	CaddyBuild string `json:"caddy_build"`
}

func machineInfo(caddyBin string, built bool) machine {
	m := machine{
		GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, NumCPU: runtime.NumCPU(),
		GoVersion: runtime.Version(), CPUModel: cpuModel(),
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.CaddyBuild = caddyBuild(caddyBin)
	if built {
		m.CaddyBuild += ", built from " + sourceRevision()
	} else {
		m.CaddyBuild += ", prebuilt " + caddyBin
	}
	return m
}

// sourceRevision names the repository state Caddy was built from: the
// commit, and whether tracked files differ from it.
func sourceRevision() string {
	out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "an unknown revision"
	}
	rev := "commit " + strings.TrimSpace(string(out))
	if exec.Command("git", "diff", "--quiet", "HEAD", "--").Run() != nil {
		rev += " + uncommitted changes"
	}
	return rev
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// caddyBuild says what the Caddy binary was built from: the Go version,
// Caddy's version and the repository revision (+dirty).
func caddyBuild(bin string) string {
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		return "unknown"
	}
	s := bi.GoVersion
	for _, d := range bi.Deps {
		if d.Path == "github.com/caddyserver/caddy/v2" {
			s += ", caddy " + d.Version
		}
	}
	var rev, dirty string
	for _, kv := range bi.Settings {
		switch kv.Key {
		case "vcs.revision":
			rev = kv.Value
		case "vcs.modified":
			if kv.Value == "true" {
				dirty = " (modified working tree)"
			}
		}
	}
	if rev != "" {
		s += ", module at " + rev[:min(12, len(rev))] + dirty
	}
	return s
}

// loadAvg is the 1, 5 and 15 minute load averages, to show how busy the
// machine was besides the bench; "unknown" outside Linux.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

// report is everything a run produced; it is also the -json output.
type report struct {
	Command  string    `json:"command"`
	Mode     string    `json:"mode"`
	Started  time.Time `json:"started"`
	Duration string    `json:"duration"`
	Machine  machine   `json:"machine"`
	Plan     plan      `json:"plan"`
	LoadAvg  [2]string `json:"loadavg"` // /proc/loadavg at the start and the end
	Rows     []row     `json:"rows"`
	Notes    []string  `json:"notes"`
}

// command is the command line that reproduces the run.
func command(args []string) string {
	var b strings.Builder
	b.WriteString("go run ./cmd/upload-bench")
	for _, a := range args {
		b.WriteByte(' ')
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}()<>|&;#~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		b.WriteString(a)
	}
	return b.String()
}

// writeMarkdown prints the results table, the notes and the machine.
func (r *report) writeMarkdown(w io.Writer) {
	fmt.Fprintf(w, "| workload | metric | plain median | tracked median | ratio tracked/plain | per-round ratio p25-p75 | target | result |\n")
	fmt.Fprintf(w, "| --- | --- | ---: | ---: | ---: | ---: | --- | --- |\n")
	for _, x := range r.Rows {
		plain, tracked, ratio := num(x.PlainMed), num(x.TrackMed), fmt.Sprintf("%.3f", x.Ratio)
		spread := fmt.Sprintf("%.3f-%.3f", percentile(x.RoundRatios, 25), percentile(x.RoundRatios, 75))
		if len(x.Plain) == 0 {
			plain, ratio, spread = "-", "-", "-"
		}
		if x.Sides != [2]string{"plain", "tracked"} {
			if len(x.Plain) > 0 {
				plain += " (" + x.Sides[0] + ")"
			}
			tracked += " (" + x.Sides[1] + ")"
		}
		fmt.Fprintf(w, "| %s %s | %s (%s) | %s | %s | %s | %s | %s | %s |\n",
			x.Workload, x.Title, x.Metric.Name, x.Metric.Unit, plain, tracked, ratio, spread, x.Metric.Target, x.Result)
	}
	fmt.Fprintln(w)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
	m := r.Machine
	fmt.Fprintf(w, "\nMachine: %s/%s, %d CPUs (%s), kernel %s, %s. Caddy: %s.\n",
		m.GOOS, m.GOARCH, m.NumCPU, m.CPUModel, m.Kernel, m.GoVersion, m.CaddyBuild)
	fmt.Fprintf(w, "Mode: %s, %d rounds per side, run %s, took %s; load average (1/5/15 min) %s at the start, %s at the end.\n",
		r.Mode, r.Plan.Rounds, r.Started.Format(time.RFC3339), r.Duration, r.LoadAvg[0], r.LoadAvg[1])
	fmt.Fprintf(w, "Command: `%s`\n", r.Command)
}

// num formats a measurement with a precision that suits its size.
func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case math.Abs(v) >= 1000:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// writeJSON writes the report to path.
func (r *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
