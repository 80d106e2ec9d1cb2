package progress

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
)

// Memory ceilings the README documents: a finished record costs under
// 1 KiB, an upload in flight (record and counting body) under 2 KiB.
const (
	finishedRecordCeiling = 1024
	inFlightCeiling       = 2048
)

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestMemoryPerRecord measures the heap that 100,000 finished records and
// 10,000 uploads in flight hold, per record, with realistic keys and owners.
func TestMemoryPerRecord(t *testing.T) {
	const finished, inFlight = 100_000, 10_000
	scale := 1
	if testing.Short() {
		scale = 10 // a tenth of the records: the figure per record is the same
	}
	tr := newTestTracker(t, Options{MaxKeys: 200_000})
	owners := make([]Owner, 100)
	for i := range owners {
		owners[i] = tr.Owner(fmt.Sprintf("api-key-%04d", i))
	}

	base := heapInUse()
	for i := range finished / scale {
		rec, err := tr.Begin(owners[i%len(owners)], fmt.Sprintf("/files/user-%03d/upload-%06d.bin", i%1000, i), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		tr.Finish(rec, Judge(Event{Status: 201}))
	}
	afterFinished := heapInUse()

	bodies := make([]io.ReadCloser, 0, inFlight/scale)
	for i := range inFlight / scale {
		rec, err := tr.Begin(owners[i%len(owners)], fmt.Sprintf("/files/user-%03d/live-%06d.bin", i%1000, i), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, NewBody(io.NopCloser(strings.NewReader("")), rec))
	}
	afterInFlight := heapInUse()

	perFinished := float64(afterFinished-base) / float64(finished/scale)
	perInFlight := float64(afterInFlight-afterFinished) / float64(inFlight/scale)
	t.Logf("%d finished records: %.0f bytes each; %d uploads in flight: %.0f bytes each; total %.1f MiB",
		finished/scale, perFinished, inFlight/scale, perInFlight, float64(afterInFlight-base)/(1<<20))
	if perFinished > finishedRecordCeiling {
		t.Errorf("a finished record holds %.0f bytes, over the %d documented", perFinished, finishedRecordCeiling)
	}
	if perInFlight > inFlightCeiling {
		t.Errorf("an upload in flight holds %.0f bytes, over the %d documented", perInFlight, inFlightCeiling)
	}
	runtime.KeepAlive(bodies)
	runtime.KeepAlive(tr)
}
