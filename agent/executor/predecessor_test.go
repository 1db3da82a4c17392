package executor

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/protocol"
)

// byUID lists, through the docker CLI, every object labelled with node uid
// as "kind name node=<nullops.node> dep=<nullops.deployment>".
func byUID(t *testing.T, uid string) []string {
	t.Helper()
	f := []string{"--filter", "label=nullops.node_uid=" + uid}
	var out []string
	for _, q := range [][]string{
		{"ps", "-a", "--format", `container {{.Names}} node={{.Label "nullops.node"}} dep={{.Label "nullops.deployment"}}`},
		{"network", "ls", "--format", `network {{.Name}} node={{.Label "nullops.node"}} dep={{.Label "nullops.deployment"}}`},
		{"volume", "ls", "--format", `volume {{.Name}} node={{.Label "nullops.node"}} dep={{.Label "nullops.deployment"}}`},
	} {
		args := append(append(append([]string{}, q[:len(q)-2]...), f...), q[len(q)-2:]...)
		for _, l := range strings.Split(testutil.Docker(t, args...), "\n") {
			if strings.TrimSpace(l) != "" {
				out = append(out, l)
			}
		}
	}
	sort.Strings(out)
	return out
}

// TestSyncReplacesPredecessorObjects: an agent of a node runs two
// deployments, then dies with its data dir (its containers keep running,
// labelled with its instance). A fresh agent on the same daemon — another
// instance label, empty state — receives the node's sync with the same node
// uid and one of the two deployments still desired: everything its
// predecessor made is removed, the desired deployment runs again exactly
// once (one container per service, one network, all its own), the other is
// gone, and the other node's objects are untouched.
func TestSyncReplacesPredecessorObjects(t *testing.T) {
	requireDocker(t, "lists objects with the docker CLI")
	ctx := testutil.Context(t, 4*time.Minute)
	uid := fmt.Sprintf("uid%dx", time.Now().UnixNano())
	base := time.Now().UnixNano()%1e6 + 7000000
	keep, drop := base, base+1
	spec := func(id int64) protocol.DeploySpec {
		return specOf(id, []protocol.Node{webNode("db", nil), webNode("api", func(n *protocol.Node) { n.Ingress = true })},
			[][2]string{{"db", "api"}}, demoWebImage, nil)
	}

	old := newEnv(t, Config{})
	if _, err := old.ex.Sync(ctx, protocol.SyncRequest{Deployments: []protocol.DeploySpec{spec(keep), spec(drop)}, NodeUID: uid}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{keep, drop} {
		if ds := old.rec.waitDeployment(t, ctx, id, protocol.StatusRunning, protocol.StatusFailed); ds.Status != protocol.StatusRunning {
			t.Fatalf("deployment %d: %s: %s", id, ds.Status, ds.Reason)
		}
	}
	before := byUID(t, uid)
	if len(before) != 6 { // 2 × (db, api, network)
		t.Fatalf("objects of the first agent: %v", before)
	}
	// Another node's deployment on the same daemon (same deployment id).
	other := newEnv(t, Config{})
	if err := other.ex.Deploy(ctx, protocol.DeployRequest{Spec: spec(keep)}); err != nil {
		t.Fatal(err)
	}
	if ds := other.rec.waitDeployment(t, ctx, keep, protocol.StatusRunning, protocol.StatusFailed); ds.Status != protocol.StatusRunning {
		t.Fatalf("other node: %s: %s", ds.Status, ds.Reason)
	}
	otherObjs := other.objects(keep)

	// The agent dies; its containers keep running.
	old.ex.Close()

	fresh := newEnv(t, Config{})
	reply, err := fresh.ex.Sync(ctx, protocol.SyncRequest{Deployments: []protocol.DeploySpec{spec(keep)}, NodeUID: uid})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		fmt.Sprintf("nullops-%s-d%d-api", old.node, keep), fmt.Sprintf("nullops-%s-d%d", old.node, keep),
		fmt.Sprintf("nullops-%s-d%d-db", old.node, drop), fmt.Sprintf("nullops-%s-d%d", old.node, drop),
	} {
		if !slices.Contains(reply.RemovedOrphans, name) {
			t.Errorf("sync reply's removed objects %v lack %s", reply.RemovedOrphans, name)
		}
	}
	if ds := fresh.rec.waitDeployment(t, ctx, keep, protocol.StatusRunning, protocol.StatusFailed); ds.Status != protocol.StatusRunning {
		t.Fatalf("re-created deployment: %s: %s", ds.Status, ds.Reason)
	}
	want := []string{
		fmt.Sprintf("container nullops-%s-d%d-api node=%s dep=%d", fresh.node, keep, fresh.node, keep),
		fmt.Sprintf("container nullops-%s-d%d-db node=%s dep=%d", fresh.node, keep, fresh.node, keep),
		fmt.Sprintf("network nullops-%s-d%d node=%s dep=%d", fresh.node, keep, fresh.node, keep),
	}
	if got := byUID(t, uid); !slices.Equal(got, want) {
		t.Fatalf("objects of the node after the fresh agent's sync:\n got %v\nwant %v", got, want)
	}
	api, ok := fresh.rec.serviceState(keep, "api")
	if !ok || api.HostPort == 0 {
		t.Fatalf("no service state with a host port for api: %+v", api)
	}
	if code, body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", api.HostPort)); code != 200 || !strings.Contains(body, "hello from") {
		t.Fatalf("re-created api answered %d %q", code, body)
	}
	if got := other.objects(keep); !slices.Equal(got, otherObjs) {
		t.Errorf("the other node's objects changed: %v → %v", otherObjs, got)
	}

	// A second sync changes nothing: exactly once.
	reply, err = fresh.ex.Sync(ctx, protocol.SyncRequest{Deployments: []protocol.DeploySpec{spec(keep)}, NodeUID: uid})
	if err != nil {
		t.Fatal(err)
	}
	if len(reply.RemovedOrphans) != 0 || len(reply.Deployments) != 1 || reply.Deployments[0].Status != protocol.StatusRunning {
		t.Fatalf("second sync: %+v", reply)
	}
	if got := byUID(t, uid); !slices.Equal(got, want) {
		t.Fatalf("objects after a second sync: %v", got)
	}
}
