package progress

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"sync"
	"time"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress/multipart"
)

// entry is one node's state of one record, as it travels through a Store.
// Times are Unix milliseconds; zero is unset.
type entry struct {
	Node  string `json:"n"`
	Owner string `json:"o"` // hex of the Owner: an HMAC, never a credential
	Key   string `json:"k"`
	// Seq grows with every write of the node, so that a reader keeps the
	// newest of what it hears and what it reads.
	Seq uint64 `json:"q"`
	// Lease is when the record, live, stops being true unless its node
	// writes it again; 0 once it has finished.
	Lease int64 `json:"l,omitempty"`

	ID         uint64              `json:"id"`
	Total      int64               `json:"t"`
	Received   int64               `json:"r"`
	State      State               `json:"s"`
	Error      string              `json:"e,omitempty"`
	HTTPStatus int                 `json:"h,omitempty"`
	Started    int64               `json:"b"`
	Finished   int64               `json:"f,omitempty"`
	Files      *multipart.Progress `json:"fl,omitempty"`
	Version    uint64              `json:"v,omitempty"`
	Detail     *wireDetail         `json:"d,omitempty"`
	Session    *wireSession        `json:"ss,omitempty"`
}

// wireSession is what a node knows of a session: its own streams and
// acknowledgements, which readers merge with the other nodes' (see merge).
type wireSession struct {
	SessionState
	OffsetAck int64         `json:"oa,omitempty"`
	ChunkAck  int64         `json:"ca,omitempty"`
	PartAck   map[int]int64 `json:"pa,omitempty"`
}

// wireDetail is a protocol's detail, encoded by its DetailCodec.
type wireDetail struct {
	Codec string          `json:"c"`
	Data  json.RawMessage `json:"x"`
}

// DetailCodec lets a protocol's record detail (Record.SetDetail) travel
// through a shared store. A detail no codec takes stays on its node.
type DetailCodec struct {
	// Name tells the codec's entries apart; one per protocol.
	Name string
	// Encode returns v as JSON, false when v is not the codec's.
	Encode func(v any) (json.RawMessage, bool)
	// Decode turns what Encode made back into the detail.
	Decode func(json.RawMessage) (any, error)
}

var detailCodecs sync.Map // name → DetailCodec

// RegisterDetailCodec makes c encode and decode details; protocols
// register theirs when they are loaded (init).
func RegisterDetailCodec(c DetailCodec) { detailCodecs.Store(c.Name, c) }

func encodeDetail(v any) *wireDetail {
	if v == nil {
		return nil
	}
	var out *wireDetail
	detailCodecs.Range(func(_, c any) bool {
		dc := c.(DetailCodec)
		if b, ok := dc.Encode(v); ok {
			out = &wireDetail{Codec: dc.Name, Data: b}
			return false
		}
		return true
	})
	return out
}

func (d *wireDetail) decode() any {
	if d == nil {
		return nil
	}
	c, ok := detailCodecs.Load(d.Codec)
	if !ok {
		return nil
	}
	v, err := c.(DetailCodec).Decode(d.Data)
	if err != nil {
		return nil
	}
	return v
}

func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMilli(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// entryOf is what rec shows now, as node's entry, and the snapshot it was
// made from; its detail is left to encode for entries that are written.
func entryOf(node string, seq uint64, rec *Record, lease time.Time) (entry, Snapshot) {
	snap, sh := rec.sharedSnapshot()
	e := entry{
		Node:       node,
		Owner:      hex.EncodeToString(rec.owner[:]),
		Key:        rec.key,
		Seq:        seq,
		ID:         snap.ID,
		Total:      snap.Total,
		Received:   snap.Received,
		State:      snap.State,
		Error:      snap.Error,
		HTTPStatus: snap.HTTPStatus,
		Started:    unixMilli(snap.Started),
		Finished:   unixMilli(snap.Finished),
		Files:      snap.Files,
		Version:    snap.Version,
	}
	if snap.State == Uploading {
		e.Lease = unixMilli(lease)
	}
	if snap.Session != nil {
		e.Session = &wireSession{SessionState: *snap.Session, OffsetAck: sh.offsetAck, ChunkAck: sh.chunkAck, PartAck: sh.partAck}
	}
	return e, snap
}

// shares is what a session's acknowledged bytes are made of.
type shares struct {
	offsetAck, chunkAck int64
	partAck             map[int]int64
}

// sharedSnapshot is Snapshot with what the session's acknowledgements are
// made of, taken together.
func (r *Record) sharedSnapshot() (Snapshot, shares) {
	snap := r.Snapshot()
	var sh shares
	if s := r.sess; s != nil {
		s.mu.Lock()
		sh = shares{offsetAck: s.offsetAck, chunkAck: s.chunkAck, partAck: maps.Clone(s.partAck)}
		s.mu.Unlock()
	}
	return snap, sh
}

func decodeEntry(data []byte) (entry, Owner, error) {
	var e entry
	var o Owner
	if err := json.Unmarshal(data, &e); err != nil {
		return e, o, err
	}
	b, err := hex.DecodeString(e.Owner)
	if err != nil || len(b) != len(o) {
		return e, o, errors.New("progress: entry with a malformed owner")
	}
	copy(o[:], b)
	if !e.sound() {
		return e, o, errors.New("progress: entry out of bounds")
	}
	return e, o, nil
}

// maxWireCount bounds every count an entry may carry (8 PiB), so that
// merging the entries of many nodes cannot overflow.
const maxWireCount = 1 << 53

// sound reports whether an entry says nothing a node could not have
// written: a known state, no count negative or past maxWireCount.
func (e *entry) sound() bool {
	ok := func(n int64) bool { return n >= 0 && n <= maxWireCount }
	if e.State > Expired || !ok(e.Received) || !ok(e.Total+1) {
		return false
	}
	if s := e.Session; s != nil {
		if !ok(s.OffsetAck) || !ok(s.ChunkAck) || !ok(s.Acknowledged) || len(s.PartAck) > 100_000 || len(s.InFlight) > 100_000 {
			return false
		}
		for _, n := range s.PartAck {
			if !ok(n) {
				return false
			}
		}
		for _, st := range s.InFlight {
			if !ok(st.Received) || !ok(st.From+1) {
				return false
			}
		}
	}
	return true
}

// snapshot is what the entry shows at now: a live record whose lease has
// passed ended when it passed, its node gone.
func (e *entry) snapshot(now time.Time) Snapshot {
	s := Snapshot{
		Found:      true,
		ID:         e.ID,
		Key:        e.Key,
		Total:      e.Total,
		Received:   e.Received,
		State:      e.State,
		Error:      e.Error,
		HTTPStatus: e.HTTPStatus,
		Started:    fromMilli(e.Started),
		Finished:   fromMilli(e.Finished),
		Files:      e.Files,
		Version:    e.Version,
		Detail:     e.Detail.decode(),
	}
	if e.Session != nil {
		ss := e.Session.SessionState
		s.Session = &ss
	}
	if e.gone(now) {
		s.State, s.Error, s.Finished = Failed, NodeGone, fromMilli(e.Lease)
		s.HTTPStatus = 0
		if s.Session != nil {
			s.Session.InFlight = nil
		}
	}
	s.streamed = s.Received
	return s
}

// gone reports whether the entry is live and its node has not renewed it
// within its lease.
func (e *entry) gone(now time.Time) bool {
	return e.State == Uploading && e.Lease != 0 && now.UnixMilli() > e.Lease
}
