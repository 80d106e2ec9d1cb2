package progress

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// BenchmarkBeginFinish is the tracker's cost per upload: a record begun
// under a fresh key and finished.
func BenchmarkBeginFinish(b *testing.B) {
	tr := newTestTracker(b, Options{MaxKeys: 1 << 30})
	owner := tr.Owner("api-key")
	keys := make([]string, 4096)
	for i := range keys {
		keys[i] = fmt.Sprintf("/files/upload-%06d.bin", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		rec, err := tr.Begin(owner, keys[i%len(keys)], 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		tr.Finish(rec, Judge(Event{Status: 201}))
		i++
	}
}

// BenchmarkFanOut is the cost of one update reaching n watchers: the
// writer crosses every watcher's threshold once per op and waits until all
// of them have seen it.
func BenchmarkFanOut(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("watchers=%d", n), func(b *testing.B) {
			tr := newTestTracker(b, Options{MaxWatchers: 2000, MaxWatchersPerKey: 2000})
			rec, err := tr.Begin(Anyone, "/fan", -1)
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			seen := make(chan struct{}, n)
			var wg sync.WaitGroup
			starts := make([]Snapshot, n)
			subs := make([]Subscription, n)
			for i := range n {
				subs[i] = mustSubscribe(b, tr, Anyone, "/fan")
				starts[i] = subs[i].Current()
			}
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					prev := starts[i]
					for {
						s, err := subs[i].Next(ctx, prev, 1)
						if err != nil {
							return
						}
						prev = s
						seen <- struct{}{}
					}
				}()
			}
			b.ReportAllocs()
			for b.Loop() {
				rec.add(1)
				for range n {
					<-seen
				}
			}
			cancel()
			wg.Wait()
			for _, s := range subs {
				s.Close()
			}
		})
	}
}

// BenchmarkOwner is the cost of turning a credential into an Owner, paid
// by every upload and status request whose protocol checks ownership.
func BenchmarkOwner(b *testing.B) {
	tr := newTestTracker(b, Options{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tr.Owner("0123456789abcdef0123456789abcdef")
		}
	})
}
