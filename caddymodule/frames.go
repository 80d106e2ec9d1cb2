package caddymodule

import (
	"encoding/json"
	"sync"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// frameCacheSize bounds the messages a handler keeps for sharing; past it
// the cache starts over.
const frameCacheSize = 1024

// frameCache shares rendered messages among the watchers of a key: the
// watchers of a key wake on the same ticks and send the same state, which
// is rendered, encoded and framed once for all of them: as a WebSocket
// text frame, or as an event's data lines for event streams. A snapshot with
// parts of its own (files, a protocol's detail, a session) is rendered
// for each watcher: they are not in the key.
type frameCache struct {
	mu sync.RWMutex // the watchers of a key read at once
	m  map[frameKey][]byte
}

// frameKey is everything of a plain snapshot that a protocol renders.
type frameKey struct {
	p                 *protocol
	form              frameForm
	found             bool
	id, version       uint64
	key, err          string
	total, received   int64
	state             progress.State
	httpStatus        int
	started, finished int64
	unavailable       bool
}

// frameForm is how a message is sent.
type frameForm uint8

const (
	// formText: a whole WebSocket text frame.
	formText frameForm = iota
	// formEventData: an event's `data:` lines and the empty line that
	// ends it (eventData).
	formEventData
)

// text is the message of snap, rendered by p, as a whole text frame. The
// frame is shared: it must not be changed.
func (fc *frameCache) text(p *protocol, snap progress.Snapshot) ([]byte, error) {
	return fc.message(p, snap, formText)
}

// eventData is the message of snap, rendered by p, as an event's data
// lines. They are shared: they must not be changed.
func (fc *frameCache) eventData(p *protocol, snap progress.Snapshot) ([]byte, error) {
	return fc.message(p, snap, formEventData)
}

func (fc *frameCache) message(p *protocol, snap progress.Snapshot, form frameForm) ([]byte, error) {
	if snap.Files != nil || snap.Detail != nil || snap.Session != nil {
		return renderFrame(p, snap, form)
	}
	k := frameKey{p: p, form: form, found: snap.Found, id: snap.ID, version: snap.Version, key: snap.Key, err: snap.Error,
		total: snap.Total, received: snap.Received, state: snap.State, httpStatus: snap.HTTPStatus,
		started: snap.Started.UnixNano(), finished: snap.Finished.UnixNano(), unavailable: snap.Unavailable}
	fc.mu.RLock()
	b, ok := fc.m[k]
	fc.mu.RUnlock()
	if ok {
		return b, nil
	}
	b, err := renderFrame(p, snap, form)
	if err != nil {
		return nil, err
	}
	fc.mu.Lock()
	if fc.m == nil || len(fc.m) >= frameCacheSize {
		fc.m = make(map[frameKey][]byte)
	}
	fc.m[k] = b
	fc.mu.Unlock()
	return b, nil
}

// renderFrame is the message of snap, rendered by p, in form.
func renderFrame(p *protocol, snap progress.Snapshot, form frameForm) ([]byte, error) {
	b, err := json.Marshal(p.Render(snap))
	if err != nil {
		return nil, err
	}
	if form == formEventData {
		return eventData(b), nil
	}
	return textFrame(b), nil
}
