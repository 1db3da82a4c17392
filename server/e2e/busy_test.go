package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/restapi"
)

// burnCPU keeps every CPU of the machine busy with real processes until the
// test ends or limit passes, whichever is first.
func burnCPU(t *testing.T, limit time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	var cmds []*exec.Cmd
	for range runtime.NumCPU() {
		cmd := exec.CommandContext(ctx, "sh", "-c", "while :; do :; done")
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatalf("start CPU burner: %v", err)
		}
		cmds = append(cmds, cmd)
	}
	t.Cleanup(func() {
		cancel()
		for _, c := range cmds {
			_ = c.Wait()
		}
	})
}

// TestBusyCPUDoesNotRefuse: on a node whose CPUs another process keeps
// busy, a deployment is placed and runs; only an environment that counts
// other CPU use in full (cpu_overcommit 1) refuses it, naming the CPUs.
//
// Not parallel: it keeps every CPU of the machine busy on purpose, which
// would slow the other tests' agents past their deadlines.
func TestBusyCPUDoesNotRefuse(t *testing.T) {
	w := setup(t)
	env := idOf(t, w.admin.post("/environments", map[string]any{"name": "busy", "base_domain": "e2e.test"}).want(t, 201))
	var e struct {
		CPUOvercommit float64 `json:"cpu_overcommit"`
	}
	w.admin.get(fmt.Sprintf("/environments/%d", env)).want(t, 200).decode(t, &e)
	if e.CPUOvercommit != 1.5 {
		t.Fatalf("new environment has cpu_overcommit %v, want the default 1.5", e.CPUOvercommit)
	}
	project := w.newProject(t, "busy-one", 1, "", webOnlyGraph())
	// 2 CPUs advertised (a bigger host keeps the rest back, and other use
	// counts only beyond it); memory: all the host has.
	a, nodeID := w.addNode(t, env, "busy-1", 2, 1<<20, realUsage)

	burnCPU(t, 5*time.Minute)
	// Wait until the node reports the load: the instantaneous figure near
	// all its CPUs, and the smoothed other use above 1.2 (past what a
	// 1-CPU request leaves on a node counting it in full).
	var cpus, used, other float64
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var n struct {
			Capacity struct {
				CPUs float64 `json:"cpus"`
			} `json:"capacity"`
			Usage struct {
				CPUsUsed  float64 `json:"cpus_used"`
				OtherCPUs float64 `json:"other_cpus"`
			} `json:"usage"`
		}
		w.admin.get(fmt.Sprintf("/nodes/%d", nodeID)).want(t, 200).decode(t, &n)
		cpus, used, other = n.Capacity.CPUs, n.Usage.CPUsUsed, n.Usage.OtherCPUs
		if cpus > 0 && used >= 0.9*cpus && other > 1.2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node never reported the CPU burner: %v of %v CPUs used, other %v", used, cpus, other)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("node busy: %.2f of %.0f CPUs used, smoothed other use %.2f", used, cpus, other)

	body := map[string]any{"project_id": project, "environment_id": env, "name": "busy-a", "tags": map[string]string{"e2e-web": "v1.0.0"}}
	// Counting other use in full, the busy node has no CPU to give.
	w.admin.put(fmt.Sprintf("/environments/%d", env), map[string]any{"name": "busy", "base_domain": "e2e.test", "cpu_overcommit": 1}).want(t, 200)
	r := w.admin.post("/deployments", body)
	if r.Status != 409 || !strings.HasPrefix(r.errorMessage(), "no_capacity: no node in environment busy has 1.0 CPU free (best: busy-1 with ") {
		t.Fatalf("with cpu_overcommit 1: %d %s", r.Status, r.Body)
	}
	// With the default overcommit the same deployment is placed and runs.
	w.admin.put(fmt.Sprintf("/environments/%d", env), map[string]any{"name": "busy", "base_domain": "e2e.test"}).want(t, 200)
	var d restapi.Deployment
	w.admin.post("/deployments", body).want(t, 202).decode(t, &d)
	if d.Node != "busy-1" || d.CPU != 1 {
		t.Fatalf("placed on %q with %v CPUs, want busy-1 with 1", d.Node, d.CPU)
	}
	waitStatus(t, w.admin, d.ID, "running", 180*time.Second)
	// Reservations still count strictly, whatever the overcommit: a second
	// 1-CPU deployment fits (2 of 2 CPUs reserved), a third does not.
	w.admin.put(fmt.Sprintf("/environments/%d", env), map[string]any{"name": "busy", "base_domain": "e2e.test", "cpu_overcommit": 10}).want(t, 200)
	body["name"] = "busy-b"
	var d2 restapi.Deployment
	w.admin.post("/deployments", body).want(t, 202).decode(t, &d2)
	body["name"] = "busy-c"
	if r := w.admin.post("/deployments", body); r.Status != 409 || !strings.Contains(r.errorMessage(), "(best: busy-1 with 0 of 2 free)") {
		t.Fatalf("third 1-CPU deployment on a 2-CPU node: %d %s", r.Status, r.Body)
	}
	for _, x := range []restapi.Deployment{d, d2} {
		w.admin.del(fmt.Sprintf("/deployments/%d", x.ID)).want(t, 202)
	}
	for _, x := range []restapi.Deployment{d, d2} {
		waitStatus(t, w.admin, x.ID, "deleted", 120*time.Second)
		waitNoObjects(t, a.node, x.ID)
	}
}
