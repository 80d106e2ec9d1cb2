package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"
)

// child is a child process (Caddy or the sink origin) that must not
// outlive the bench: it is stopped by stop, killed when the bench's context
// ends, and on Linux killed by the kernel if the bench itself dies
// (see proc_linux.go).
type child struct {
	name   string
	cmd    *exec.Cmd
	done   chan struct{} // closed when the process has exited
	err    error         // Wait's error, valid once done is closed
	stopMu sync.Once
}

// startChild starts cmd as a child named name. The process gets an interrupt
// when ctx ends and is killed 5 s later if it has not exited.
func startChild(ctx context.Context, name string, cmd *exec.Cmd) (*child, error) {
	setChildAttrs(cmd)
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	go func() {
		select {
		case <-ctx.Done():
			c.stop(5 * time.Second)
		case <-c.done:
		}
	}()
	return c, nil
}

// exited returns a channel closed when the process has exited.
func (c *child) exited() <-chan struct{} { return c.done }

// stop asks the process to exit (interrupt), and kills it if it has not
// within grace. It returns once the process is gone.
func (c *child) stop(grace time.Duration) {
	c.stopMu.Do(func() {
		select {
		case <-c.done:
			return
		default:
		}
		_ = c.cmd.Process.Signal(os.Interrupt)
		select {
		case <-c.done:
		case <-time.After(grace):
			_ = c.cmd.Process.Kill()
		}
	})
	<-c.done
}

// exitError describes how the process ended, for error messages.
func (c *child) exitError() error {
	select {
	case <-c.done:
	default:
		return nil
	}
	if c.err == nil {
		return fmt.Errorf("%s exited", c.name)
	}
	var ee *exec.ExitError
	if errors.As(c.err, &ee) {
		return fmt.Errorf("%s exited: %v", c.name, ee)
	}
	return fmt.Errorf("%s: %v", c.name, c.err)
}

// tailFile returns the last n bytes of a file, for showing a child's log
// when something went wrong.
func tailFile(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(-n, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}
