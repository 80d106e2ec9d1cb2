package cli

import (
	"math"
	"time"
)

// rateWindow is how far back the rate looks: long enough to smooth the
// steps of a server's updates, short enough to follow a change of pace.
const rateWindow = 5 * time.Second

// rater estimates the upload's rate from the server's counts and when
// they came.
type rater struct {
	samples []sample
}

type sample struct {
	at time.Time
	n  int64
}

// add notes the count n at time at.
func (r *rater) add(at time.Time, n int64) {
	if len(r.samples) > 0 && n < r.samples[len(r.samples)-1].n {
		r.samples = r.samples[:0] // the count went back: start again
	}
	r.samples = append(r.samples, sample{at, n})
	// Keep one sample older than the window, so that the window is
	// covered whole.
	for len(r.samples) > 2 && at.Sub(r.samples[1].at) >= rateWindow {
		r.samples = r.samples[1:]
	}
}

// rate is the bytes per second over the window; ok is false until two
// counts apart in time are known.
func (r *rater) rate() (bps float64, ok bool) {
	if len(r.samples) < 2 {
		return 0, false
	}
	first, last := r.samples[0], r.samples[len(r.samples)-1]
	dt := last.at.Sub(first.at).Seconds()
	if dt <= 0 {
		return 0, false
	}
	return float64(last.n-first.n) / dt, true
}

// eta is the seconds left at the current rate, known when the total
// and a rate above zero are.
func (r *rater) eta(uploaded, total int64) (int64, bool) {
	bps, ok := r.rate()
	if !ok || bps <= 0 || total < 0 || uploaded > total {
		return 0, false
	}
	return int64(math.Ceil(float64(total-uploaded) / bps)), true
}
