package hae2e

import (
	"context"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/server/store"
)

func openStore(t *testing.T, ctx context.Context, url string) *store.Store {
	t.Helper()
	st, err := store.Open(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

// A rolling restart of all three replicas, one at a time (each drains:
// unready, taken out by HAProxy, in-flight requests finish, node leases
// handed over), under a bounded load of reads and deployment creates and
// deletes through the balancer: no deployment operation fails, every
// deployment ends as asked, Docker matches the API exactly.
func TestRollingRestartUnderLoad(t *testing.T) {
	t.Parallel()
	w := startWorld(t, 3)
	w.addNodes(t, 2)
	ctx := testutil.Context(t, 5*time.Minute)
	l := &load{w: w}
	stop := make(chan struct{})
	wait := l.run(stop, 2, 60)
	for _, r := range w.c.Replicas {
		w.c.Restart(t, ctx, r)
	}
	close(stop)
	wait()
	l.report(t, "rolling restart")
	if len(l.opFailures) > 0 {
		t.Errorf("%d deployment operations failed during the rolling restart: %v", len(l.opFailures), l.opFailures)
	}
	l.settle(t)
	w.eventsAppliedOnce(t)
}
