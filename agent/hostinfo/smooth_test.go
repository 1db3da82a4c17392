package hostinfo

import (
	"math"
	"testing"
	"time"
)

func TestSmoothedFollowsLoadSlowly(t *testing.T) {
	s := Smoothed{Tau: time.Minute}
	t0 := time.Unix(1000, 0)
	if v := s.Observe(0, t0); v != 0 {
		t.Fatalf("first observation: %v", v)
	}
	// Both CPUs busy for 10 s, sampled every second: well under half shows.
	var v float64
	for i := 1; i <= 10; i++ {
		v = s.Observe(2, t0.Add(time.Duration(i)*time.Second))
	}
	want := 2 * (1 - math.Exp(-10.0/60))
	if math.Abs(v-want) > 1e-9 {
		t.Fatalf("after 10 s of full load: %v, want %v", v, want)
	}
	// The same 10 s sampled once weigh the same.
	one := Smoothed{Tau: time.Minute}
	one.Observe(0, t0)
	if w := one.Observe(2, t0.Add(10*time.Second)); math.Abs(w-v) > 1e-9 {
		t.Fatalf("one 10 s sample gives %v, ten 1 s samples %v", w, v)
	}
	// Sustained load is eventually counted in full.
	for i := 11; i <= 600; i++ {
		v = s.Observe(2, t0.Add(time.Duration(i)*time.Second))
	}
	if v < 1.99 {
		t.Fatalf("after 10 min of full load: %v", v)
	}
	// Out-of-order and non-finite samples change nothing.
	if w := s.Observe(0, t0); w != v {
		t.Fatalf("old sample moved the value to %v", w)
	}
	if w := s.Observe(math.NaN(), t0.Add(time.Hour)); w != v || s.Value() != v {
		t.Fatalf("NaN moved the value to %v", w)
	}
}
