package hae2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/internal/testutil/hacluster"
	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/store"
)

// replicaByID finds the process of a replica row by its advertised port.
func (w *world) replicaByID(t *testing.T, ctx context.Context, st *store.Store, id string) *hacluster.Replica {
	t.Helper()
	r, err := st.GetReplica(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range w.c.Replicas {
		if strings.HasSuffix(r.APIURL, fmt.Sprintf(":%d", x.Port)) {
			return x
		}
	}
	t.Fatalf("no process advertises %s", r.APIURL)
	return nil
}

// direct is the admin's client on one replica, bypassing the balancer.
func (w *world) direct(r *hacluster.Replica) *client {
	return &client{base: r.URL(), token: w.admin.token, http: &http.Client{Timeout: time.Minute}}
}

func (w *world) createVia(t *testing.T, c *client, name string) int64 {
	t.Helper()
	return idOf(t, c.must(t, "POST", "/deployments", map[string]any{"project_id": w.project, "environment_id": w.envID, "name": name}, 202))
}

// Real nullops-server processes: a deployment created on the replica that
// does not hold the node reaches the agent through the owner, once, and
// its service log follows through that replica. The owner frozen with
// SIGSTOP loses the node to the other replica within the failover target
// (lease TTL 3 s here); thawed, it drops its connection without writing
// anything (the node may then move back to it, the replica the node
// prefers, by a graceful hand-over), and calls made on the replica without
// the node (create, delete) are forwarded to the owner.
func TestFrozenOwnerLosesItsNodesAndCallsAreForwarded(t *testing.T) {
	w := startWorld(t, 2, "--ha.leasettl=3s")
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, r := range w.c.Replicas {
			b, _ := os.ReadFile(r.Log)
			for _, l := range strings.Split(string(b), "\n") {
				if strings.Contains(l, "node_id") || strings.Contains(l, "lease") || strings.Contains(l, "forward") {
					t.Logf("%s: %s", r.Name, l)
				}
			}
		}
	})
	w.addNodes(t, 1)
	ctx := testutil.Context(t, 5*time.Minute)
	st, err := store.Open(ctx, w.db, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	nodeID := w.nodeIDs[0]
	node := func() store.Node {
		n, err := st.GetNode(ctx, nodeID)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	testutil.WaitFor(t, ctx, 50*time.Millisecond, "the node held by a replica", func() bool {
		n := node()
		return n.OwnerReplica != "" && n.LeaseLive && n.Status == store.NodeOnline
	})
	ownerID := node().OwnerReplica
	owner := w.replicaByID(t, ctx, st, ownerID)
	var other *hacluster.Replica
	for _, r := range w.c.Replicas {
		if r != owner {
			other = r
		}
	}
	viaOther := w.direct(other)
	// The replica without the node reports it from the database: online
	// and connected (through its owner).
	var seen restapi.Node
	if err := json.Unmarshal(viaOther.must(t, "GET", fmt.Sprintf("/nodes/%d", nodeID), nil, 200), &seen); err != nil {
		t.Fatal(err)
	}
	if seen.Status != store.NodeOnline || !seen.Connected {
		t.Fatalf("the node seen from the replica without it: status %s connected %t", seen.Status, seen.Connected)
	}

	// Created on the replica without the node: forwarded to the owner.
	d1 := w.createVia(t, viaOther, "fwd-1")
	w.waitStatus(t, ctx, d1, "running")
	if n := w.runningContainers(t)[fmt.Sprint(d1)]; n != 1 {
		t.Fatalf("deployment %d has %d running containers", d1, n)
	}
	// Its log follows through the replica without the node.
	req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s%s/deployments/%d/logs?service=web&follow=true&tail=100", other.URL(), restapi.Prefix, d1), nil)
	req.Header.Set("Authorization", "Bearer "+w.admin.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("logs through the other replica: %d", resp.StatusCode)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	resp.Body.Close()
	if err != nil || !strings.Contains(line, "listening") {
		t.Fatalf("first log line through the other replica: %q %v", line, err)
	}

	// Freeze the owner: the other replica takes the node over.
	epoch := node().ConnEpoch
	start := time.Now()
	owner.Freeze()
	thawed := false
	defer func() {
		if !thawed {
			owner.Thaw()
		}
	}()
	testutil.WaitFor(t, ctx, 50*time.Millisecond, "the node taken over", func() bool {
		n := node()
		return n.OwnerReplica != ownerID && n.OwnerReplica != "" && n.ConnEpoch > epoch+1 && n.Status == store.NodeOnline
	})
	d2 := w.createVia(t, viaOther, "after-freeze")
	w.waitStatus(t, ctx, d2, "running")
	took := time.Since(start)
	t.Logf("frozen owner: node taken over and a deployment running through the new owner %s after SIGSTOP (lease TTL 3s)", took)
	if took > 15*time.Second+2*time.Minute {
		t.Fatalf("failover took %s", took)
	}

	owner.Thaw()
	thawed = true
	// Thawed, it finds its lease gone and drops the connection without
	// writing: the node's row stays online throughout.
	testutil.WaitFor(t, ctx, 20*time.Millisecond, "the thawed replica to drop the node", func() bool {
		if n := node(); n.Status != store.NodeOnline {
			t.Fatalf("node %s (%s) after the thaw", n.Status, n.StatusReason)
		}
		b, _ := os.ReadFile(owner.Log)
		return strings.Contains(string(b), "dropping the node") || strings.Contains(string(b), "letting go")
	})
	// The node may move back to the replica it prefers, which is live
	// again (a graceful hand-over); wait until it settles.
	var settled store.Node
	stable := time.Now()
	testutil.WaitFor(t, ctx, 50*time.Millisecond, "the node settled on one replica", func() bool {
		n := node()
		if n.OwnerReplica != settled.OwnerReplica || n.ConnEpoch != settled.ConnEpoch || !n.LeaseLive || n.Status != store.NodeOnline {
			settled, stable = n, time.Now()
			return false
		}
		return time.Since(stable) > 2*time.Second
	})
	nonOwner := w.direct(owner)
	if w.replicaByID(t, ctx, st, settled.OwnerReplica) == owner {
		nonOwner = viaOther
	}
	// Calls on the replica without the node go to its owner.
	d3 := w.createVia(t, nonOwner, "after-thaw")
	w.waitStatus(t, ctx, d3, "running")
	nonOwner.must(t, "DELETE", fmt.Sprintf("/deployments/%d", d1), nil, 202)
	w.waitStatus(t, ctx, d1, "deleted")
	testutil.WaitFor(t, ctx, 100*time.Millisecond, "the deleted deployment's container gone", func() bool {
		return w.runningContainers(t)[fmt.Sprint(d1)] == 0
	})
	got := w.runningContainers(t)
	if got[fmt.Sprint(d1)] != 0 || got[fmt.Sprint(d2)] != 1 || got[fmt.Sprint(d3)] != 1 {
		t.Fatalf("running containers by deployment: %v", got)
	}
}
