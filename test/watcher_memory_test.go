package test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"
)

// watcherMemoryBound is what an idle watcher may hold of the proxy's Go
// memory (heap and goroutine stacks), with watchersPerKey watchers a key:
// about twice what it holds under the race detector. Watchers of a shared
// key hold about 5.5 KiB (7.5 under the race detector), their key's feed
// shared; a key's only watcher about 13 (16.6), the feed to itself. A
// watcher with a goroutine of its own held about 15 KiB (20); one that
// kept its request and the server's goroutine (a WebSocket over a general
// WebSocket library, an HTTP/1.1 event stream that stayed a response) 42
// to 49 KiB.
func watcherMemoryBound(watchersPerKey int) int64 {
	if watchersPerKey == 1 {
		return 32 << 10
	}
	return 14 << 10
}

// watcherGoroutinesBound is the goroutines an idle watcher may keep: its
// reader, and its share of its key's feed.
func watcherGoroutinesBound(watchersPerKey int) float64 { return 1 + 1/float64(watchersPerKey) + 0.05 }

// 1,000 idle watchers of ten keys hold less than watcherMemoryBound of Go
// memory each, measured after garbage collection, and give it back when
// they leave.
func TestWatcherMemory(t *testing.T) {
	testWatcherMemory(t, dialIdleWatcher, 10)
}

// 1,000 idle watchers of as many keys, each with its key's feed to itself,
// hold less than watcherMemoryBound each too.
func TestWatcherMemoryOneKeyEach(t *testing.T) {
	testWatcherMemory(t, dialIdleWatcher, 1000)
}

// 1,000 idle event stream watchers (HTTP/1.1) hold less than
// watcherMemoryBound of Go memory each, and give it back when they leave.
func TestEventStreamWatcherMemory(t *testing.T) {
	testWatcherMemory(t, dialIdleEventStream, 10)
}

// testWatcherMemory connects 1,000 idle watchers over keys keys.
func testWatcherMemory(t *testing.T, dial func(base, target string) (net.Conn, error), keys int) {
	e := newEnv(t, "")
	const n = 1000
	m0 := goMemory()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		c, err := dial(e.proxy, "/ws/progress?path="+url.QueryEscape(fmt.Sprintf("/memory/%d.bin", i%keys)))
		if err != nil {
			t.Fatalf("watcher %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	m1 := goMemory()
	per := (int64(m1.heap+m1.stack) - int64(m0.heap+m0.stack)) / n
	t.Logf("%d idle watchers: %.1f KiB each (heap %.1f KiB, stacks %.1f KiB), %.2f goroutines each", n, float64(per)/1024,
		(float64(m1.heap)-float64(m0.heap))/n/1024, (float64(m1.stack)-float64(m0.stack))/n/1024,
		float64(m1.goroutines-m0.goroutines)/n)
	if want := watcherMemoryBound(n / keys); per > want {
		t.Errorf("an idle watcher holds %d bytes of Go memory, want at most %d", per, want)
	}
	if g, want := float64(m1.goroutines-m0.goroutines)/n, watcherGoroutinesBound(n/keys); g > want {
		t.Errorf("an idle watcher keeps %.2f goroutines, want at most %.2f", g, want)
	}

	// Gone with its connection: the goroutines end, the memory goes.
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	deadline := time.Now().Add(10 * time.Second)
	for {
		m2 := goMemory()
		if m2.goroutines <= m0.goroutines+n/100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines 10 s after the watchers closed, %d before they came", m2.goroutines, m0.goroutines)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type goMem struct {
	heap, stack uint64
	goroutines  int
}

// goMemory is the process's heap in use and goroutine stacks, after
// garbage collection.
func goMemory() goMem {
	for range 4 {
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return goMem{heap: m.HeapInuse, stack: m.StackInuse, goroutines: runtime.NumGoroutine()}
}

// dialIdleWatcher opens a WebSocket watcher on base's target and returns
// once its first message came; it reads nothing more, and holds no
// goroutine or buffer of its own, so that the memory measured is the
// proxy's.
func dialIdleWatcher(base, target string) (net.Conn, error) {
	return dialIdle(base, target, "Upgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
		func(resp *http.Response, br *bufio.Reader) error {
			if resp.StatusCode != http.StatusSwitchingProtocols {
				return errors.New(resp.Status)
			}
			var hdr [2]byte
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				return err
			}
			if hdr[0] != 0x81 || hdr[1] >= 126 {
				return fmt.Errorf("first frame % x, want a short text message", hdr)
			}
			_, err := io.CopyN(io.Discard, br, int64(hdr[1]))
			return err
		})
}

// dialIdleEventStream opens an event stream watcher on base's target over
// HTTP/1.1 and returns once its first event came; like dialIdleWatcher, it
// reads nothing more.
func dialIdleEventStream(base, target string) (net.Conn, error) {
	return dialIdle(base, target, "Accept: text/event-stream\r\n", func(resp *http.Response, _ *bufio.Reader) error {
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
			return fmt.Errorf("%s, %s", resp.Status, resp.Header.Get("Content-Type"))
		}
		// The first event ends with an empty line; its data is a message.
		body := bufio.NewReader(resp.Body)
		data := false
		for {
			line, err := body.ReadString('\n')
			if err != nil {
				return err
			}
			if line == "\n" {
				break
			}
			data = data || strings.HasPrefix(line, "data: {")
		}
		if !data {
			return errors.New("first event without a message")
		}
		return nil
	})
}

// dialIdle sends a GET of target to base with the headers (each line
// ending in CRLF) and the API key, and returns the connection once first
// has read the response and its first message.
func dialIdle(base, target, headers string, first func(*http.Response, *bufio.Reader) error) (net.Conn, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	c, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n%sx-user-api-key: %s\r\n\r\n", target, u.Host, headers, apiKey)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err == nil {
		err = first(resp, br)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: %w", target, err)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}
