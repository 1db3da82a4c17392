package auth

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestThrottleCountsFailuresWithinTheWindow(t *testing.T) {
	th := newThrottle(ThrottleConfig{Window: 10 * time.Minute, MaxPerUsername: 3, MaxPerAddr: 5})
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for i := range 3 {
		if err := th.check("ann", "10.0.0.1", t0); err != nil {
			t.Fatalf("attempt %d refused: %v", i, err)
		}
		th.fail("ann", "10.0.0.1", t0.Add(time.Duration(i)*time.Minute))
	}
	err := th.check("ann", "10.0.0.2", t0.Add(3*time.Minute))
	var te *ThrottledError
	if !errors.As(err, &te) || te.Scope != "username" || te.RetryAfter != 7*time.Minute {
		t.Fatalf("after 3 failures: %v", err)
	}
	// The first failure ages out at t0+10m: one more attempt is allowed.
	if err := th.check("ann", "10.0.0.2", t0.Add(10*time.Minute)); err != nil {
		t.Fatalf("after the oldest failure aged out: %v", err)
	}
	// Success forgets the username, not the address.
	th.fail("bob", "10.0.0.1", t0.Add(4*time.Minute))
	th.fail("cat", "10.0.0.1", t0.Add(4*time.Minute))
	th.succeed("ann")
	err = th.check("ann", "10.0.0.1", t0.Add(5*time.Minute))
	if !errors.As(err, &te) || te.Scope != "client address" {
		t.Fatalf("address with 5 failures: %v", err)
	}
	if err := th.check("ann", "10.0.0.9", t0.Add(5*time.Minute)); err != nil {
		t.Fatalf("ann from another address after success: %v", err)
	}
	if got := te.Error(); got != "too many failed logins for this client address; try again in 5m0s" {
		t.Errorf("message %q", got)
	}
}

func TestThrottleMemoryIsBounded(t *testing.T) {
	th := newThrottle(ThrottleConfig{Window: time.Minute, MaxPerUsername: 3, MaxPerAddr: 3})
	t0 := time.Now()
	for i := range sweepKeys + 10 {
		th.fail(fmt.Sprint(i), "a", t0)
	}
	th.fail("late", "b", t0.Add(time.Hour))
	if n := len(th.fails); n != 2 {
		t.Fatalf("%d keys kept after all but 2 expired", n)
	}
	// Within one window, memory stays capped.
	for i := range maxKeys + 10 {
		th.fail(fmt.Sprint(i), "a", t0.Add(2*time.Hour))
	}
	if n := len(th.fails); n > maxKeys+2 {
		t.Fatalf("%d keys kept, cap %d", n, maxKeys)
	}
}
