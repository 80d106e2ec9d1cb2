package caddymodule

import (
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// warnEvery is how often, at most, each kind of warning is logged: a burst
// of refusals is one line, with the count of those it stands for.
const warnEvery = 10 * time.Second

// warnings logs what an operator must act on (a zone that is full,
// watchers refused at a limit), each kind at most once per warnEvery.
type warnings struct {
	logger        *zap.Logger
	full, watcher rateLimited
}

// zoneFull warns that uploads pass untracked because the zone is full.
func (w *warnings) zoneFull(zone, protocol string, err error) {
	if n, ok := w.full.allow(time.Now()); ok {
		w.logger.Warn("zone full: uploads pass untracked; raise max_keys or shorten retain",
			zap.String("zone", zone), zap.String("protocol", protocol), zap.Int64("untracked", n), zap.Error(err))
	}
}

// watchersRefused warns that watchers are refused at a limit.
func (w *warnings) watchersRefused(zone, protocol string, err error) {
	if n, ok := w.watcher.allow(time.Now()); ok {
		w.logger.Warn("watchers refused at a limit; raise max_watchers, max_watchers_per_key or max_keys",
			zap.String("zone", zone), zap.String("protocol", protocol), zap.Int64("refused", n), zap.Error(err))
	}
}

// rateLimited lets one event in per warnEvery and counts the events since
// the last one let in.
type rateLimited struct {
	next  atomic.Int64 // unix nanoseconds
	count atomic.Int64
}

// allow counts an event and reports whether to log it now, with the number
// of events it stands for.
func (l *rateLimited) allow(now time.Time) (int64, bool) {
	l.count.Add(1)
	next := l.next.Load()
	if now.UnixNano() < next || !l.next.CompareAndSwap(next, now.Add(warnEvery).UnixNano()) {
		return 0, false
	}
	return l.count.Swap(0), true
}
