package ingresspub_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/server/ingresspub"
)

// Withdraw waits until each nullops-ingress that polls confirms the table
// without the withdrawn routes; a stale confirmation does not count.
func TestWithdrawWaitsForIngressConfirmation(t *testing.T) {
	w := newWorld(t)
	ctx := testutil.Context(t, 5*time.Minute)
	p := newPublisher(t, w.st, ingresspub.Options{ConfirmTimeout: time.Minute})
	if err := p.Recompute(ctx); err != nil {
		t.Fatal(err)
	}
	v1 := p.Current()
	p.Polled("ing-a", v1.ETag)
	p.Polled("ing-b", v1.ETag)

	w.seed.SetDeploymentStatus(t, w.depRunning, "deleting")
	var confirmed atomic.Bool
	done := make(chan bool, 1)
	go func() {
		p.Withdraw(ctx)
		done <- confirmed.Load()
	}()
	v2, ok := p.WaitNewer(ctx, v1.Version)
	if !ok {
		t.Fatal("Withdraw did not publish the table without the deleted deployment")
	}
	if _, routed := compile(t, v2.Body())["web.pr-1.qa.example.test"]; routed {
		t.Fatal("the deleting deployment is still in the table")
	}
	p.Polled("ing-a", v2.ETag)
	p.Polled("ing-b", v1.ETag) // stale: still serving the old table
	confirmed.Store(true)
	p.Polled("ing-b", v2.ETag)
	select {
	case sawConfirmation := <-done:
		if !sawConfirmation {
			t.Fatal("Withdraw returned before every ingress confirmed the new table")
		}
	case <-ctx.Done():
		t.Fatal("Withdraw did not return after every ingress confirmed")
	}
}

// Ingresses that cannot confirm (Traefik polling) get the grace; a
// nullops-ingress that never confirms is given up on after ConfirmTimeout.
func TestWithdrawGraceAndConfirmTimeout(t *testing.T) {
	w := newWorld(t)
	ctx := testutil.Context(t, 5*time.Minute)
	const grace, timeout = 400 * time.Millisecond, 300 * time.Millisecond
	p := newPublisher(t, w.st, ingresspub.Options{WithdrawGrace: grace, ConfirmTimeout: timeout})
	if err := p.Recompute(ctx); err != nil {
		t.Fatal(err)
	}

	p.Polled("", "") // Traefik
	start := time.Now()
	p.Withdraw(ctx)
	if took := time.Since(start); took < grace {
		t.Fatalf("with a Traefik poller Withdraw returned after %s, want the %s grace", took, grace)
	}

	w2 := newWorld(t)
	p2 := newPublisher(t, w2.st, ingresspub.Options{WithdrawGrace: grace, ConfirmTimeout: timeout})
	if err := p2.Recompute(ctx); err != nil {
		t.Fatal(err)
	}
	p2.Polled("ing-a", p2.Current().ETag)
	w2.seed.SetDeploymentStatus(t, w2.depRunning, "deleting")
	start = time.Now()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	p2.Withdraw(wctx)
	if took := time.Since(start); took < timeout || wctx.Err() != nil {
		t.Fatalf("an ingress that never confirms: Withdraw returned after %s (ctx %v), want after the %s timeout", took, wctx.Err(), timeout)
	}

	// Nobody polls: nothing to wait for.
	w3 := newWorld(t)
	p3 := newPublisher(t, w3.st, ingresspub.Options{WithdrawGrace: time.Hour, ConfirmTimeout: time.Hour})
	wctx3, cancel3 := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel3()
	p3.Withdraw(wctx3)
	if wctx3.Err() != nil {
		t.Fatal("Withdraw without any ingress waited")
	}
}
