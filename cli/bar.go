package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// bar draws a live progress bar on a terminal with
// github.com/schollz/progressbar: bytes, percentage, rate and time left,
// redrawn in place. Its rate is the bar's own estimate from the server's
// counts as they arrive.
type bar struct {
	w     io.Writer
	b     *progressbar.ProgressBar
	total int64
	said  Status // the status in the description
}

func newBar(w io.Writer) *bar { return &bar{w: w} }

// barThrottle bounds how often the bar is redrawn.
const barThrottle = 100 * time.Millisecond

func (b *bar) show(f frame) {
	if f.Status == StatusWaiting {
		if b.said == "" {
			fmt.Fprintln(b.w, "waiting for the upload…")
			b.said = StatusWaiting
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
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(barThrottle),
			progressbar.OptionSetDescription(string(f.Status)),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(b.w) }),
		)
		b.total, b.said = total, f.Status
	}
	if total != b.total {
		b.b.ChangeMax64(total)
		b.total = total
	}
	if f.Status != b.said {
		b.b.Describe(string(f.Status))
		b.said = f.Status
	}
	if f.Status == StatusCompleted && b.total > 0 {
		b.b.Finish()
		return
	}
	if b.total < 0 || f.Uploaded <= b.total {
		b.b.Set64(f.Uploaded)
	}
}

func (b *bar) end(last Update) {
	if b.b != nil && !b.b.IsFinished() {
		b.b.Exit()
	}
	if last.Status == StatusCompleted {
		fmt.Fprintf(b.w, "completed: %d bytes\n", last.Uploaded)
	}
}
