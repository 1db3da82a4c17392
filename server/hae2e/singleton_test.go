package hae2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/internal/testutil/hacluster"
	"github.com/nullops/nullops/server/store"
)

// holders maps each singleton job to the pid of the replica holding it.
func holders(t *testing.T, ctx context.Context, st *store.Store) map[string]string {
	t.Helper()
	names, err := st.JobLockHolders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, n := range names {
		// "nullops-job <job> <pid>@<host>"
		f := strings.Fields(strings.TrimPrefix(n, store.JobLockApplicationPrefix))
		if len(f) == 2 {
			out[f[0]], _, _ = strings.Cut(f[1], "@")
		}
	}
	return out
}

var jobs = []string{"cleanup", "usage-prune", "auth-prune"}

// waitJobsOn waits until every singleton job is held by r.
func waitJobsOn(t *testing.T, ctx context.Context, st *store.Store, r *hacluster.Replica, what string) {
	t.Helper()
	pid := fmt.Sprint(r.Pid())
	testutil.WaitFor(t, ctx, 50*time.Millisecond, what, func() bool {
		h := holders(t, ctx, st)
		for _, j := range jobs {
			if h[j] != pid {
				return false
			}
		}
		return true
	})
}

// Every singleton job runs on exactly one replica; when that replica is
// killed (-9) the other takes the jobs over at once (PostgreSQL drops the
// dead session's lock), and when the holder freezes (SIGSTOP) the other
// takes over once the holder's lease ran out, within the 15 s the
// failover allows.
func TestSingletonJobsMoveWhenTheirHolderDiesOrFreezes(t *testing.T) {
	t.Parallel()
	w := startWorld(t, 2)
	ctx := testutil.Context(t, 2*time.Minute)
	st, err := store.Open(ctx, w.db, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var holder, other *hacluster.Replica
	testutil.WaitFor(t, ctx, 50*time.Millisecond, "every job held", func() bool {
		h := holders(t, ctx, st)
		for _, r := range w.c.Replicas {
			if h[jobs[0]] == fmt.Sprint(r.Pid()) {
				holder = r
			}
		}
		return len(h) == len(jobs) && holder != nil
	})
	// Replicas take the jobs in the order they started; both run one of each.
	for _, r := range w.c.Replicas {
		if r != holder {
			other = r
		}
	}
	h := holders(t, ctx, st)
	t.Logf("holders before the kill: %v (replica pids %d, %d)", h, holder.Pid(), other.Pid())

	holder.Kill(t)
	start := time.Now()
	waitJobsOn(t, ctx, st, other, "the surviving replica takes every job after kill -9")
	t.Logf("jobs moved %s after kill -9", time.Since(start).Round(time.Millisecond))

	holder.Start(t)
	holder.WaitReady(t, ctx)
	other.Freeze()
	start = time.Now()
	waitJobsOn(t, ctx, st, holder, "the restarted replica takes every job from the frozen one")
	took := time.Since(start)
	other.Thaw()
	t.Logf("jobs moved %s after SIGSTOP of their holder", took.Round(time.Millisecond))
	if took > 15*time.Second {
		t.Fatalf("a frozen holder kept its jobs for %s (more than 15 s)", took)
	}
	// The thawed replica finds its lock gone and does not take it back.
	other.WaitReady(t, ctx)
	if h := holders(t, ctx, st); h[jobs[0]] != fmt.Sprint(holder.Pid()) {
		t.Fatalf("holders after the thaw: %v", h)
	}
}
