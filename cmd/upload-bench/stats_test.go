package main

import (
	"math"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var hundred []float64
	for i := 100; i >= 1; i-- { // reversed: percentile must sort
		hundred = append(hundred, float64(i))
	}
	for _, tc := range []struct {
		in   []float64
		p    float64
		want float64
	}{
		{hundred, 50, 50},
		{hundred, 99, 99},
		{hundred, 99.9, 100},
		{hundred, 100, 100},
		{hundred, 1, 1},
		{hundred, 0, 1},
		{[]float64{7}, 99, 7},
		{[]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 1000}, 99, 1000},
		{[]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 1000}, 50, 5},
	} {
		if got := percentile(tc.in, tc.p); got != tc.want {
			t.Errorf("percentile(n=%d, %v) = %v, want %v", len(tc.in), tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 50); !math.IsNaN(got) {
		t.Errorf("percentile(nil) = %v, want NaN", got)
	}
	if hundred[0] != 100 {
		t.Errorf("percentile modified its input")
	}
}

func TestMillis(t *testing.T) {
	got := millis([]time.Duration{1500 * time.Microsecond, 2 * time.Second})
	if got[0] != 1.5 || got[1] != 2000 {
		t.Errorf("millis = %v", got)
	}
}
