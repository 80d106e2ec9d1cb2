// A slow uplink for the tests that drive a browser: a TCP relay that
// passes what the browser sends at a set pace.

package test

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"
)

// startPacedLink is a TCP relay to addr (a URL's host:port) that passes
// what clients send at most rate bytes a second per connection, and the
// answers at full speed. It returns its own base URL.
func startPacedLink(t *testing.T, site string, rate int) string {
	t.Helper()
	u, err := url.Parse(site)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
		wg    sync.WaitGroup
	)
	track := func(c net.Conn, on bool) bool {
		mu.Lock()
		defer mu.Unlock()
		if on && conns == nil {
			return false // closed
		}
		if on {
			conns[c] = true
		} else if conns != nil {
			delete(conns, c)
		}
		return true
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", u.Host)
			if err != nil {
				c.Close()
				continue
			}
			if !track(c, true) || !track(up, true) {
				c.Close()
				up.Close()
				return
			}
			wg.Add(2)
			go func() {
				defer wg.Done()
				pacedCopy(up, c, rate)
				up.(*net.TCPConn).CloseWrite()
			}()
			go func() {
				defer wg.Done()
				io.Copy(c, up)
				c.Close()
				up.Close()
				track(c, false)
				track(up, false)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		conns = nil
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + ln.Addr().String()
}

// pacedCopy copies src to dst at most rate bytes a second. A connection
// kept idle banks no bytes: the pace starts again with each burst.
func pacedCopy(dst io.Writer, src io.Reader, rate int) {
	buf := make([]byte, 16<<10)
	start, sent := time.Now(), 0
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if now := time.Now(); now.Sub(start.Add(time.Duration(sent)*time.Second/time.Duration(rate))) > 50*time.Millisecond {
				start, sent = now, 0
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			sent += n
			// Pacing, not synchronisation: the link is slow on purpose.
			time.Sleep(time.Until(start.Add(time.Duration(sent) * time.Second / time.Duration(rate))))
		}
		if err != nil {
			return
		}
	}
}
