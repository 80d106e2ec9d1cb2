package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/schollz/progressbar/v3"
)

// bar draws a live progress bar on a terminal with
// github.com/schollz/progressbar: the percentage and the bar, redrawn in
// place at each update (the server paces them), then the status, the
// bytes, the rate and the time left as the watch estimates them from the
// server's counts. The bar's own rate would count every byte an upload
// watched midway already had as sent in an instant. The bar fills at the
// upload's end only: every byte in is not yet the origin's answer.
//
//	50% |███████████████               | uploading 4.0 MiB/8.0 MiB, 5.0 MiB/s, eta 1s
type bar struct {
	w     io.Writer
	width int // of the bar itself
	b     *progressbar.ProgressBar
	total int64
	said  bool // "waiting for the upload…" was written
}

// newBar is a bar for a terminal columns wide (0: unknown), leaving room
// for the detail: up to 30 cells, at least 10.
func newBar(w io.Writer, columns int) *bar {
	width := 30
	if columns > 0 {
		width = min(30, max(10, columns-barDetailRoom))
	}
	return &bar{w: w, width: width}
}

// barDetailRoom is the room the percentage and the longest detail take:
// " 99% |…| uploading 1023.9 MiB/1023.9 MiB, 1023.9 MiB/s, eta 10h59m59s".
const barDetailRoom = 72

func (b *bar) show(f frame) {
	if f.Status == StatusWaiting {
		if !b.said && b.b == nil {
			fmt.Fprintln(b.w, "waiting for the upload…")
			b.said = true
		}
		return
	}
	total := f.Total
	if total <= 0 {
		total = -1 // the bar's spinner: a length it does not know
	}
	if b.b == nil {
		b.b = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(b.w),
			progressbar.OptionSetWidth(b.width),
			progressbar.OptionShowDescriptionAtLineEnd(),
			progressbar.OptionSetPredictTime(false), // the detail has the watch's
			progressbar.OptionSetElapsedTime(false),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(b.w) }),
		)
		b.total = total
	}
	if total != b.total {
		b.b.ChangeMax64(total)
		b.total = total
	}
	switch {
	case f.Status == StatusCompleted && b.total > 0:
		b.b.Describe(barDetail(f))
		b.b.Finish()
		return
	case b.total < 0:
		b.b.Set64(f.Uploaded)
	default:
		b.b.Set64(min(f.Uploaded, b.total-1))
	}
	b.b.Describe(barDetail(f)) // draws the bar as it now stands
}

// barDetail is what follows the bar: the status, the bytes, the rate
// and the time left, as far as they are known.
func barDetail(f frame) string {
	var s strings.Builder
	fmt.Fprintf(&s, "%s %s", f.Status, humanize.IBytes(uint64(max(f.Uploaded, 0))))
	if f.Total >= 0 {
		fmt.Fprintf(&s, "/%s", humanize.IBytes(uint64(f.Total)))
	}
	if f.hasRate && !f.Status.final() {
		fmt.Fprintf(&s, ", %s/s", humanize.IBytes(uint64(max(f.rate, 0))))
	}
	if f.hasETA {
		fmt.Fprintf(&s, ", eta %s", time.Duration(f.eta)*time.Second)
	}
	return s.String()
}

func (b *bar) end(last Update) {
	if b.b != nil && !b.b.IsFinished() {
		b.b.Exit() // keeps the bar as it stands, and ends its line
	}
}
