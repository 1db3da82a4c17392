package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nullops/nullops/server/store"
	"github.com/nullops/nullops/server/store/storetest"
)

// Replicas racing for the same free leases never both get one, each
// acquisition raises the node's epoch, and only the holder of a live lease
// gets dial epochs; an expired lease goes to whoever asks next; deleting a
// replica frees its leases; a fenced write does nothing.
func TestNodeLeasesHaveOneOwner(t *testing.T) {
	st := storetest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env, err := store.CreateEnvironment(ctx, st.Pool, store.EnvironmentInput{Name: "qa", BaseDomain: "qa.test", DefaultTTLSeconds: 3600})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for i := range 50 {
		n, err := store.CreateNode(ctx, st.Pool, store.NewNode{EnvironmentID: env.ID, Name: fmt.Sprintf("n%d", i), Host: "127.0.0.1", Port: 1})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, n.ID)
	}
	reps := []string{"a", "b", "c", "d"}
	for _, r := range reps {
		if err := st.RegisterReplica(ctx, r, "http://"+r, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	got := make([][]store.AcquiredLease, len(reps))
	var wg sync.WaitGroup
	for i, r := range reps {
		wg.Go(func() {
			var err error
			if got[i], err = st.AcquireNodeLeases(ctx, r, ids); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	owner := map[int64]string{}
	for i, ls := range got {
		for _, l := range ls {
			if o, dup := owner[l.NodeID]; dup {
				t.Fatalf("node %d acquired by %s and %s", l.NodeID, o, reps[i])
			}
			owner[l.NodeID] = reps[i]
			if l.Epoch != 1 {
				t.Fatalf("node %d: epoch %d after its first acquisition", l.NodeID, l.Epoch)
			}
		}
	}
	if len(owner) != len(ids) {
		t.Fatalf("%d of %d nodes acquired", len(owner), len(ids))
	}
	id := ids[0]
	holder := owner[id]
	other := "a"
	if holder == "a" {
		other = "b"
	}
	if _, err := st.NextConnEpoch(ctx, id, other); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("dial epoch without the lease: %v", err)
	}
	e, err := st.NextConnEpoch(ctx, id, holder)
	if err != nil || e != 2 {
		t.Fatalf("dial epoch of the holder: %d %v", e, err)
	}
	if again, _ := st.AcquireNodeLeases(ctx, other, []int64{id}); len(again) != 0 {
		t.Fatalf("a live lease was taken: %+v", again)
	}
	// Expired (the holder stopped heartbeating): the next replica to ask
	// takes it, with a new epoch, and the old holder's writes are fenced.
	if _, err := st.Pool.Exec(ctx, `UPDATE replicas SET lease_expires_at = now() - interval '1 second' WHERE id = $1`, holder); err != nil {
		t.Fatal(err)
	}
	taken, err := st.AcquireNodeLeases(ctx, other, []int64{id})
	if err != nil || len(taken) != 1 || taken[0].Epoch != 3 {
		t.Fatalf("expired lease: %+v %v", taken, err)
	}
	if _, err := st.SetNodeStatusFenced(ctx, id, 2, store.NodeOffline, "stale"); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("stale status write: %v", err)
	}
	if n, _ := st.GetNode(ctx, id); n.Status == store.NodeOffline && n.StatusReason == "stale" {
		t.Fatal("the stale write changed the node")
	}
	// The old holder comes back: its heartbeat renews what it still owns,
	// not the node it lost.
	if alive, err := st.HeartbeatReplica(ctx, holder, time.Minute); err != nil || !alive {
		t.Fatalf("heartbeat of the old holder: %t %v", alive, err)
	}
	if still, err := st.OwnedNodes(ctx, holder, []int64{id}); err != nil || len(still) != 0 {
		t.Fatalf("the old holder still owns a lease it lost: %v %v", still, err)
	}
	if _, err := st.NextConnEpoch(ctx, id, holder); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("dial epoch of the old holder: %v", err)
	}
	if o, err := st.GetNodeOwner(ctx, id); err != nil || o.Replica.ID != other {
		t.Fatalf("owner after the take-over: %+v %v", o, err)
	}
	// A replica's row deleted (graceful stop): its leases are free.
	if err := st.DeleteReplica(ctx, other); err != nil {
		t.Fatal(err)
	}
	if o, err := st.GetNodeOwner(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("owner after the replica left: %+v %v", o, err)
	}
	leases, err := st.NodeLeases(ctx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leases {
		if l.NodeID == id && (!l.Free || l.Owner != "") {
			t.Fatalf("lease after the replica left: %+v", l)
		}
	}
}
