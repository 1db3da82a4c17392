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

// owners maps each live replica (by its advertised port) to the number of
// nodes whose lease it holds.
func (w *world) owners(t *testing.T, ctx context.Context, st *store.Store) map[*hacluster.Replica]int {
	t.Helper()
	rows, err := st.Pool.Query(ctx, `SELECT r.api_url, count(*) FROM nodes n JOIN replicas r ON r.id = n.owner_replica
		WHERE r.lease_expires_at > now() GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[*hacluster.Replica]int{}
	for rows.Next() {
		var u string
		var n int
		if err := rows.Scan(&u, &n); err != nil {
			t.Fatal(err)
		}
		for _, r := range w.c.Replicas {
			if strings.HasSuffix(u, fmt.Sprintf(":%d", r.Port)) {
				out[r] = n
			}
		}
	}
	return out
}

// kill -9 of the replica holding most nodes while deployments are created
// and deleted through the balancer: its nodes are leased and online again
// on the others within 15 s, every deployment ends in the state the API
// asked for, Docker runs exactly the containers the API shows, and no
// agent event is lost or applied twice.
func TestFailoverOfTheBusiestReplicaUnderLoad(t *testing.T) {
	t.Parallel()
	// Deployments of the dead replica's nodes must not turn offline
	// during the failover: the grace is longer than it.
	w := startWorld(t, 3, "--agents.offlinegrace=1m")
	w.addNodes(t, 6)
	ctx := testutil.Context(t, 5*time.Minute)
	st := openStore(t, ctx, w.db)
	var own map[*hacluster.Replica]int
	testutil.WaitFor(t, ctx, 100*time.Millisecond, "every node leased", func() bool {
		own = w.owners(t, ctx, st)
		n := 0
		for _, c := range own {
			n += c
		}
		return n == len(w.nodeIDs)
	})
	var victim *hacluster.Replica
	for r, n := range own {
		if victim == nil || n > own[victim] {
			victim = r
		}
	}
	t.Logf("leases: %v; killing %s (%d nodes)", ownersString(own), victim.Name, own[victim])

	l := &load{w: w}
	stop := make(chan struct{})
	wait := l.run(stop, 2, 60)
	// Let the load get going: the kill lands among operations in flight.
	testutil.WaitFor(t, ctx, 20*time.Millisecond, "some deployments created", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.kept)+len(l.deleted) >= 2
	})
	victim.Kill(t)
	killed := time.Now()
	testutil.WaitFor(t, ctx, 100*time.Millisecond, "every node leased by a live replica and online", func() bool {
		own := w.owners(t, ctx, st)
		n := 0
		for r, c := range own {
			if r != victim {
				n += c
			}
		}
		return n == len(w.nodeIDs) && w.onlineNodes(t) == len(w.nodeIDs)
	})
	took := time.Since(killed)
	t.Logf("all %d nodes leased by the survivors and online %s after kill -9", len(w.nodeIDs), took.Round(time.Millisecond))
	if took > 15*time.Second {
		t.Errorf("failover took %s, more than 15 s", took)
	}
	close(stop)
	wait()
	l.report(t, "failover")
	l.settle(t)
	w.eventsAppliedOnce(t)
}

func ownersString(m map[*hacluster.Replica]int) string {
	var parts []string
	for r, n := range m {
		parts = append(parts, fmt.Sprintf("%s=%d", r.Name, n))
	}
	return strings.Join(parts, " ")
}
