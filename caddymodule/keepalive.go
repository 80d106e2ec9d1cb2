package caddymodule

import (
	"sync"
	"time"
)

// pingWriteWait is how long a ping may wait for room in a watcher's
// connection: a client whose buffers are full takes no bytes and answers
// no ping, and the pinger does not wait on it.
const pingWriteWait = 100 * time.Millisecond

// pinger keeps a handler's watchers alive from one goroutine and one
// timer, rather than a goroutine and a timer each: every ping_interval
// each WebSocket watcher is pinged, and one that has not answered within
// watcher_timeout is dropped (no_pong); each event stream gets its
// heartbeat comment. The goroutine runs while there are watchers: it ends
// with the last.
type pinger struct {
	every, timeout time.Duration

	mu      sync.Mutex
	conns   map[*wsConn]struct{}
	streams map[*eventStream]struct{}
	stop    chan struct{} // of the running goroutine; nil when none runs
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
	k.startLocked()
}

// remove stops keeping c alive.
func (k *pinger) remove(c *wsConn) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.conns, c)
	k.stopLocked()
}

// addStream starts keeping s alive.
func (k *pinger) addStream(s *eventStream) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.streams == nil {
		k.streams = map[*eventStream]struct{}{}
	}
	s.lastBeat = time.Now()
	k.streams[s] = struct{}{}
	k.startLocked()
}

// removeStream stops keeping s alive. A heartbeat may be under way: s.close
// waits for it.
func (k *pinger) removeStream(s *eventStream) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.streams, s)
	k.stopLocked()
}

func (k *pinger) startLocked() {
	if k.stop == nil {
		k.stop = make(chan struct{})
		go k.run(k.stop)
	}
}

func (k *pinger) stopLocked() {
	if len(k.conns) == 0 && len(k.streams) == 0 && k.stop != nil {
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
	var streams []*eventStream
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
		streams = streams[:0]
		for s := range k.streams {
			streams = append(streams, s)
		}
		k.mu.Unlock()
		for _, c := range batch {
			k.look(c, now)
		}
		for _, s := range streams {
			k.beat(s, now)
		}
		clear(batch)
		clear(streams)
	}
}

// beat writes s's heartbeat when it is due. The write may wait up to
// watcher_timeout for a watcher that does not read, so it goes on in a
// goroutine that lives as long as the write, holding the stream's lock;
// a stream whose own write is under way is looked at again next time.
// Only the pinger's goroutine uses s.lastBeat.
func (k *pinger) beat(s *eventStream, now time.Time) {
	if now.Sub(s.lastBeat) < k.every || !s.mu.TryLock() {
		return
	}
	if s.err != nil {
		s.mu.Unlock() // ended
		return
	}
	s.lastBeat = now
	go s.heartbeat()
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
