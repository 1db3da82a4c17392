package auth

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestFullPoolRefusesAtOnce: with every slot taken and every wait place
// filled, a further caller gets ErrBusy at once and its function never runs;
// the waiters get their turn when slots free up.
func TestFullPoolRefusesAtOnce(t *testing.T) {
	const slots, waiters = 2, 3
	p := newHashPool(slots, waiters, time.Minute)
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range slots + waiters {
		wg.Go(func() {
			if err := p.run(context.Background(), func() { <-release }); err != nil {
				t.Errorf("a caller within slots and wait places was refused: %v", err)
			}
		})
	}
	deadline := time.Now().Add(time.Minute)
	for len(p.slots) < slots || p.waiters.Load() < waiters {
		if time.Now().After(deadline) {
			t.Fatalf("pool never filled: %d slots taken, %d waiting", len(p.slots), p.waiters.Load())
		}
		time.Sleep(time.Millisecond)
	}
	for range 10 {
		ran := false
		start := time.Now()
		err := p.run(context.Background(), func() { ran = true })
		if !errors.Is(err, ErrBusy) || ran {
			t.Fatalf("full pool: err %v, ran %v; want ErrBusy without running", err, ran)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("refusal took %v; a full pool must answer at once, not queue", d)
		}
	}
	close(release)
	wg.Wait()
	if got := p.runs.Load(); got != slots+waiters {
		t.Errorf("%d runs, want %d (the slots, then the waiters)", got, slots+waiters)
	}
	if pk := p.peak.Load(); pk > slots {
		t.Errorf("%d ran at once with %d slots", pk, slots)
	}
}
