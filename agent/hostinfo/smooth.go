package hostinfo

import (
	"math"
	"time"
)

// Smoothed is an exponentially weighted moving average over time: each
// observation moves the value towards it by 1-e^(-Δt/Tau), so irregular
// sampling intervals weigh correctly. The first observation is taken as is.
// The zero value with a Tau set is ready to use; it is not safe for
// concurrent use.
type Smoothed struct {
	Tau   time.Duration
	value float64
	at    time.Time
	have  bool
}

// Observe records v measured at t and returns the smoothed value.
// Observations older than the last one only return the current value.
func (s *Smoothed) Observe(v float64, t time.Time) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return s.value
	}
	if !s.have || s.Tau <= 0 {
		s.value, s.at, s.have = v, t, true
		return s.value
	}
	dt := t.Sub(s.at)
	if dt <= 0 {
		return s.value
	}
	alpha := 1 - math.Exp(-float64(dt)/float64(s.Tau))
	s.value += alpha * (v - s.value)
	s.at = t
	return s.value
}

// Value is the current smoothed value (0 before any observation).
func (s *Smoothed) Value() float64 { return s.value }
