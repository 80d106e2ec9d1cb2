package test

import (
	"errors"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
)

// buildCaddy builds cmd/caddy, the Caddy of this repository, into the
// test's temporary directory.
func buildCaddy(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("building cmd/caddy needs the go command: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "caddy")
	build := exec.Command(goTool, "build", "-o", bin, "./cmd/caddy")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/caddy: %v\n%s", err, out)
	}
	return bin
}

// barPercent is a percentage the bar draws.
var barPercent = regexp.MustCompile(`\b(\d{1,3})%`)

// The built caddy has the command, exits with its codes, and draws its
// bar on a terminal.
func TestCLIBinary(t *testing.T) {
	bin := buildCaddy(t)
	e := newEnv(t, "protocol shard")
	t.Run("exit codes", func(t *testing.T) { testBinaryExitCodes(t, e.forTest(t), bin) })
	t.Run("bar", func(t *testing.T) { testBarOnATerminal(t, e.forTest(t), bin) })
}

// testBinaryExitCodes runs the built caddy: its help names both
// commands, a usage error exits 2 and an upload that never comes 3.
func testBinaryExitCodes(t *testing.T, e *env, bin string) {
	for _, tc := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"help", "upload-progress"}, 0, "watch"},
		{[]string{"upload-progress", "watch", "--server", e.proxy}, 2, "--key is required"},
		{[]string{"upload-progress", "watch", "--server", e.proxy, "--key", "/x", "--nope"}, 2, "unknown flag"},
		{[]string{"upload-progress", "watch", "--server", e.proxy, "--key", "/cli/none.bin", "--api-key", apiKey, "--wait", "200ms"}, 3, "did not appear"},
	} {
		out, err := exec.Command(bin, tc.args...).CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code || !strings.Contains(string(out), tc.says) {
			t.Errorf("caddy %s: exit %d, want %d saying %q:\n%s", strings.Join(tc.args, " "), code, tc.code, tc.says, out)
		}
	}
}

// testBarOnATerminal runs the built caddy in a pseudo-terminal: a shard
// upload held midway shows a percentage between 0 and 100, then the bar
// reaches 100% and the command exits 0.
func testBarOnATerminal(t *testing.T, e *env, bin string) {
	const size = 8 << 20

	cmd := exec.Command(bin, "upload-progress", "watch", "--server", e.proxy, "--key", "/cli/pty.bin", "--api-key", apiKey)
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 120})
	if err != nil {
		t.Fatal(err)
	}
	screen := newCLIOutput()
	read := make(chan struct{})
	go func() {
		defer close(read)
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			screen.Write(buf[:n])
			if err != nil {
				return // EIO once the command has exited
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		tty.Close()
		<-read
	})

	// waitScreen waits until ok accepts what the terminal shows, 30 s
	// at most.
	waitScreen := func(what string, ok func(string) bool) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for !ok(screen.String()) {
			select {
			case <-screen.changed:
			case <-deadline:
				t.Fatalf("the terminal never showed %s:\n%q", what, screen)
			}
		}
	}
	waitScreen("waiting", func(s string) bool { return strings.Contains(s, "waiting for the upload") })

	g := newDsGate(t)
	res := e.asyncUpload("/cli/pty.bin", g.reader(pattern(size), size/2), size, "", nil)
	waitScreen("a percentage midway", func(s string) bool {
		for _, m := range barPercent.FindAllStringSubmatch(s, -1) {
			if m[1] != "0" && m[1] != "100" {
				return true
			}
		}
		return false
	})
	g.open()
	if r := <-res; r.err != nil || r.code != http.StatusCreated {
		t.Fatalf("upload: %+v", r)
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("the command exited: %v; the terminal showed:\n%q", err, screen)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the command did not exit; the terminal showed:\n%q", screen)
	}
	<-read
	s := screen.String()
	if !strings.Contains(s, "100%") || !strings.Contains(s, "completed") || !strings.Contains(s, "completed 8.0 MiB/8.0 MiB") {
		t.Fatalf("the bar did not reach 100%% of 8.0 MiB and completed:\n%q", s)
	}
}
