package progress

// finishedQueue is a FIFO of finished records, oldest first.
type finishedQueue struct {
	recs []*Record
	head int
}

func (q *finishedQueue) push(rec *Record) { q.recs = append(q.recs, rec) }

// pop returns the oldest record, or nil when the queue is empty.
func (q *finishedQueue) pop() *Record {
	if q.head == len(q.recs) {
		return nil
	}
	rec := q.recs[q.head]
	q.recs[q.head] = nil
	q.head++
	q.compact()
	return rec
}

// dropGone drops the oldest records for as long as gone says they are:
// the janitor has reaped them, so they need no room made.
func (q *finishedQueue) dropGone(gone func(*Record) bool) {
	for q.head < len(q.recs) && gone(q.recs[q.head]) {
		q.recs[q.head] = nil
		q.head++
	}
	q.compact()
}

// compact lets go of the front of the slice once it is half of it.
func (q *finishedQueue) compact() {
	if q.head == len(q.recs) {
		q.recs, q.head = q.recs[:0], 0
		return
	}
	if q.head > 1024 && q.head > len(q.recs)/2 {
		n := copy(q.recs, q.recs[q.head:])
		clear(q.recs[n:])
		q.recs, q.head = q.recs[:n], 0
	}
}
