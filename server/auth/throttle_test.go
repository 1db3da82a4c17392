package auth

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func failAt(t *testing.T, th *throttle, user, addr string, at time.Time) {
	t.Helper()
	a, err := th.begin(user, addr, at)
	if err != nil {
		t.Fatalf("%s from %s at %s refused: %v", user, addr, at.Format(time.TimeOnly), err)
	}
	a.failed()
}

func TestThrottleIsPerUsernameAndAddressWithGrowingDelays(t *testing.T) {
	th := newThrottle(ThrottleConfig{Window: 10 * time.Minute, BaseDelay: time.Minute, MaxPerUserAddr: 3, MaxPerAddr: 5})
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for i := range 3 {
		failAt(t, th, "ann", "10.0.0.1", t0.Add(time.Duration(i)*time.Second))
	}
	last := t0.Add(2 * time.Second)
	_, err := th.begin("ann", "10.0.0.1", last)
	var te *ThrottledError
	if !errors.As(err, &te) || te.Scope != "username" || te.RetryAfter != time.Minute {
		t.Fatalf("after 3 failures: %v", err)
	}
	if got := te.Error(); got != "too many failed attempts for this username; try again in 1m0s" {
		t.Errorf("message %q", got)
	}
	// The owner at another address is not affected.
	a, err := th.begin("ann", "10.0.0.2", last)
	if err != nil {
		t.Fatalf("ann from another address: %v", err)
	}
	a.succeeded()
	// The delay grows with each further failure: 1m, 2m, 4m, … capped at the window.
	at := last
	for i, want := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 10 * time.Minute, 10 * time.Minute} {
		if _, err := th.begin("ann", "10.0.0.1", at.Add(want-time.Second)); err == nil {
			t.Fatalf("delay %d: allowed before %s", i, want)
		}
		at = at.Add(want)
		failAt(t, th, "ann", "10.0.0.1", at)
	}
	// Waiting out the delay allows one attempt, not a fresh allowance …
	failAt(t, th, "ann", "10.0.0.1", at.Add(10*time.Minute))
	at = at.Add(10 * time.Minute)
	if _, err := th.begin("ann", "10.0.0.1", at.Add(time.Minute)); err == nil {
		t.Fatal("a fresh allowance after waiting out the delay")
	}
	// … a quiet window after the delay forgets everything.
	a, err = th.begin("ann", "10.0.0.1", at.Add(20*time.Minute))
	if err != nil {
		t.Fatalf("after a quiet window: %v", err)
	}
	a.succeeded()
	if _, ok := th.keys[userAddrKey("ann", "10.0.0.1")]; ok {
		t.Error("success kept the failures")
	}

	// Per address: 5 failures over any usernames delay every username there.
	for i := range 5 {
		failAt(t, th, fmt.Sprint("ghost", i), "10.0.0.3", t0)
	}
	if _, err := th.begin("bob", "10.0.0.3", t0); !errors.As(err, &te) || te.Scope != "client address" {
		t.Fatalf("address with 5 failures: %v", err)
	}
	if a, err := th.begin("bob", "10.0.0.4", t0); err != nil {
		t.Fatalf("bob from elsewhere: %v", err)
	} else {
		a.cancel()
	}
}

// Concurrent attempts reserve their place before any password is checked:
// of 64 at once, exactly the allowance gets through.
func TestThrottleReservesAttemptsBeforeTheyAreChecked(t *testing.T) {
	th := newThrottle(DefaultThrottle)
	now := time.Now()
	var allowed, refused atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 64 {
		wg.Go(func() {
			<-start
			a, err := th.begin("victim", "198.51.100.7", now)
			if err != nil {
				refused.Add(1)
				return
			}
			allowed.Add(1)
			a.failed()
		})
	}
	close(start)
	wg.Wait()
	if allowed.Load() != 5 || refused.Load() != 59 {
		t.Fatalf("allowed %d, refused %d; want 5 and 59", allowed.Load(), refused.Load())
	}
	// Cancelled attempts (nothing checked) do not count.
	th2 := newThrottle(DefaultThrottle)
	for range 50 {
		a, err := th2.begin("x", "a", now)
		if err != nil {
			t.Fatal(err)
		}
		a.cancel()
	}
}

func TestThrottleMemoryIsBounded(t *testing.T) {
	th := newThrottle(ThrottleConfig{Window: time.Minute, BaseDelay: time.Second, MaxPerUserAddr: 3, MaxPerAddr: 1 << 30})
	t0 := time.Now()
	for i := range sweepKeys + 10 {
		failAt(t, th, fmt.Sprint(i), "a", t0)
	}
	failAt(t, th, "late", "b", t0.Add(time.Hour))
	if n := len(th.keys); n != 2 {
		t.Fatalf("%d keys kept after all but 2 expired", n)
	}
	// Within one window, memory stays capped.
	for i := range maxKeys + 10 {
		failAt(t, th, fmt.Sprint(i), "a", t0.Add(2*time.Hour))
	}
	if n := len(th.keys); n > maxKeys+2 {
		t.Fatalf("%d keys kept, cap %d", n, maxKeys)
	}
}
