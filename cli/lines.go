package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// lines writes one line per update, for logs and pipes:
//
//	uploading 1048576/4194304 bytes 25.0% 1.0 MiB/s eta 3s
type lines struct{ w io.Writer }

func newLines(w io.Writer) *lines { return &lines{w} }

func (l *lines) show(f frame) { fmt.Fprintln(l.w, describe(f)) }

func (l *lines) end(Update) {}

// describe is a frame in words: the status, the counts, the percentage,
// the rate and the time left, as far as they are known.
func describe(f frame) string {
	if f.Status == StatusWaiting {
		return "waiting for the upload"
	}
	var b strings.Builder
	b.WriteString(string(f.Status))
	if f.Total >= 0 {
		fmt.Fprintf(&b, " %d/%d bytes", f.Uploaded, f.Total)
		if f.Total > 0 {
			fmt.Fprintf(&b, " %.1f%%", 100*float64(f.Uploaded)/float64(f.Total))
		}
	} else {
		fmt.Fprintf(&b, " %d bytes", f.Uploaded)
	}
	if f.hasRate && !f.Status.final() {
		fmt.Fprintf(&b, " %s/s", humanize.IBytes(uint64(max(f.rate, 0))))
	}
	if f.hasETA {
		fmt.Fprintf(&b, " eta %s", time.Duration(f.eta)*time.Second)
	}
	if f.Reason != "" {
		b.WriteString(": " + f.Reason)
	}
	return b.String()
}
