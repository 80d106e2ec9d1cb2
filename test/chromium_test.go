// Headless Chromium for the tests that drive a page (the demo page):
// found on PATH, started per test, and run step by step in its tabs.

package test

import (
	"bytes"
	"context"
	"io"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// requireChromium is the path of Chromium, which .ci/run installs.
func requireChromium(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not on PATH (%v): apt-get install chromium (.ci/run does)", err)
	}
	return p
}

// startBrowser starts headless Chromium for the test; it is closed when
// the test ends.
func startBrowser(t *testing.T, chromium string) context.Context {
	t.Helper()
	var stderr bytes.Buffer
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.WindowSize(1200, 1000),
		chromedp.CombinedOutput(&lockedWriter{w: &stderr}),
		// A loaded 2-core machine can take long to start Chrome.
		chromedp.WSURLReadTimeout(time.Minute),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	if err := chromedp.Do(browser); err != nil {
		cancelBrowser()
		cancelAlloc()
		t.Fatalf("starting %s: %v\n%s", chromium, err, stderr.String())
	}
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	return browser
}

// lockedWriter is a writer Chrome's output goes to from chromedp's
// goroutine while the test may read it.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// tabDo runs steps in a tab and ends the test if they fail.
func tabDo(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// tabRun runs an action in a tab and returns its value; it ends the test if
// the action fails.
func tabRun[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}
