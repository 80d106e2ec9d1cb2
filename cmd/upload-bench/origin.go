package main

// The sink origin (and W7's tusd, see tusd.go, and W8's reference origin,
// see sandboxorigin.go) runs as a child process of
// this same binary (re-executed with the hidden first argument
// originChildArg, tusdChildArg or sandboxOriginChildArg) rather than inside the
// bench process: the load generator allocates (latency samples, WebSocket
// frames) and its garbage collections and scheduler would otherwise pause
// the origin too, a coupling a real deployment does not have. As its own
// process it has its own heap and runtime, like Caddy, and the three parties
// (client, proxy, origin) compete for the 2 cores only through the kernel,
// as they would in production. It exits when its stdin closes (the bench
// went away), on interrupt, and on Linux through the parent-death signal.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/testkit"
)

// originChildArg, as the first argument, makes the binary the sink origin.
const originChildArg = "-origin-child"

// runOriginChild is the origin child's main.
func runOriginChild() error { return serveChild(http.HandlerFunc(testkit.Sink)) }

// serveChild is the main of a server child (the sink origin, tusd, the
// reference origin): it
// listens on a loopback port picked by the kernel, prints "ADDR host:port"
// on stdout, and serves h until stdin closes or it is interrupted.
func serveChild(h http.Handler) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("ADDR %s\n", ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin) // returns when the bench goes away
		stop()
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// startOrigin re-executes this binary as the sink origin and returns the
// child and the address it listens on.
func startOrigin(ctx context.Context) (*child, string, error) {
	return startServerChild(ctx, "origin", originChildArg)
}

// startServerChild re-executes this binary with args, as the server child
// named name, and returns the child and the address it listens on.
func startServerChild(ctx context.Context, name string, args ...string) (*child, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	// stdin stays open (never written) for the child's lifetime: its EOF
	// tells the child the bench is gone. exec closes it after Wait.
	if _, err := cmd.StdinPipe(); err != nil {
		return nil, "", err
	}
	// The child reports its address on stdout, through a pipe of our own so
	// that reading it does not race with Wait.
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, "", err
	}
	cmd.Stdout = pw
	c, err := startChild(ctx, name, cmd)
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, "", err
	}

	addrc := make(chan string, 1)
	go func() {
		defer pr.Close()
		line, _ := bufio.NewReader(pr).ReadString('\n')
		addrc <- strings.TrimSpace(strings.TrimPrefix(line, "ADDR "))
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case addr := <-addrc:
		if addr == "" {
			c.stop(time.Second)
			return nil, "", fmt.Errorf("%s did not report its address: %v", name, c.exitError())
		}
		return c, addr, nil
	case <-time.After(10 * time.Second):
		c.stop(time.Second)
		return nil, "", fmt.Errorf("%s did not start within 10s", name)
	case <-ctx.Done():
		c.stop(time.Second)
		return nil, "", ctx.Err()
	}
}
