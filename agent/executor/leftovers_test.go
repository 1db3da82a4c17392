package executor

import (
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/agent/runtime"
	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/protocol"
)

// TestSyncRebuildsAnUnknownDeploymentFromZero: an agent that lost its
// state (a new agent pod, a wiped data dir under the same node name) gets
// a sync that wants a deployment it does not know while the runtime still
// holds objects of it, among them one the pipeline would never make (a
// plugin workload that outlived the agent that started it). The sync
// removes all of them and builds the deployment once: running again, with
// exactly the pipeline's objects and nothing of the leftovers.
func TestSyncRebuildsAnUnknownDeploymentFromZero(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := testutil.Context(t, 4*time.Minute)
	id := int64(time.Now().UnixNano()%1e6 + 8000000)
	spec := specOf(id, []protocol.Node{webNode("web", nil)}, nil, demoWebImage, nil)
	si := spec.Services["web"]
	si.Resources = protocol.Resources{CPU: 0.25, MemoryMB: 32} // leaves room in the budget (a quota on Kubernetes) for the stray
	spec.Services["web"] = si
	if err := e.ex.Deploy(ctx, protocol.DeployRequest{Spec: spec}); err != nil {
		t.Fatal(err)
	}
	if ds := e.rec.waitDeployment(t, ctx, id, protocol.StatusRunning, protocol.StatusFailed); ds.Status != protocol.StatusRunning {
		t.Fatalf("%s: %s", ds.Status, ds.Reason)
	}
	want := len(e.objects(id))

	// A workload of the deployment no pipeline node accounts for.
	net, err := e.rt.EnsureNetwork(ctx, runtime.NetworkSpec{DeploymentID: id, Resources: spec.Resources})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.rt.StartService(ctx, runtime.ServiceSpec{
		DeploymentID: id, Service: "stray", Image: demoWebImage, Ports: []int{8080}, Network: net.Name,
		Resources: protocol.Resources{CPU: 0.1, MemoryMB: 16},
	}); err != nil {
		t.Fatal(err)
	}
	strays := func() []string {
		var out []string
		for _, o := range e.objects(id) {
			if strings.Contains(o, "stray") {
				out = append(out, o)
			}
		}
		return out
	}
	if len(strays()) == 0 {
		t.Fatalf("the stray workload is not among the deployment's objects: %v", e.objects(id))
	}

	// The agent forgets the deployment (its state is gone).
	if err := e.st.Delete(id); err != nil {
		t.Fatal(err)
	}
	runningBefore := e.rec.countDeployment(id, protocol.StatusRunning)
	if _, err := e.ex.Sync(ctx, protocol.SyncRequest{Deployments: []protocol.DeploySpec{spec}}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, ctx, 100*time.Millisecond, "the deployment running again after the sync", func() bool {
		return e.rec.countDeployment(id, protocol.StatusRunning) > runningBefore ||
			e.rec.countDeployment(id, protocol.StatusFailed) > 0
	})
	if n := e.rec.countDeployment(id, protocol.StatusFailed); n > 0 {
		t.Fatalf("the rebuilt deployment failed: %s", e.rec.allJSON())
	}
	if s := strays(); len(s) > 0 {
		t.Fatalf("the sync rebuilt the deployment beside leftovers: %v", s)
	}
	if got := e.objects(id); len(got) != want {
		t.Fatalf("objects after the rebuild %v: %d, want %d as after the first deploy", got, len(got), want)
	}
	if err := e.ex.Delete(ctx, protocol.DeleteRequest{DeploymentID: id}); err != nil {
		t.Fatal(err)
	}
	e.rec.waitDeployment(t, ctx, id, protocol.StatusDeleted)
	e.assertNothingLeft(id)
}

// countDeployment counts the deployment.status events of id with status.
func (r *recorder) countDeployment(id int64, status string) int {
	evs, _ := r.snapshot()
	n := 0
	for _, e := range evs {
		if ds, ok := e.Body.(protocol.DeploymentStatus); ok && ds.DeploymentID == id && ds.Status == status {
			n++
		}
	}
	return n
}
