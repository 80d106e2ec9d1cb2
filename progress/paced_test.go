package progress

import (
	"math"
	"testing"
	"time"
)

// uploading is a snapshot of upload id with received bytes.
func uploading(id uint64, received int64) Snapshot {
	return Snapshot{Found: true, ID: id, State: Uploading, Total: 1000, Received: received}
}

func TestPacedHoldsBytesUntilTheTickThenWaitsForAStep(t *testing.T) {
	const interval = time.Second
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := &Paced{Step: 10}
	w.Sent(uploading(1, 0), t0)
	tick := nextTick(t0, interval)

	if send, until, bytes := w.Look(uploading(1, 30), t0.Add(time.Millisecond), interval); send || !until.Equal(tick) || bytes != math.MaxInt64 {
		t.Fatalf("bytes before the tick: send %v, until %v, bytes %d; want held until %v", send, until, bytes, tick)
	}
	if send, _, _ := w.Look(uploading(1, 45), tick, interval); !send {
		t.Fatal("at the tick: not sent")
	}
	w.Sent(uploading(1, 45), tick)
	// Past the next tick with nothing new: look again once a step more came.
	later := nextTick(tick, interval)
	if send, until, bytes := w.Look(uploading(1, 50), later, interval); send || !until.IsZero() || bytes != 55 {
		t.Fatalf("past the tick, under a step: send %v, until %v, bytes %d; want to wait for 55 bytes", send, until, bytes)
	}
	if send, _, _ := w.Look(uploading(1, 55), later, interval); !send {
		t.Fatal("a step more past the tick: not sent")
	}
}

func TestPacedSendsAnEndAtOnce(t *testing.T) {
	t0 := time.Now()
	w := &Paced{Step: 10}
	w.Sent(uploading(1, 10), t0)
	done := uploading(1, 10)
	done.State = Completed
	if send, _, _ := w.Look(done, t0.Add(time.Millisecond), time.Hour); !send {
		t.Fatal("completed before the tick: not sent at once")
	}
	if send, _, _ := w.Look(Snapshot{}, t0.Add(time.Millisecond), time.Hour); !send {
		t.Fatal("the record gone before the tick: not sent at once")
	}
}

func TestPacedSendsTheStartOfAnUploadWithItsFirstBytesOnTheNextTick(t *testing.T) {
	const interval = 200 * time.Millisecond
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := &Paced{Step: 10}
	w.Sent(Snapshot{}, t0.Add(-time.Hour)) // not_exist, long ago
	began := t0.Add(30 * time.Millisecond)
	next := began.Truncate(interval).Add(interval)
	if send, until, _ := w.Look(uploading(1, 30), began, interval); send || !until.Equal(next) {
		t.Fatalf("a start past the tick: send %v, until %v; want held to the next tick %v", send, until, next)
	}
	if send, _, _ := w.Look(uploading(1, 40), next, interval); !send {
		t.Fatal("the held start at the next tick: not sent")
	}

	// A start that came before the watcher's tick goes out at that tick.
	w.Sent(Snapshot{}, t0)
	tick := nextTick(t0, interval)
	if send, until, _ := w.Look(uploading(2, 5), t0.Add(time.Millisecond), interval); send || !until.Equal(tick) {
		t.Fatalf("a start before the tick: send %v, until %v; want held to %v", send, until, tick)
	}
	if send, _, _ := w.Look(uploading(2, 5), tick, interval); !send {
		t.Fatal("a start held to the tick: not sent at it")
	}
}

func TestPacedWithoutIntervalSendsAtOnce(t *testing.T) {
	t0 := time.Now()
	for _, interval := range []time.Duration{0, -1} {
		w := &Paced{Step: 10}
		w.Sent(uploading(1, 0), t0)
		if send, _, bytes := w.Look(uploading(1, 5), t0, interval); send || bytes != 10 {
			t.Fatalf("interval %v, under a step: send %v, bytes %d", interval, send, bytes)
		}
		if send, _, _ := w.Look(uploading(1, 10), t0, interval); !send {
			t.Fatalf("interval %v, a step: not sent at once", interval)
		}
	}
}

func TestPacedFollowsTheKeysPaceAsItChanges(t *testing.T) {
	const few, many = 250 * time.Millisecond, 4 * time.Second
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := &Paced{Step: 10}
	w.Sent(uploading(1, 0), t0)
	at := t0.Add(time.Second)
	if send, until, _ := w.Look(uploading(1, 100), at, many); send || !until.Equal(nextTick(t0, many)) {
		t.Fatalf("a second after the last update, paced at %v: send %v, until %v; want held to %v", many, send, until, nextTick(t0, many))
	}
	if send, _, _ := w.Look(uploading(1, 100), at, few); !send {
		t.Fatalf("a second after the last update, paced at %v: not sent", few)
	}
}
