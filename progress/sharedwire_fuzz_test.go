package progress

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzEntry feeds what another node could have written (or anything a
// store returns) to the decoding and merging of entries: never a panic,
// and what is taken never makes a merged record show a negative count or
// a state that is none of the states.
func FuzzEntry(f *testing.F) {
	now := time.UnixMilli(1_800_000_000_000)
	seed := entry{Node: "a", Owner: "00", Key: "/k", Seq: 1, Lease: now.UnixMilli() - 1, ID: 7, Total: 10, Received: 4, State: Uploading,
		Started: now.UnixMilli() - 1000, Session: &wireSession{SessionState: SessionState{InFlight: []StreamState{{From: 2, Received: 3}}}, OffsetAck: 2, PartAck: map[int]int64{1: 5}}}
	b, _ := json.Marshal(seed)
	f.Add(b)
	f.Add([]byte(`{"n":"b","o":"` + string(make([]byte, 0)) + `","k":"/k","s":3,"f":1}`))
	f.Add([]byte(`{"n":"b","o":"0000000000000000000000000000000000000000000000000000000000000000","k":"/k","s":1,"l":1,"ss":{"InFlight":[{"Part":1,"From":-1,"Received":-5}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, _, err := decodeEntry(data)
		if err != nil {
			return
		}
		local := candidate{snap: Snapshot{Found: true, ID: 1, Key: e.Key, Total: -1, State: Uploading, Started: now, Session: &SessionState{}}, local: true}
		for _, cands := range [][]candidate{{entryCandidate(&e, now)}, {local, entryCandidate(&e, now)}} {
			s := merge(cands, now, time.Minute)
			if s.State > Expired || s.Received < 0 || s.Session != nil && s.Session.Acknowledged < 0 {
				t.Fatalf("merged %+v from %s", s, data)
			}
		}
	})
}
