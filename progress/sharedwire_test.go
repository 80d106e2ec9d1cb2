package progress

import (
	"testing"
	"time"
)

func TestEntryOfADeadNode(t *testing.T) {
	now := time.Now()
	e := entry{Node: "a", ID: 1, Key: "/k", Total: 10, Received: 4, State: Uploading,
		Started: now.Add(-time.Minute).UnixMilli(), Lease: now.Add(-time.Second).UnixMilli()}
	s := merge([]candidate{entryCandidate(&e, now)}, now, time.Minute)
	if s.State != Failed || s.Error != NodeGone || s.Received != 4 || !s.Finished.Equal(time.UnixMilli(e.Lease)) {
		t.Fatalf("a live entry past its lease shows %+v", s)
	}
	// Past retain after the lease ran out, it is gone.
	if s := merge([]candidate{entryCandidate(&e, now.Add(2*time.Minute))}, now.Add(2*time.Minute), time.Minute); s.Found {
		t.Fatalf("an entry of a dead node past retain shows %+v", s)
	}
}
