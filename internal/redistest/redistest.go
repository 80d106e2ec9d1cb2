// Package redistest runs real redis-server processes for tests: each on a
// free loopback port with a directory of its own, no persistence, stopped
// when the test ends. A machine without redis-server fails the test: CI
// installs it (.ci/run), and a test that cannot run must not pass.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/testkit"
)

// Server is one redis-server process.
type Server struct {
	t       testing.TB
	Addr    string // 127.0.0.1:port
	dir     string
	args    []string
	cmd     *exec.Cmd
	exited  chan struct{}
	cluster bool
}

// Start runs a redis-server until the test ends.
func Start(t testing.TB) *Server { return start(t, false) }

func start(t testing.TB, cluster bool) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not installed (apt-get install redis-server); the shared-store tests need it: %v", err)
	}
	port, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, Addr: "127.0.0.1:" + strconv.Itoa(port), dir: t.TempDir(), cluster: cluster}
	s.args = []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", s.dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no"}
	if cluster {
		s.args = append(s.args, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000")
	}
	s.args = append([]string{bin}, s.args...)
	s.run()
	t.Cleanup(s.Kill)
	return s
}

func (s *Server) run() {
	s.t.Helper()
	cmd := exec.Command(s.args[0], s.args[1:]...)
	log, err := os.OpenFile(filepath.Join(s.dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("starting redis-server: %v", err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	exited := s.exited
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	if err := s.waitReady(10 * time.Second); err != nil {
		s.Kill()
		b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
		s.t.Fatalf("redis-server on %s: %v\n%s", s.Addr, err, b)
	}
}

// Kill stops the server at once (SIGKILL), as a crash would.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart starts the server again on its port, empty.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	s.run()
}

// Do sends one command and returns its reply's first line.
func (s *Server) Do(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}

func (s *Server) waitReady(within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		reply, err := s.Do("PING")
		if err == nil && reply == "+PONG" {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("exited")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not answering PING within %v: %q %v", within, reply, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// StartCluster runs a Redis Cluster of n masters (no replicas) until the
// test ends, and returns its servers once every slot is served.
func StartCluster(t testing.TB, n int) []*Server {
	t.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli is not installed (apt-get install redis-server): %v", err)
	}
	servers := make([]*Server, n)
	args := []string{"--cluster", "create"}
	for i := range servers {
		servers[i] = start(t, true)
		args = append(args, servers[i].Addr)
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, s := range servers {
		for {
			out, err := exec.Command(cli, "-h", "127.0.0.1", "-p", strings.TrimPrefix(s.Addr, "127.0.0.1:"), "cluster", "info").Output()
			if err == nil && strings.Contains(string(out), "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster not ok within 20s: %s %v", out, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return servers
}
