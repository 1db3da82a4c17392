package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/restapi"
)

// crashView is what the truth test reads of a deployment.
type crashView struct {
	Status         string `json:"status"`
	Reason         string `json:"reason"`
	Degraded       bool   `json:"degraded"`
	DegradedReason string `json:"degraded_reason"`
	Services       []struct {
		ID           string `json:"id"`
		Health       string `json:"health"`
		State        string `json:"state"`
		RestartCount int    `json:"restart_count"`
		ExitCode     *int   `json:"exit_code"`
		LastExitOOM  bool   `json:"last_exit_oom"`
		LastLines    string `json:"last_lines"`
	} `json:"services"`
}

// TestCrashingServicesAreVisible: a service exiting 3 in a loop and one
// killed by the OOM killer under Docker's unless-stopped policy show, through
// the API, their state, restart count, exit code and masked last lines, and
// their deployments as degraded with the reason.
func TestCrashingServicesAreVisible(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	admin := login(t, srv.URL, adminUser, adminPass)
	unique := newUnique()
	reg := testutil.StartRegistry(t, "e2e", "e2e-registry-pw")
	// A tag of its own: the misbehaviour switches must be in the image.
	web := testutil.ScratchImage(t, "./scripts/images/demo-web", "nullops-e2e/demo-web:truth")
	reg.Push(t, web, "e2e/crashy", "1")
	regID := idOf(t, admin.post("/registries", map[string]any{
		"name": "local", "url": "http://" + reg.Host, "username": "e2e", "password": "e2e-registry-pw", "insecure": true,
	}).want(t, 201))
	admin.post("/services", map[string]any{
		"name": "crashy", "registry_id": regID, "image": "e2e/crashy", "tag_mode": "pinned", "tag": "1",
		"ports": []int{8080}, "health": map[string]any{"http": "/healthz"},
	}).want(t, 201)
	envID := idOf(t, admin.post("/environments", map[string]any{"name": "qa", "base_domain": "e2e.test", "default_ttl": "1h"}).want(t, 201))
	w := &world{srv: srv, admin: admin, unique: unique}
	w.addNode(t, envID, "truth", 0, 0)

	const secret = "crash-token-value-4711"
	project := func(name string, memMB int, env map[string]any) int64 {
		id := idOf(t, admin.post("/projects", map[string]any{"name": name, "cpu": 0.25, "memory_mb": memMB}).want(t, 201))
		admin.post("/secrets", map[string]any{"name": "tok", "project_id": id, "value": secret}).want(t, 201)
		admin.put(fmt.Sprintf("/projects/%d/pipeline", id), map[string]any{
			"nodes": []map[string]any{{"id": "web", "kind": "service", "service": "crashy", "port": 8080, "ingress": true, "env": env}},
			"edges": [][2]string{},
		}).want(t, 201)
		return id
	}
	loop := project("loop", 64, map[string]any{"EXIT_AFTER": "2s", "EXIT_CODE": "3", "CRASH_TOKEN": "${secrets.tok}"})
	oom := project("oom", 32, map[string]any{"ALLOCATE_MB": "512", "ALLOCATE_AFTER": "2s"})

	var loopD, oomD restapi.Deployment
	admin.post("/deployments", map[string]any{"project_id": loop, "environment_id": envID, "name": "loop"}).want(t, 202).decode(t, &loopD)
	admin.post("/deployments", map[string]any{"project_id": oom, "environment_id": envID, "name": "oom"}).want(t, 202).decode(t, &oomD)

	// Each deployment passes its health check, then its service crashes.
	waitCrash := func(id int64, ok func(v crashView) bool) crashView {
		t.Helper()
		deadline := time.Now().Add(3 * time.Minute)
		for {
			var v crashView
			admin.get(fmt.Sprintf("/deployments/%d", id)).want(t, 200).decode(t, &v)
			if v.Status == "failed" {
				t.Fatalf("deployment %d failed: %s", id, v.Reason)
			}
			if len(v.Services) == 1 && ok(v) {
				return v
			}
			if time.Now().After(deadline) {
				t.Fatalf("deployment %d never showed the crash: %+v", id, v)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	v := waitCrash(loopD.ID, func(v crashView) bool {
		s := v.Services[0]
		return v.Degraded && s.ExitCode != nil && s.RestartCount >= 1 && s.LastLines != ""
	})
	s := v.Services[0]
	if v.Status != "running" || *s.ExitCode != 3 || s.LastExitOOM {
		t.Fatalf("crash loop: %+v", v)
	}
	if !strings.Contains(v.DegradedReason, "service web") || !strings.Contains(v.DegradedReason, "exit code 3") {
		t.Fatalf("degraded reason %q", v.DegradedReason)
	}
	if !strings.Contains(s.LastLines, "exiting with code 3 on purpose") || !strings.Contains(s.LastLines, "token=***") {
		t.Fatalf("last lines %q", s.LastLines)
	}
	waitCrash(loopD.ID, func(v crashView) bool {
		s := v.Services[0]
		return (s.State == "restarting" || s.State == "exited") && s.Health != "healthy"
	})
	// The list says so too.
	var list struct {
		Items []struct {
			ID             int64  `json:"id"`
			Degraded       bool   `json:"degraded"`
			DegradedReason string `json:"degraded_reason"`
		} `json:"items"`
	}
	admin.get("/deployments").want(t, 200).decode(t, &list)
	for _, it := range list.Items {
		if it.ID == loopD.ID && (!it.Degraded || !strings.Contains(it.DegradedReason, "service web")) {
			t.Fatalf("list item: %+v", it)
		}
	}

	v = waitCrash(oomD.ID, func(v crashView) bool {
		s := v.Services[0]
		return v.Degraded && s.ExitCode != nil && s.LastExitOOM
	})
	if s := v.Services[0]; *s.ExitCode != 137 || !strings.Contains(s.LastLines, "allocating 512 MiB") {
		t.Fatalf("OOM: %+v", v)
	}
	if !strings.Contains(v.DegradedReason, "OOM killer") {
		t.Fatalf("degraded reason %q", v.DegradedReason)
	}
	waitCrash(oomD.ID, func(v crashView) bool { return v.Services[0].State == "oom-killed" })

	// No secret value left the agent.
	for _, id := range []int64{loopD.ID, oomD.ID} {
		if r := admin.get(fmt.Sprintf("/deployments/%d", id)); strings.Contains(string(r.Body), secret) {
			t.Fatalf("deployment %d shows the secret value: %s", id, r.Body)
		}
	}
	admin.del(fmt.Sprintf("/deployments/%d", loopD.ID))
	admin.del(fmt.Sprintf("/deployments/%d", oomD.ID))
}

// TestDeployTimeoutFailsAndRollsBack: a deployment still deploying after
// its project's deploy_timeout is failed with the reason, its pipeline
// stopped and rolled back on the node, and can be retried.
func TestDeployTimeoutFailsAndRollsBack(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	admin := login(t, srv.URL, adminUser, adminPass)
	unique := newUnique()
	reg := testutil.StartRegistry(t, "e2e", "e2e-registry-pw")
	plugin := testutil.ScratchImage(t, "./scripts/images/test-plugin", "nullops-e2e/test-plugin:truth")
	reg.Push(t, plugin, "e2e/slow", "1")
	regID := idOf(t, admin.post("/registries", map[string]any{
		"name": "local", "url": "http://" + reg.Host, "username": "e2e", "password": "e2e-registry-pw", "insecure": true,
	}).want(t, 201))
	admin.post("/plugins", map[string]any{
		"name": "slow", "registry_id": regID, "image": "e2e/slow", "tag": "1", "cpu": 0.1, "memory_mb": 32, "timeout": "30m",
	}).want(t, 201)
	envID := idOf(t, admin.post("/environments", map[string]any{"name": "qa", "base_domain": "e2e.test", "default_ttl": "1h"}).want(t, 201))
	w := &world{srv: srv, admin: admin, unique: unique}
	a, _ := w.addNode(t, envID, "slow", 0, 0)

	// Out of range limits are refused; the default is 30m.
	admin.post("/projects", map[string]any{"name": "bad", "deploy_timeout": "10s"}).want(t, 400)
	var p struct {
		ID            int64  `json:"id"`
		DeployTimeout string `json:"deploy_timeout"`
	}
	admin.post("/projects", map[string]any{"name": "dflt"}).want(t, 201).decode(t, &p)
	if p.DeployTimeout != "30m0s" {
		t.Fatalf("default deploy_timeout %q", p.DeployTimeout)
	}
	admin.post("/projects", map[string]any{"name": "slow", "cpu": 0.25, "memory_mb": 64, "deploy_timeout": "1m"}).want(t, 201).decode(t, &p)
	if p.DeployTimeout != "1m0s" {
		t.Fatalf("deploy_timeout %q", p.DeployTimeout)
	}
	admin.put(fmt.Sprintf("/projects/%d/pipeline", p.ID), map[string]any{
		"nodes": []map[string]any{{"id": "setup", "kind": "component", "plugin": "slow", "params": map[string]any{"mode": "sleep", "sleep": "20m"}}},
		"edges": [][2]string{},
	}).want(t, 201)

	var d restapi.Deployment
	admin.post("/deployments", map[string]any{"project_id": p.ID, "environment_id": envID, "name": "stuck"}).want(t, 202).decode(t, &d)
	waitStatus(t, admin, d.ID, "deploying", 30*time.Second)
	start := time.Now()
	// The plugin container runs meanwhile.
	testutil.WaitFor(t, testutil.Context(t, time.Minute), 200*time.Millisecond, "plugin container running", func() bool {
		return len(dockerObjects(t, a.node, d.ID)) > 1
	})
	got := waitStatus(t, admin, d.ID, "failed", 3*time.Minute)
	took := time.Since(start)
	if !strings.Contains(got.Reason, "deploying for more than 1m0s") || !strings.Contains(got.Reason, "deploy timeout") {
		t.Fatalf("reason %q", got.Reason)
	}
	if took < 30*time.Second {
		t.Fatalf("failed after %s, before its 1m timeout", took)
	}
	t.Logf("failed %s after deploying began: %s", took.Round(time.Second), got.Reason)
	waitNoObjects(t, a.node, d.ID)
	admin.del(fmt.Sprintf("/deployments/%d", d.ID))
}
