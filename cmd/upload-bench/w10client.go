package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// w10ChildArg makes the bench binary W10's watcher process: the watchers
// run in a process of their own, so that what they cost is not Caddy's
// and not the uploading client's.
const w10ChildArg = "__w10-watchers"

// The watcher process reads commands, one a line, on stdin and answers
// each with one line on stdout: "ok ..." or "err <why>". It exits when
// stdin ends.
//
//	dial <n> <base URL> <key,key,...>   n watchers over the keys, each reading; ok once each has its first message
//	                                    (one key ending in *: each watcher a key of its own, the prefix and its number)
//	dialsse <n> <base URL> <key,...>    the same as event streams (HTTP/1.1, Accept: text/event-stream)
//	wait <seconds>                      ok <messages> when every watcher has ended with completed and a 1000 close
//	close                               ok once every watcher has closed (1001 from the client)
//	rest <n> <conc> <fresh 0|1> <URL>   n GETs of URL, on a new connection each with fresh
func runW10Child() error {
	w := &watcherSet{}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		reply, err := w.do(f)
		if err != nil {
			reply = "err " + strings.ReplaceAll(err.Error(), "\n", " ")
		}
		fmt.Println(reply)
	}
	return in.Err()
}

// watcherSet is the watcher process's watchers.
type watcherSet struct {
	all  []*rawWatcher
	msgs atomic.Int64
}

func (s *watcherSet) do(f []string) (string, error) {
	switch {
	case f[0] == "dial" && len(f) == 4:
		n, err := strconv.Atoi(f[1])
		if err != nil {
			return "", err
		}
		return "ok", s.dial(n, f[2], strings.Split(f[3], ","), dialRaw)
	case f[0] == "dialsse" && len(f) == 4:
		n, err := strconv.Atoi(f[1])
		if err != nil {
			return "", err
		}
		return "ok", s.dial(n, f[2], strings.Split(f[3], ","), dialEvents)
	case f[0] == "wait" && len(f) == 2:
		secs, err := strconv.Atoi(f[1])
		if err != nil {
			return "", err
		}
		err = s.wait(time.Duration(secs) * time.Second)
		return "ok " + strconv.FormatInt(s.msgs.Swap(0), 10), err
	case f[0] == "close" && len(f) == 1:
		return "ok", s.close()
	case f[0] == "rest" && len(f) == 5:
		n, err1 := strconv.Atoi(f[1])
		conc, err2 := strconv.Atoi(f[2])
		if err := errors.Join(err1, err2); err != nil {
			return "", err
		}
		return "ok", rest(n, conc, f[3] == "1", f[4])
	}
	return "", fmt.Errorf("unknown command %q", strings.Join(f, " "))
}

// localFor is the address the watcher that is the open-th connection of
// the process dials from: none (the system's choice) for the first
// 20,000, then 127.0.0.2, 127.0.0.3, ... for each 20,000 more, as one
// source address has about 28,000 ports to one destination. Sockets bound
// to an address of their own hold their port against other programs'
// listeners while they linger after closing, so the bench binds only past
// what one address holds, with SO_REUSEADDR.
func localFor(open int) *net.TCPAddr {
	if open < 20000 {
		return nil
	}
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+open/20000))}
}

// dial connects n watchers, 64 at a time.
func (s *watcherSet) dial(n int, base string, keys []string, dialOne func(addr, target string, local *net.TCPAddr, msgs *atomic.Int64) (*rawWatcher, error)) error {
	u, err := url.Parse(base)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var first error
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	open := len(s.all)
	ws := make([]*rawWatcher, n)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			key := keys[i%len(keys)]
			if prefix, ok := strings.CutSuffix(key, "*"); ok && len(keys) == 1 {
				key = prefix + strconv.Itoa(i) // a key of its own
			}
			w, err := dialOne(u.Host, u.RequestURI()+url.QueryEscape(key), localFor(open+i), &s.msgs)
			if err != nil {
				mu.Lock()
				first = cmpErr(first, err)
				mu.Unlock()
				return
			}
			ws[i] = w
		})
	}
	wg.Wait()
	for _, w := range ws {
		if w != nil {
			s.all = append(s.all, w)
		}
	}
	return first
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// wait waits for every watcher to end, and checks each ended as a watcher
// of a finished upload should: its last message completed, then a 1000.
func (s *watcherSet) wait(within time.Duration) error {
	deadline := time.After(within)
	var bad error
	for _, w := range s.all {
		select {
		case <-w.done:
		case <-deadline:
			s.abort()
			return fmt.Errorf("watchers still open %v after the uploads", within)
		}
		if w.err == nil && (w.code != 1000 || !w.completed) {
			w.err = fmt.Errorf("ended with close %d, completed %v", w.code, w.completed)
		}
		bad = cmpErr(bad, w.err)
	}
	s.all = nil
	return bad
}

// close closes every watcher from the client's side (1001, going away)
// and waits for their connections to end.
func (s *watcherSet) close() error {
	for _, w := range s.all {
		if w.events {
			w.c.Close()
		} else {
			w.writeFrame(0x8, binary.BigEndian.AppendUint16(nil, 1001))
		}
	}
	deadline := time.After(60 * time.Second)
	for _, w := range s.all {
		select {
		case <-w.done:
		case <-deadline:
			s.abort()
			return errors.New("watchers not closed within 60s")
		}
	}
	s.all = nil
	return nil
}

func (s *watcherSet) abort() {
	for _, w := range s.all {
		w.c.Close()
	}
	s.all = nil
}

// rawWatcher is a minimal WebSocket client, a goroutine and a small
// buffer each, so that 100,000 of them fit beside Caddy: it reads the
// server's frames, answers pings, and ends at the close.
type rawWatcher struct {
	c         net.Conn
	wmu       sync.Mutex
	done      chan struct{}
	events    bool // an event stream, not a WebSocket
	code      int  // the server's close code
	completed bool // the last message said completed
	err       error
}

// handshake is the opening request of every watcher.
const handshake = "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

// dialRequest connects to addr from local, sends request, and reads its
// response's header, which must have status; the connection's deadline
// is 60 s until the caller clears it.
func dialRequest(addr string, local *net.TCPAddr, request string, status int) (net.Conn, *bufio.Reader, *http.Response, error) {
	d := net.Dialer{Timeout: 30 * time.Second}
	if local != nil {
		d.LocalAddr = local
		d.Control = reuseAddr
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, nil, nil, err
	}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		c.Close()
		return nil, nil, nil, err
	}
	br := bufio.NewReaderSize(c, 512)
	resp, err := http.ReadResponse(br, nil)
	if err == nil && resp.StatusCode != status {
		err = errors.New(resp.Status)
	}
	if err != nil {
		c.Close()
		return nil, nil, nil, err
	}
	return c, br, resp, nil
}

// dialRaw opens a watcher of target on addr from local and returns once
// its first message came.
func dialRaw(addr, target string, local *net.TCPAddr, msgs *atomic.Int64) (*rawWatcher, error) {
	c, br, _, err := dialRequest(addr, local, fmt.Sprintf(handshake, target, addr), http.StatusSwitchingProtocols)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", target, err)
	}
	w := &rawWatcher{c: c, done: make(chan struct{})}
	first := make(chan error, 1)
	go w.read(br, msgs, first)
	if err := <-first; err != nil {
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return w, nil
}

// dialEvents opens an event stream of target on addr from local and
// returns once its first event came; it is read until it ends.
func dialEvents(addr, target string, local *net.TCPAddr, msgs *atomic.Int64) (*rawWatcher, error) {
	c, _, resp, err := dialRequest(addr, local, fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", target, addr), http.StatusOK)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", target, err)
	}
	w := &rawWatcher{c: c, events: true, done: make(chan struct{})}
	first := make(chan error, 1)
	go w.readEvents(bufio.NewReaderSize(resp.Body, 512), msgs, first)
	if err := <-first; err != nil {
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return w, nil
}

// readEvents reads an event stream until it ends; the first event is
// reported on first.
func (w *rawWatcher) readEvents(br *bufio.Reader, msgs *atomic.Int64, first chan<- error) {
	defer close(w.done)
	defer w.c.Close()
	for n := 0; ; {
		line, err := br.ReadSlice('\n')
		if err != nil {
			w.end(n, first, err)
			return
		}
		if string(line) == "\n" {
			msgs.Add(1)
			if n++; n == 1 {
				first <- nil
			}
		}
	}
}

// read reads frames until the close; the first message is reported on
// first.
func (w *rawWatcher) read(br *bufio.Reader, msgs *atomic.Int64, first chan<- error) {
	defer close(w.done)
	defer w.c.Close()
	var hdr [8]byte
	for n := 0; ; {
		if _, err := io.ReadFull(br, hdr[:2]); err != nil {
			w.end(n, first, err)
			return
		}
		op, size := hdr[0]&0x0f, int64(hdr[1]&0x7f)
		switch size {
		case 126:
			if _, err := io.ReadFull(br, hdr[:2]); err != nil {
				w.end(n, first, err)
				return
			}
			size = int64(binary.BigEndian.Uint16(hdr[:2]))
		case 127:
			if _, err := io.ReadFull(br, hdr[:8]); err != nil {
				w.end(n, first, err)
				return
			}
			size = int64(binary.BigEndian.Uint64(hdr[:8]))
		}
		if size > 1<<20 {
			w.end(n, first, fmt.Errorf("a frame of %d bytes", size))
			return
		}
		payload := make([]byte, size)
		if _, err := io.ReadFull(br, payload); err != nil {
			w.end(n, first, err)
			return
		}
		switch op {
		case 0x1, 0x0:
			msgs.Add(1)
			w.completed = bytes.Contains(payload, []byte(`"completed"`))
			if n++; n == 1 {
				first <- nil
			}
		case 0x9:
			w.writeFrame(0xA, payload)
		case 0x8:
			if len(payload) >= 2 {
				w.code = int(binary.BigEndian.Uint16(payload))
			}
			w.writeFrame(0x8, payload[:min(2, len(payload))])
			if n == 0 {
				first <- fmt.Errorf("closed (%d) before a message: %s", w.code, payload[min(2, len(payload)):])
			}
			return
		}
	}
}

// end records why a watcher's connection ended before its close frame.
func (w *rawWatcher) end(n int, first chan<- error, err error) {
	w.err = err
	if n == 0 {
		first <- err
	}
}

// writeFrame writes a masked frame (a zero mask: the payload goes as it is).
func (w *rawWatcher) writeFrame(op byte, payload []byte) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	f := append([]byte{0x80 | op, 0x80 | byte(len(payload)), 0, 0, 0, 0}, payload...)
	w.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	w.c.Write(f)
}

// rest sends n GETs of target, conc at a time, each on a connection of its
// own with fresh, else over kept-alive connections.
func rest(n, conc int, fresh bool, target string) error {
	tr := &http.Transport{MaxIdleConnsPerHost: conc, DisableKeepAlives: fresh}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var next atomic.Int64
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				resp, err := c.Get(target)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("GET %s: %s", target, resp.Status)
					}
				}
				if err != nil {
					mu.Lock()
					first = cmpErr(first, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}
