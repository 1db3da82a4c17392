package deploy_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nullops/nullops/protocol"
)

// clock is the lifecycle's clock in tests: real time plus an offset the
// test advances.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// TestClockDrivesTimeoutAndExpiry: the deploy timeout (30 minutes) and the
// TTL (1 hour) are decided by the lifecycle's clock, not by waiting or by
// moving timestamps in the database.
func TestClockDrivesTimeoutAndExpiry(t *testing.T) {
	f := newFixture(t, 4)
	ctx := context.Background()
	d := f.create(t, "pr-1", "v1")
	check := func(when string, wantOverdue, wantExpired int) {
		t.Helper()
		if n, err := f.svc.FailOverdue(ctx); err != nil || n != wantOverdue {
			t.Fatalf("%s: %d overdue (%v), want %d", when, n, err, wantOverdue)
		}
		if n, err := f.svc.CleanupExpired(ctx); err != nil || n != wantExpired {
			t.Fatalf("%s: %d expired (%v), want %d", when, n, err, wantExpired)
		}
	}
	check("at once", 0, 0)
	f.clock.Advance(29 * time.Minute)
	check("after 29 minutes", 0, 0)
	f.clock.Advance(2 * time.Minute)
	check("after 31 minutes", 1, 0)
	if s := f.agents.waitSent(t, protocol.TypeCancel, 1); s[0].body.(protocol.DeleteRequest).DeploymentID != d.ID {
		t.Fatalf("cancel sent for %+v", s[0])
	}
	f.clock.Advance(30 * time.Minute)
	check("after 61 minutes", 1, 1) // the agent never reported the cancel: still deploying, and now expired
	if got := f.get(t, d.ID); got.Status != "deleting" {
		t.Fatalf("expired deployment is %s", got.Status)
	}
}
