package singleton_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/server/singleton"
	"github.com/nullops/nullops/server/store"
	"github.com/nullops/nullops/server/store/storetest"
)

func open(t *testing.T, url string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), url, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

// waitHolding waits until r holds the job (or not).
func waitHolding(t *testing.T, ctx context.Context, r *singleton.Runner, want bool, what string) {
	t.Helper()
	for {
		h, ch := r.Holding()
		if h == want {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("%s: still holding=%v", what, h)
		}
	}
}

type replica struct {
	st      *store.Store
	r       *singleton.Runner
	running atomic.Int32 // jobs running now
	cancel  context.CancelFunc
	done    chan struct{}
}

func start(t *testing.T, url, holder string, running *atomic.Int32, maxRunning *atomic.Int32) *replica {
	p := &replica{st: open(t, url), done: make(chan struct{})}
	p.r = singleton.New("test-job", singleton.Options{Store: p.st, Log: zerolog.Nop(), Lease: 2 * time.Second, Holder: holder},
		func(ctx context.Context) {
			n := running.Add(1)
			for {
				m := maxRunning.Load()
				if n <= m || maxRunning.CompareAndSwap(m, n) {
					break
				}
			}
			p.running.Add(1)
			<-ctx.Done()
			p.running.Add(-1)
			running.Add(-1)
		})
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() { defer close(p.done); p.r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-p.done })
	return p
}

// Two replicas: one runs the job; when its session dies (as when its
// process is killed: PostgreSQL drops the connection) or it stops, the
// other takes over at once. A holder whose session was cut while it lives
// on stops its job at its next heartbeat; a graceful handover never
// overlaps.
func TestOneReplicaRunsTheJobAndAnotherTakesOver(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url := storetest.URL(t)
	var running, maxRunning atomic.Int32
	a := start(t, url, "replica-a", &running, &maxRunning)
	waitHolding(t, ctx, a.r, true, "first replica")
	b := start(t, url, "replica-b", &running, &maxRunning)
	holders, err := b.st.JobLockHolders(ctx)
	if err != nil || len(holders) != 1 || !strings.HasSuffix(holders[0], "test-job replica-a") {
		t.Fatalf("holders %q, %v", holders, err)
	}

	// The holder's session is killed, as when its process dies.
	if _, err := b.st.Pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = $1`, store.JobLockApplicationPrefix+"test-job replica-a"); err != nil {
		t.Fatal(err)
	}
	waitHolding(t, ctx, b.r, true, "second replica after the first one's session died")
	waitHolding(t, ctx, a.r, false, "first replica after losing its session")
	maxRunning.Store(running.Load())

	// A graceful stop hands the job back.
	b.cancel()
	<-b.done
	waitHolding(t, ctx, a.r, true, "first replica after the second stopped")
	if m := maxRunning.Load(); m != 1 {
		t.Fatalf("%d jobs ran at once", m)
	}
	if a.r.Acquired() != 2 || b.r.Acquired() != 1 {
		t.Fatalf("acquired a=%d b=%d", a.r.Acquired(), b.r.Acquired())
	}
}

// A frozen holder (its socket open, the process silent: SIGSTOP, a stalled
// machine) loses the lock after its lease: PostgreSQL ends its idle
// transaction.
func TestFrozenHolderLosesTheLockAfterItsLease(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url := storetest.URL(t)
	st := open(t, url)
	frozen, err := st.WaitJobLock(ctx, "frozen-job", "frozen", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer frozen.Release(ctx)
	got, err := open(t, url).WaitJobLock(ctx, "frozen-job", "waiter", time.Second)
	if err != nil {
		t.Fatalf("waiter: %v", err)
	}
	defer got.Release(ctx)
	if err := frozen.Heartbeat(ctx); err == nil {
		t.Fatal("the frozen holder's heartbeat succeeded after it lost the lock")
	}
	if err := got.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
}
