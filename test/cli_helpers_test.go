package test

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-upload-progress/caddy-upload-progress/cli"
)

// cliOutput is what a run of `caddy upload-progress` writes on one of its
// outputs, kept line by line; a write wakes whoever waits for a line.
type cliOutput struct {
	mu      sync.Mutex
	all     bytes.Buffer
	changed chan struct{}
}

func newCLIOutput() *cliOutput { return &cliOutput{changed: make(chan struct{}, 1)} }

func (o *cliOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	o.all.Write(p)
	o.mu.Unlock()
	select {
	case o.changed <- struct{}{}:
	default:
	}
	return len(p), nil
}

// lines are the whole lines written so far.
func (o *cliOutput) lines() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := o.all.String()
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return strings.Split(s[:i], "\n")
	}
	return nil
}

func (o *cliOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.all.String()
}

// cliRun is the command run in this process, against the Caddy the test
// loaded.
type cliRun struct {
	t        testing.TB
	out, err *cliOutput
	code     chan int
	exited   *int
}

// startCLI runs `caddy upload-progress args…` on its own goroutine, its
// output not a terminal. It is interrupted, if still running, when the
// test ends.
func startCLI(t testing.TB, args ...string) *cliRun {
	t.Helper()
	c := &cliRun{t: t, out: newCLIOutput(), err: newCLIOutput(), code: make(chan int, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.code <- cli.Run(ctx, args, cli.Stdio{Out: c.out, Err: c.err})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("the command did not stop within 10 s of its interruption")
		}
	})
	return c
}

// runCLI runs the command to its end and returns its exit code.
func runCLI(t testing.TB, args ...string) (int, *cliRun) {
	t.Helper()
	c := startCLI(t, args...)
	return c.exit(), c
}

// exit waits for the command's exit code, 60 s at most.
func (c *cliRun) exit() int {
	c.t.Helper()
	if c.exited != nil {
		return *c.exited
	}
	select {
	case code := <-c.code:
		c.exited = &code
		return code
	case <-time.After(60 * time.Second):
		c.t.Fatalf("the command did not end within 60 s; its output:\n%s\nstderr: %s", c.out, c.err)
		return 0
	}
}

// expectExit fails the test unless the command ends with code.
func (c *cliRun) expectExit(code int) {
	c.t.Helper()
	if got := c.exit(); got != code {
		c.t.Fatalf("exit code %d, want %d; output:\n%s\nstderr: %s", got, code, c.out, c.err)
	}
}

// cliLine is one line of --json.
type cliLine struct {
	Uploaded int64  `json:"uploaded"`
	Total    int64  `json:"total"`
	Status   string `json:"status"`
	Rate     *int64 `json:"rate"`
	ETA      *int64 `json:"eta_seconds"`
}

// parseCLILine decodes a --json line, failing the test unless it is one
// object with uploaded, total and status, and no other member than rate
// and eta_seconds.
func parseCLILine(t testing.TB, s string) cliLine {
	t.Helper()
	var members map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &members); err != nil {
		t.Fatalf("--json line %q: %v", s, err)
	}
	for _, m := range []string{"uploaded", "total", "status"} {
		if _, ok := members[m]; !ok {
			t.Fatalf("--json line %q lacks %s", s, m)
		}
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	var l cliLine
	if err := dec.Decode(&l); err != nil {
		t.Fatalf("--json line %q: %v", s, err)
	}
	return l
}

// jsonLines are the --json lines written so far, decoded.
func (c *cliRun) jsonLines() []cliLine {
	c.t.Helper()
	var ls []cliLine
	for _, s := range c.out.lines() {
		ls = append(ls, parseCLILine(c.t, s))
	}
	return ls
}

// waitLine waits until a --json line satisfies ok, 30 s at most, and
// returns it; it fails the test if the command ends first.
func (c *cliRun) waitLine(what string, ok func(cliLine) bool) cliLine {
	c.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		for _, l := range c.jsonLines() {
			if ok(l) {
				return l
			}
		}
		select {
		case <-c.out.changed:
		case code := <-c.code:
			c.exited = &code
			for _, l := range c.jsonLines() {
				if ok(l) {
					return l
				}
			}
			c.t.Fatalf("the command ended (%d) before a line %s; output:\n%s\nstderr: %s", code, what, c.out, c.err)
		case <-deadline:
			c.t.Fatalf("no line %s within 30 s; output:\n%s\nstderr: %s", what, c.out, c.err)
		}
	}
}

// midway is a line of an upload on its way: some bytes, not all.
func midway(l cliLine) bool {
	return l.Status == "uploading" && l.Uploaded > 0 && (l.Total < 0 || l.Uploaded < l.Total)
}

// expectCompleted fails the test unless the command exited 0 with, last,
// a completed line of want bytes (-1: any) out of total (-2: any), and
// every line a --json line whose counts never went back.
func (c *cliRun) expectCompleted(want, total int64) cliLine {
	c.t.Helper()
	c.expectExit(0)
	ls := c.jsonLines()
	if len(ls) == 0 {
		c.t.Fatal("the command printed no line")
	}
	for i := 1; i < len(ls); i++ {
		if ls[i].Uploaded < ls[i-1].Uploaded {
			c.t.Fatalf("the count went back from %d to %d:\n%s", ls[i-1].Uploaded, ls[i].Uploaded, c.out)
		}
	}
	last := ls[len(ls)-1]
	if last.Status != "completed" || want >= 0 && last.Uploaded != want || total > -2 && last.Total != total {
		c.t.Fatalf("last line %+v, want completed with %d/%d bytes; output:\n%s", last, want, total, c.out)
	}
	return last
}

// statusRequests sums Caddy's caddy_upload_progress_status_requests_total
// of protocol over transport (rest, or websocket: the watchers taken).
// The counters live as long as the test binary: tests compare them
// before and after.
func (e *env) statusRequests(protocol, transport string) float64 {
	e.t.Helper()
	var n float64
	for _, line := range strings.Split(e.scrape(), "\n") {
		series, value, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(series, "caddy_upload_progress_status_requests_total{") ||
			!strings.Contains(series, `protocol="`+protocol+`"`) || !strings.Contains(series, `transport="`+transport+`"`) ||
			transport == "websocket" && !strings.Contains(series, `code="101"`) {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			e.t.Fatalf("metrics line %q: %v", line, err)
		}
		n += v
	}
	return n
}

// transports notes the status requests of protocol so far; its check
// fails the test unless the command since watched over the WebSocket
// alone (socket), or polled alone.
func (e *env) transports(protocol string) (check func(socket bool)) {
	rest, ws := e.statusRequests(protocol, "rest"), e.statusRequests(protocol, "websocket")
	return func(socket bool) {
		e.t.Helper()
		dRest, dWS := e.statusRequests(protocol, "rest")-rest, e.statusRequests(protocol, "websocket")-ws
		if socket && (dWS < 1 || dRest != 0) || !socket && (dWS != 0 || dRest < 1) {
			e.t.Fatalf("the command asked %s %v REST status requests and opened %v WebSockets; want socket=%v", protocol, dRest, dWS, socket)
		}
	}
}
