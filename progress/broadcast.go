package progress

import "sync/atomic"

// broadcast wakes any number of waiters without a lock and without ever
// blocking the waker. The channel is made by the first waiter that needs it,
// so a broadcast nobody waits on costs no allocation.
type broadcast struct {
	p atomic.Pointer[chan struct{}]
}

// wait returns a channel that is closed at the next wake. Take it before
// checking the condition, then wait on it: a wake that happens in between
// closes this very channel, so none is lost.
func (b *broadcast) wait() <-chan struct{} {
	for {
		if p := b.p.Load(); p != nil {
			return *p
		}
		ch := make(chan struct{})
		if b.p.CompareAndSwap(nil, &ch) {
			return ch
		}
	}
}

// wake releases everyone waiting on the current channel.
func (b *broadcast) wake() {
	if p := b.p.Swap(nil); p != nil {
		close(*p)
	}
}
