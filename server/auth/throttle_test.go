package auth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nullops/nullops/server/store"
	"github.com/nullops/nullops/server/store/storetest"
)

func failAt(t *testing.T, th *throttle, user, addr string, at time.Time) {
	t.Helper()
	a, err := th.begin(context.Background(), user, addr, at)
	if err != nil {
		t.Fatalf("%s from %s at %s refused: %v", user, addr, at.Format(time.TimeOnly), err)
	}
	a.failed()
}

func keys(t *testing.T, st *store.Store) int {
	t.Helper()
	n, err := st.CountThrottleKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestThrottleIsPerUsernameAndAddressWithGrowingDelays(t *testing.T) {
	ctx := context.Background()
	st := storetest.New(t)
	th := newThrottle(ThrottleConfig{Window: 10 * time.Minute, BaseDelay: time.Minute, MaxPerUserAddr: 3, MaxPerAddr: 5}, st)
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for i := range 3 {
		failAt(t, th, "ann", "10.0.0.1", t0.Add(time.Duration(i)*time.Second))
	}
	last := t0.Add(2 * time.Second)
	_, err := th.begin(ctx, "ann", "10.0.0.1", last)
	var te *ThrottledError
	if !errors.As(err, &te) || te.Scope != "username" || te.RetryAfter != time.Minute {
		t.Fatalf("after 3 failures: %v", err)
	}
	if got := te.Error(); got != "too many failed attempts for this username; try again in 1m0s" {
		t.Errorf("message %q", got)
	}
	// The owner at another address is not affected.
	a, err := th.begin(ctx, "ann", "10.0.0.2", last)
	if err != nil {
		t.Fatalf("ann from another address: %v", err)
	}
	if err := a.succeeded(ctx); err != nil {
		t.Fatal(err)
	}
	// The delay grows with each further failure: 1m, 2m, 4m, … capped at the window.
	at := last
	for i, want := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 10 * time.Minute, 10 * time.Minute} {
		if _, err := th.begin(ctx, "ann", "10.0.0.1", at.Add(want-time.Second)); err == nil {
			t.Fatalf("delay %d: allowed before %s", i, want)
		}
		at = at.Add(want)
		failAt(t, th, "ann", "10.0.0.1", at)
	}
	// Waiting out the delay allows one attempt, not a fresh allowance …
	failAt(t, th, "ann", "10.0.0.1", at.Add(10*time.Minute))
	at = at.Add(10 * time.Minute)
	if _, err := th.begin(ctx, "ann", "10.0.0.1", at.Add(time.Minute)); err == nil {
		t.Fatal("a fresh allowance after waiting out the delay")
	}
	// … a quiet window after the delay forgets everything.
	a, err = th.begin(ctx, "ann", "10.0.0.1", at.Add(20*time.Minute))
	if err != nil {
		t.Fatalf("after a quiet window: %v", err)
	}
	if err := a.succeeded(ctx); err != nil {
		t.Fatal(err)
	}
	if tl, err := st.LockThrottleKeys(ctx, []string{userAddrKey("ann", "10.0.0.1")}, at.Add(20*time.Minute)); err != nil || len(tl) != 0 {
		t.Errorf("success kept the failures: %v %v", tl, err)
	}

	// Per address: 5 failures over any usernames delay every username there.
	for i := range 5 {
		failAt(t, th, fmt.Sprint("ghost", i), "10.0.0.3", t0)
	}
	if _, err := th.begin(ctx, "bob", "10.0.0.3", t0); !errors.As(err, &te) || te.Scope != "client address" {
		t.Fatalf("address with 5 failures: %v", err)
	}
	if a, err := th.begin(ctx, "bob", "10.0.0.4", t0); err != nil {
		t.Fatalf("bob from elsewhere: %v", err)
	} else if err := a.cancel(ctx); err != nil {
		t.Fatal(err)
	}
	// Usernames as typed may hold anything a text column refuses.
	failAt(t, th, "nul\x00and\xffbad utf-8", "10.0.0.5", t0)
}

// Concurrent attempts reserve their place before any password is checked:
// of 64 at once, spread over two replicas (two pools on one database),
// exactly the allowance gets through.
func TestThrottleReservesAttemptsBeforeTheyAreChecked(t *testing.T) {
	ctx := context.Background()
	u := storetest.URL(t)
	var ths []*throttle
	for range 2 {
		st, err := store.Open(ctx, u, 8)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(st.Close)
		ths = append(ths, newThrottle(DefaultThrottle, st))
	}
	now := time.Now()
	var allowed, refused atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 64 {
		wg.Go(func() {
			<-start
			a, err := ths[i%2].begin(ctx, "victim", "198.51.100.7", now)
			var te *ThrottledError
			switch {
			case errors.As(err, &te):
				refused.Add(1)
			case err != nil:
				t.Error(err)
			default:
				allowed.Add(1)
				a.failed()
			}
		})
	}
	close(start)
	wg.Wait()
	if allowed.Load() != 5 || refused.Load() != 59 {
		t.Fatalf("allowed %d, refused %d; want 5 and 59", allowed.Load(), refused.Load())
	}
	// Cancelled attempts (nothing checked) do not count, and leave nothing.
	for range 50 {
		a, err := ths[0].begin(ctx, "x", "a", now)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.cancel(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := keys(t, ths[1].st); n != 2 {
		t.Fatalf("%d keys stored; want the victim's 2", n)
	}
}

// Keys are forgotten in the database too: the prune removes every key
// quiet for its delay plus a window.
func TestThrottlePruneForgetsQuietKeys(t *testing.T) {
	ctx := context.Background()
	st := storetest.New(t)
	th := newThrottle(ThrottleConfig{Window: time.Minute, BaseDelay: time.Second, MaxPerUserAddr: 3, MaxPerAddr: 1 << 30}, st)
	t0 := time.Now()
	for i := range 20 {
		failAt(t, th, fmt.Sprint(i), "a", t0)
	}
	failAt(t, th, "late", "b", t0.Add(time.Hour))
	if n, err := th.prune(ctx, t0.Add(time.Hour)); err != nil || n != 21 {
		t.Fatalf("pruned %d, %v; want the 20 user keys and address a", n, err)
	}
	if n := keys(t, st); n != 2 {
		t.Fatalf("%d keys kept after all but 2 expired", n)
	}
}
