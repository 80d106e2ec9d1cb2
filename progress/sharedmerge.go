package progress

import (
	"cmp"
	"slices"
	"time"
)

// candidate is one node's view of a key: this node's record, or another
// node's entry.
type candidate struct {
	snap  Snapshot
	sh    shares
	local bool
}

func entryCandidate(e *entry, now time.Time) candidate {
	c := candidate{snap: e.snapshot(now)}
	if s := e.Session; s != nil {
		c.sh = shares{offsetAck: s.OffsetAck, chunkAck: s.ChunkAck, partAck: s.PartAck}
	}
	return c
}

// merge is what a key shows given every node's view of it: the newest
// upload of the key, and for a session the union of what every node saw
// of it. Finished records past retain are gone, as in memory.
//
// A session is shared by the nodes its requests went to. Each node writes
// what it saw itself: its streams in flight, the offset the origin last
// answered it (tus), the parts the origin accepted through it and the
// chunks it carried. The session then shows the highest offset, the union
// of the accepted parts, the sum of the chunks, and every node's streams
// in flight, each counted as the session's own rule says (see session).
// It ends when one node saw its origin end it (completed, aborted,
// failed); it stays uploading while any node holds it live; only when none
// does, it shows the last ending (expired, or its node gone).
func merge(cands []candidate, now time.Time, retain time.Duration) Snapshot {
	cands = slices.DeleteFunc(cands, func(c candidate) bool {
		s := c.snap
		return !s.Found || s.State != Uploading && !s.Finished.IsZero() && now.Sub(s.Finished) > retain
	})
	if len(cands) == 0 {
		return Snapshot{}
	}
	// The newest upload of the key; this node's own wins a tie.
	best := cands[0]
	for _, c := range cands[1:] {
		if c.snap.Started.After(best.snap.Started) {
			best = c
		}
	}
	if best.snap.Session == nil {
		return best.snap
	}
	sessions := slices.DeleteFunc(slices.Clone(cands), func(c candidate) bool { return c.snap.Session == nil })
	if len(sessions) == 1 {
		return best.snap
	}
	return mergeSessions(sessions)
}

// mergeSessions merges the views of one session (see merge).
func mergeSessions(cands []candidate) Snapshot {
	slices.SortStableFunc(cands, func(a, b candidate) int { return a.snap.Started.Compare(b.snap.Started) })
	first := cands[0].snap
	out := Snapshot{Found: true, ID: first.ID, Key: first.Key, Started: first.Started, Total: -1, State: Uploading}
	ss := &SessionState{}
	var offset, chunks int64
	parts := map[int]int64{}
	var updated time.Time
	var decisive, lastEnd *Snapshot
	live := false
	for i := range cands {
		c := &cands[i]
		s, cs := &c.snap, c.snap.Session
		offset = max(offset, c.sh.offsetAck)
		chunks += c.sh.chunkAck
		for p, n := range c.sh.partAck {
			parts[p] = max(parts[p], n)
		}
		ss.Parts = max(ss.Parts, cs.Parts)
		ss.Streams += cs.Streams
		ss.Accepted += cs.Accepted
		ss.Files += cs.Files
		ss.InFlight = append(ss.InFlight, cs.InFlight...)
		out.Version += s.Version
		if s.Total >= 0 && (out.Total < 0 || !cs.Updated.Before(updated)) {
			out.Total = s.Total
		}
		if !cs.Updated.Before(updated) {
			updated = cs.Updated
			ss.Error = cs.Error
			if !cs.Expires.IsZero() {
				ss.Expires = cs.Expires
			}
			if out.Detail == nil || s.Detail != nil {
				out.Detail = cmp.Or(s.Detail, out.Detail)
			}
		}
		if cs.LastByte.After(ss.LastByte) {
			ss.LastByte = cs.LastByte
		}
		switch {
		case s.State == Uploading:
			live = true
		case s.State == Completed || s.State == Aborted || s.State == Failed && s.Error != NodeGone:
			if decisive == nil || s.Finished.After(decisive.Finished) {
				decisive = s
			}
		default:
			if lastEnd == nil || s.Finished.After(lastEnd.Finished) {
				lastEnd = s
			}
		}
	}
	ss.Updated = updated
	acked := offset + chunks
	for _, n := range parts {
		acked += n
	}
	ss.Acknowledged = acked
	ss.PartsDone = len(parts)
	ss.NextPart = nextPart(ss.Parts, parts)
	got := acked
	for _, st := range ss.InFlight {
		switch {
		case st.From >= 0:
			got = max(got, st.From+st.Received)
		case st.Part > 0:
			got += max(0, st.Received-parts[st.Part])
		default:
			got += st.Received
		}
	}
	out.Received = got
	out.Session = ss
	end := decisive
	if end == nil && !live {
		end = lastEnd
	}
	if end != nil {
		out.State, out.Error, out.HTTPStatus, out.Finished = end.State, end.Error, end.HTTPStatus, end.Finished
		out.Received = max(acked, end.Received)
		ss.InFlight = nil
	}
	if len(ss.InFlight) == 0 {
		ss.InFlight = nil
	}
	out.streamed = out.Received
	return out
}

// nextPart is the lowest numbered part not accepted, 0 when parts are not
// numbered or all are in.
func nextPart(n int, accepted map[int]int64) int {
	for p := 1; p <= n; p++ {
		if _, ok := accepted[p]; !ok {
			return p
		}
	}
	return 0
}
