package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// The rate is taken over the last rateWindow of counts; the time left
// follows from it and the total.
func TestRater(t *testing.T) {
	var r rater
	t0 := time.Unix(0, 0)
	if _, ok := r.rate(); ok {
		t.Fatal("a rate from nothing")
	}
	r.add(t0, 1000)
	if _, ok := r.rate(); ok {
		t.Fatal("a rate from one count")
	}
	for i := 1; i <= 10; i++ {
		r.add(t0.Add(time.Duration(i)*time.Second), 1000+int64(i)*500)
	}
	if bps, ok := r.rate(); !ok || bps != 500 {
		t.Fatalf("rate %v %v, want 500", bps, ok)
	}
	if eta, ok := r.eta(6000, 11000); !ok || eta != 10 {
		t.Fatalf("eta %v %v, want 10", eta, ok)
	}
	if _, ok := r.eta(6000, -1); ok {
		t.Fatal("an eta without a total")
	}
	r.add(t0.Add(11*time.Second), 10) // a new upload on the key
	if _, ok := r.rate(); ok {
		t.Fatal("a rate across a count that went back")
	}
}

// --json lines carry uploaded, total and status, and rate and
// eta_seconds when known; lines say the same in words.
func TestRenderers(t *testing.T) {
	frames := []frame{
		{Update: Update{0, -1, StatusWaiting, ""}},
		{Update: Update{1048576, 4194304, StatusUploading, ""}, rate: 1048576.4, hasRate: true, eta: 3, hasETA: true},
		{Update: Update{2048, -1, StatusUploading, ""}},
		{Update: Update{4194304, 4194304, StatusCompleted, ""}, rate: 1048576, hasRate: true},
		{Update: Update{10, 20, StatusFailed, "origin responded 500"}},
	}
	var j, l bytes.Buffer
	jr, lr := newJSONLines(&j), newLines(&l)
	for _, f := range frames {
		jr.show(f)
		lr.show(f)
	}
	wantJSON := `{"uploaded":0,"total":-1,"status":"waiting"}
{"uploaded":1048576,"total":4194304,"status":"uploading","rate":1048576,"eta_seconds":3}
{"uploaded":2048,"total":-1,"status":"uploading"}
{"uploaded":4194304,"total":4194304,"status":"completed","rate":1048576}
{"uploaded":10,"total":20,"status":"failed"}
`
	wantLines := `waiting for the upload
uploading 1048576/4194304 bytes 25.0% 1.0 MiB/s eta 3s
uploading 2048 bytes
completed 4194304/4194304 bytes 100.0%
failed 10/20 bytes 50.0%: origin responded 500
`
	if j.String() != wantJSON {
		t.Errorf("--json:\n%s\nwant:\n%s", &j, wantJSON)
	}
	if l.String() != wantLines {
		t.Errorf("lines:\n%s\nwant:\n%s", &l, wantLines)
	}
}

// The bar draws the percentage and the watch's detail; it stands short of
// 100% until the end, and spins with the bytes where the total is unknown.
func TestBar(t *testing.T) {
	var b bytes.Buffer
	br := newBar(&b, 0)
	br.show(frame{Update: Update{0, -1, StatusWaiting, ""}})
	br.show(frame{Update: Update{4 << 20, 8 << 20, StatusUploading, ""}, rate: 5 << 20, hasRate: true, eta: 1, hasETA: true})
	br.show(frame{Update: Update{8 << 20, 8 << 20, StatusUploading, ""}})
	if s := b.String(); !strings.Contains(s, "waiting for the upload…\n") || !strings.Contains(s, " 50% |") ||
		!strings.Contains(s, "uploading 4.0 MiB/8.0 MiB, 5.0 MiB/s, eta 1s") || !strings.Contains(s, " 99% |") || strings.Contains(s, "100%") {
		t.Fatalf("bar so far: %q", s)
	}
	br.show(frame{Update: Update{8 << 20, 8 << 20, StatusCompleted, ""}})
	br.end(Update{8 << 20, 8 << 20, StatusCompleted, ""})
	if s := b.String(); !strings.Contains(s, "100% |") || !strings.HasSuffix(s, "completed 8.0 MiB/8.0 MiB \n") {
		t.Fatalf("bar at the end: %q", s)
	}

	b.Reset()
	br = newBar(&b, 0)
	br.show(frame{Update: Update{2 << 20, -1, StatusUploading, ""}})
	br.show(frame{Update: Update{3 << 20, -1, StatusFailed, "gone"}})
	br.end(Update{3 << 20, -1, StatusFailed, "gone"})
	if s := b.String(); !strings.Contains(s, "uploading 2.0 MiB") || !strings.Contains(s, "failed 3.0 MiB") || !strings.HasSuffix(s, "\n") {
		t.Fatalf("bar of an unknown length: %q", s)
	}
}

// The bar leaves room for its detail on a narrow terminal.
func TestBarWidth(t *testing.T) {
	for _, tc := range []struct{ columns, want int }{{0, 30}, {200, 30}, {92, 20}, {80, 10}, {40, 10}} {
		if got := newBar(nil, tc.columns).width; got != tc.want {
			t.Errorf("%d columns: a bar of %d, want %d", tc.columns, got, tc.want)
		}
	}
}
