package ingresspub_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/server/ingresspub"
	"github.com/nullops/nullops/server/store"
)

// secondReplica is another server replica's view of w's database: its own
// connection pool and publisher.
func secondReplica(t *testing.T, w *world, opts ingresspub.Options) *ingresspub.Publisher {
	t.Helper()
	st, err := store.Open(context.Background(), w.st.Pool.Config().ConnString(), 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return newPublisher(t, st, opts)
}

// Two replicas publish the same table under the same ETag (a content
// hash), so an ingress may poll either. A replica that has not applied a
// change yet, asked by an ingress that already serves the newer table
// through the other, catches up before answering instead of handing out
// an older table; deltas from a base it never published degrade to the
// whole document.
func TestReplicasAgreeAndALaggingReplicaCatchesUp(t *testing.T) {
	w := newWorld(t)
	ctx := testutil.Context(t, 2*time.Minute)
	a := newPublisher(t, w.st, ingresspub.Options{})
	b := secondReplica(t, w, ingresspub.Options{})
	for _, p := range []*ingresspub.Publisher{a, b} {
		if err := p.Recompute(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if a.Current().ETag != b.Current().ETag {
		t.Fatalf("replicas disagree on the same table: %s and %s", a.Current().ETag, b.Current().ETag)
	}
	old := b.Current()

	// A applies a change B has not seen yet (no change feed here).
	w.seed.SetDeploymentStatus(t, w.depRunning, "deleting")
	if err := a.Recompute(ctx); err != nil {
		t.Fatal(err)
	}
	newer := a.Current()
	if b.Knows(newer.ETag) || b.Current() != old {
		t.Fatal("the second replica saw the change already")
	}
	if _, ok := b.Delta(newer.ETag, b.Current()); ok {
		t.Fatal("a delta from a table the replica never published")
	}
	b.CatchUp(ctx, newer.ETag)
	if got := b.Current(); got.ETag != newer.ETag {
		t.Fatalf("after catching up the lagging replica serves %s, the ingress has %s", got.ETag, newer.ETag)
	}
	if s := b.Stats(); s.CatchUps != 1 {
		t.Fatalf("catch-ups %d, want 1", s.CatchUps)
	}
	// A known table costs nothing.
	b.CatchUp(ctx, newer.ETag)
	b.CatchUp(ctx, old.ETag)
	if s := b.Stats(); s.CatchUps != 1 {
		t.Fatalf("catch-ups %d after known tables, want 1", s.CatchUps)
	}
}

// A withdrawal on one replica waits for the ingresses that poll another:
// the polls are shared through PostgreSQL.
func TestWithdrawSeesConfirmationsThroughAnotherReplica(t *testing.T) {
	w := newWorld(t)
	ctx := testutil.Context(t, 2*time.Minute)
	a := newPublisher(t, w.st, ingresspub.Options{ConfirmTimeout: time.Minute})
	b := secondReplica(t, w, ingresspub.Options{ConfirmTimeout: time.Minute})
	for _, p := range []*ingresspub.Publisher{a, b} {
		if err := p.Recompute(ctx); err != nil {
			t.Fatal(err)
		}
	}
	v1 := b.Current()
	b.Polled("ing-a", v1.ETag) // the ingress polls replica B only

	w.seed.SetDeploymentStatus(t, w.depRunning, "deleting")
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Withdraw(ctx)
	}()
	if _, ok := a.WaitNewer(ctx, a.Current().Version); !ok {
		t.Fatal("Withdraw did not recompute")
	}
	select {
	case <-done:
		t.Fatal("Withdraw returned while the ingress polling the other replica serves the old table")
	default:
	}
	if err := b.Recompute(ctx); err != nil {
		t.Fatal(err)
	}
	b.Polled("ing-a", b.Current().ETag)
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("Withdraw did not see the confirmation made through the other replica")
	}
}

// With the file output gated (several replicas), only the holder of the
// ingress-file job writes the file.
func TestGatedFileIsWrittenOnlyWhileHeld(t *testing.T) {
	w := newWorld(t)
	ctx := testutil.Context(t, 2*time.Minute)
	file := filepath.Join(t.TempDir(), "dyn", "routes.yml")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	p := newPublisher(t, w.st, ingresspub.Options{File: file})
	p.GateFile()
	if err := p.Recompute(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("a replica not holding the job wrote the file: %v", err)
	}
	hold, release := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); p.WriteFileWhileHeld(hold) }()
	testutil.WaitFor(t, ctx, 20*time.Millisecond, "the holder writes the current table", func() bool {
		_, err := os.Stat(file)
		return err == nil
	})
	release()
	<-done
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	w.seed.SetDeploymentStatus(t, w.depRunning, "deleting")
	if err := p.Recompute(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("written after the job moved away: %v", err)
	}
}
