package cli

import (
	"io"
	"time"
)

// frame is an update as it is shown: with the rate and the time left,
// when known.
type frame struct {
	Update
	rate    float64 // bytes per second
	hasRate bool
	eta     int64 // seconds
	hasETA  bool
}

// renderer shows a watch: the bar on a terminal, a line per update
// otherwise, or JSON lines.
type renderer interface {
	// show shows one update.
	show(f frame)
	// end closes the display once the watch is over; last is the last
	// update shown (the upload's end when it ended).
	end(last Update)
}

// view turns updates into frames for a renderer, estimating the rate
// from the server's counts.
type view struct {
	r     renderer
	rater rater
	now   func() time.Time
}

// newRenderer picks the renderer: JSON lines with asJSON, the bar on a
// terminal columns wide (0: unknown), lines otherwise.
func newRenderer(w io.Writer, asJSON, tty bool, columns int) renderer {
	switch {
	case asJSON:
		return newJSONLines(w)
	case tty:
		return newBar(w, columns)
	}
	return newLines(w)
}

func (v *view) show(u Update) {
	f := frame{Update: u}
	if u.Status != StatusWaiting {
		v.rater.add(v.now(), u.Uploaded)
		f.rate, f.hasRate = v.rater.rate()
		if !u.Status.final() {
			f.eta, f.hasETA = v.rater.eta(u.Uploaded, u.Total)
		}
	}
	v.r.show(f)
}
