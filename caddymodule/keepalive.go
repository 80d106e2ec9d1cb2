package caddymodule

import (
	"sync"
	"time"
)

// pingWriteWait is how long a ping may wait for room in a watcher's
// connection: a client whose buffers are full takes no bytes and answers
// no ping, and the pinger does not wait on it.
const pingWriteWait = 100 * time.Millisecond

// pinger keeps a handler's WebSocket watchers alive from one goroutine
// and one timer, rather than a goroutine and a timer each: every
// ping_interval each is pinged, and one that has not answered within
// watcher_timeout is dropped (no_pong). The goroutine runs while there are
// watchers: it ends with the last.
type pinger struct {
	every, timeout time.Duration

	mu    sync.Mutex
	conns map[*wsConn]struct{}
	stop  chan struct{} // of the running goroutine; nil when none runs
}

// add starts keeping c alive.
func (k *pinger) add(c *wsConn) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.conns == nil {
		k.conns = map[*wsConn]struct{}{}
	}
	c.lastPing = time.Now()
	k.conns[c] = struct{}{}
	if k.stop == nil {
		k.stop = make(chan struct{})
		go k.run(k.stop)
	}
}

// remove stops keeping c alive.
func (k *pinger) remove(c *wsConn) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.conns, c)
	if len(k.conns) == 0 && k.stop != nil {
		close(k.stop)
		k.stop = nil
	}
}

// run looks at every watcher a few times per watcher_timeout (and per
// ping_interval, if shorter), so that a ping goes out and a silence is
// noticed within a quarter of either of being due.
func (k *pinger) run(stop <-chan struct{}) {
	t := time.NewTicker(max(min(k.every, k.timeout)/4, 10*time.Millisecond))
	defer t.Stop()
	var batch []*wsConn
	for {
		var now time.Time
		select {
		case <-stop:
			return
		case now = <-t.C:
		}
		k.mu.Lock()
		batch = batch[:0]
		for c := range k.conns {
			batch = append(batch, c)
		}
		k.mu.Unlock()
		for _, c := range batch {
			k.look(c, now)
		}
		clear(batch)
	}
}

// look pings c when it is due, and drops it when its last ping went
// unanswered for watcher_timeout. Only the pinger's goroutine uses c's
// ping fields.
func (k *pinger) look(c *wsConn, now time.Time) {
	if !c.pingAt.IsZero() {
		if !c.answered(c.pongsAt) {
			if now.Sub(c.pingAt) >= k.timeout {
				c.pingAt = time.Time{}
				c.noPong()
			}
			return
		}
		c.pingAt = time.Time{}
	}
	if now.Sub(c.lastPing) < k.every {
		return
	}
	c.lastPing = now
	n, err := c.ping()
	if err == errWriteBusy {
		return // the watcher's own write is under way; next time
	}
	if err != nil {
		c.noPong()
		return
	}
	c.pingAt, c.pongsAt = now, n
}
