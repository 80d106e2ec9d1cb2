package progress

import (
	"github.com/caddy-upload-progress/caddy-upload-progress/progress/multipart"
	"sync/atomic"
)

// detailBudget bounds the memory that the file details of finished
// records hold in a tracker: the names and content types of their files,
// a raw upload's file name and what protocols keep with a record (pCloud:
// the origin's description of the stored files). Each is bounded per
// upload, but a finished record is kept for the retention, so without a
// bound of their own, uploads with many files or long names could make the
// kept records hold gigabytes. A record that
// finishes past the bound keeps its counts (bytes, number of files) and
// drops the names.
type detailBudget struct {
	used    atomic.Int64
	max     atomic.Int64
	dropped atomic.Int64
}

// charge takes n bytes of the budget, or reports that they do not fit.
func (b *detailBudget) charge(n int64) bool {
	if b.used.Add(n) <= b.max.Load() {
		return true
	}
	b.used.Add(-n)
	b.dropped.Add(1)
	return false
}

func (b *detailBudget) release(n int64) { b.used.Add(-n) }

// keepDetail freezes what r shows of its files for the rest of its life,
// charging its size to b: the scanner's last progress (the scanner itself,
// with its buffers, is let go), the protocol's detail, the file name.
// If b has no room, only the counts are kept. It runs in finish, before
// the ending is published, so every reader of the final state sees the
// same detail.
func (r *Record) keepDetail(b *detailBudget) *multipart.Progress {
	var files *multipart.Progress
	var size int64
	if m := r.files.Load(); m != nil {
		p := m.Progress()
		files = &p
		size += p.Memory()
	}
	if d := r.detail.Load(); d != nil {
		size += d.size
	}
	if n := r.fileName.Load(); n != nil {
		size += int64(len(*n))
	}
	if size == 0 || b == nil {
		return files
	}
	if b.charge(size) {
		// The tracker may have let go of the record already (another
		// upload to its key replaced it): then there is nothing to keep.
		if !r.detailCharge.CompareAndSwap(0, size) {
			b.release(size)
		}
		return files
	}
	r.detail.Store(nil)
	r.fileName.Store(nil)
	if files != nil {
		files = &multipart.Progress{Number: files.Number, Done: files.Done, Broken: files.Broken}
	}
	return files
}

// releaseDetail gives back what r's detail was charged, once the tracker
// no longer holds r. It is idempotent, and a keepDetail that comes after it
// charges nothing.
func (r *Record) releaseDetail(b *detailBudget) {
	if n := r.detailCharge.Swap(-1); n > 0 {
		b.release(n)
	}
}
