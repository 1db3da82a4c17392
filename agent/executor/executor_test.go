package executor

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/protocol"
)

const dbPassword = "pw-Zq81-secret-value"

// TestThreeNodePipelineRunning: service → plugin → service that needs the
// plugin's output reaches running; images are pulled from a registry with
// credentials; labels, limits, published port, in-network names and
// isolation between deployments are checked; secrets never reach the
// agent's disk or logs; delete removes everything.
func TestThreeNodePipelineRunning(t *testing.T) {
	requireDocker(t, "pulls after docker rmi and inspects containers and networks with the docker CLI")
	e := newEnv(t, Config{})
	ctx := testutil.Context(t, 4*time.Minute)
	reg := testutil.StartRegistry(t, "agent", "reg-pass-77")
	ref := reg.Push(t, demoWebImage, "exec/web", e.node)[0]
	testutil.Docker(t, "rmi", ref) // the agent has to pull it
	auth := &protocol.RegistryAuth{ServerAddress: reg.Host, Username: "agent", Password: "reg-pass-77"}

	idA := int64(time.Now().UnixNano()%1e6 + 1000)
	spec := specOf(idA, []protocol.Node{
		webNode("db", nil),
		pluginNode("mkdb", map[string]any{
			"dial":    "db:8080",
			"stderr":  "connecting with password ${secrets.db_password}",
			"outputs": map[string]any{"url": "postgres://app:${secrets.db_password}@db:8080/app"},
		}),
		webNode("api", func(n *protocol.Node) {
			n.Ingress = true
			n.Env = map[string]string{"REQUIRE_DATABASE_URL": "1", "DATABASE_URL": "${steps.mkdb.outputs.url}"}
		}),
	}, [][2]string{{"db", "mkdb"}, {"mkdb", "api"}}, ref, auth)
	spec.Secrets = map[string]string{"db_password": dbPassword}
	if err := e.ex.Deploy(ctx, protocol.DeployRequest{Spec: spec}); err != nil {
		t.Fatal(err)
	}
	if ds := e.rec.waitDeployment(t, ctx, idA, protocol.StatusRunning, protocol.StatusFailed); ds.Status != protocol.StatusRunning {
		t.Fatalf("deployment %s: %s (step %s)", ds.Status, ds.Reason, ds.FailedStep)
	}
	for _, step := range []string{"db", "mkdb", "api"} {
		var seq []string
		for _, s := range e.rec.steps(idA, step) {
			seq = append(seq, s.Status)
			if s.At.IsZero() {
				t.Errorf("step %s event without timestamp", step)
			}
		}
		if !slices.Equal(seq, []string{"pending", "running", "succeeded"}) {
			t.Errorf("step %s went %v, want pending→running→succeeded", step, seq)
		}
	}
	if got := e.rec.stepLogs(idA, "mkdb"); !strings.Contains(got, "connecting with password ***") || !strings.Contains(got, "reached db:8080") {
		t.Errorf("plugin stderr not streamed (masked) as step log: %q", got)
	}

	// Labels and limits, read back from Docker.
	name := fmt.Sprintf("nullops-%s-d%d-api", e.node, idA)
	var ins []struct {
		Config struct {
			Labels map[string]string
			Env    []string
		}
		HostConfig struct {
			NanoCpus      int64
			Memory        int64
			RestartPolicy struct{ Name string }
		}
		NetworkSettings struct {
			Networks map[string]struct {
				Aliases   []string
				IPAddress string
			}
		}
	}
	if err := json.Unmarshal([]byte(testutil.Docker(t, "inspect", name)), &ins); err != nil || len(ins) != 1 {
		t.Fatalf("inspect %s: %v", name, err)
	}
	c := ins[0]
	wantLabels := map[string]string{"nullops.node": e.node, "nullops.deployment": fmt.Sprint(idA), "nullops.service": "api", "nullops.managed": "true"}
	for k, v := range wantLabels {
		if c.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, c.Config.Labels[k], v)
		}
	}
	if c.HostConfig.NanoCpus != 5e8 || c.HostConfig.Memory != 64<<20 || c.HostConfig.RestartPolicy.Name != "unless-stopped" {
		t.Errorf("limits/restart: cpus=%d mem=%d restart=%q", c.HostConfig.NanoCpus, c.HostConfig.Memory, c.HostConfig.RestartPolicy.Name)
	}
	netName := fmt.Sprintf("nullops-%s-d%d", e.node, idA)
	if !slices.Contains(c.NetworkSettings.Networks[netName].Aliases, "api") {
		t.Errorf("api is not aliased by its node id on %s: %+v", netName, c.NetworkSettings.Networks)
	}

	// Exposed service answers on its published port and got the output.
	ss, ok := e.rec.serviceState(idA, "api")
	if !ok || ss.HostPort == 0 || !ss.Running || ss.ContainerPort != 8080 {
		t.Fatalf("service state of api: %+v (found %v)", ss, ok)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", ss.HostPort)
	code, body := httpGet(t, base+"/env")
	if code != 200 || !strings.Contains(body, "postgres://app:"+dbPassword+"@db:8080/app") {
		t.Fatalf("api /env (%d) lacks DATABASE_URL from the plugin output: %s", code, body)
	}
	if _, ok := e.rec.serviceState(idA, "db"); !ok {
		t.Error("no service.state for db")
	}
	// Services reach each other by node id.
	if code, body := httpGet(t, base+"/dial?addr=db:8080"); code != 200 {
		t.Fatalf("api cannot reach db by name: %d %s", code, body)
	}

	// A second deployment cannot reach the first.
	idB := idA + 1
	specB := specOf(idB, []protocol.Node{webNode("web", func(n *protocol.Node) { n.Ingress = true })}, nil, ref, auth)
	if err := e.ex.Deploy(ctx, protocol.DeployRequest{Spec: specB}); err != nil {
		t.Fatal(err)
	}
	if ds := e.rec.waitDeployment(t, ctx, idB, protocol.StatusRunning, protocol.StatusFailed); ds.Status != protocol.StatusRunning {
		t.Fatalf("deployment B %s: %s", ds.Status, ds.Reason)
	}
	ssB, _ := e.rec.serviceState(idB, "web")
	dbIP := testutil.Docker(t, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", fmt.Sprintf("nullops-%s-d%d-db", e.node, idA))
	// Docker 20.10 programs its isolation rules per bridge and races when
	// many networks are created and removed at once (other tests make
	// hundreds), so a new bridge can be reachable for a moment: require
	// isolation within a few seconds, not on the first packet.
	// "A few seconds" on an idle machine; a saturated one (load far above
	// the CPU count) can take much longer to program the rules.
	isolationDeadline := time.Now().Add(2 * time.Minute)
	for attempt := 1; ; attempt++ {
		code, body = httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/dial?addr=%s:8080", ssB.HostPort, dbIP))
		if code != 200 || time.Now().After(isolationDeadline) {
			if attempt > 1 {
				t.Logf("deployment B could reach A's db for %d attempt(s) before Docker's isolation rules applied", attempt-1)
			}
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	netIDs := []string{
		testutil.Docker(t, "network", "inspect", "-f", "{{.Id}}", netName),
		testutil.Docker(t, "network", "inspect", "-f", "{{.Id}}", fmt.Sprintf("nullops-%s-d%d", e.node, idB)),
	}
	if misordered, why := dockerRulesMisordered(t, netIDs...); code == 200 && misordered {
		// Docker's own rules are out of order for these bridges (a race of
		// Docker 20.10 under concurrent network creation): not the agent's doing.
		t.Logf("deployment B reached A's db at %s, but Docker's isolation rules are out of order on this host: %s; isolation check skipped", dbIP, why)
	} else if code == 200 && !dockerIsolatesNetworks(t) {
		// Docker's own inter-network isolation (iptables DOCKER-ISOLATION
		// chains) is not enforced by this host's kernel: two plain Docker
		// networks reach each other too, so this is not the agent's doing.
		t.Logf("deployment B reached A's db at %s, but this host does not enforce Docker's inter-network isolation at all (plain docker networks reach each other); isolation check skipped", dbIP)
	} else if code == 200 {
		script := fmt.Sprintf("iptables -S FORWARD | head -12; iptables -S DOCKER-ISOLATION-STAGE-1 | grep -E 'br-%[1]s|br-%[2]s'; iptables -S DOCKER-ISOLATION-STAGE-2 | grep -E 'br-%[1]s|br-%[2]s'", netIDs[0][:12], netIDs[1][:12])
		rules, _ := exec.Command("sh", "-c", script).CombinedOutput()
		t.Fatalf("deployment B reached deployment A's db at %s: %s\nnetworks: A %s, B %s\nisolation rules:\n%s", dbIP, body,
			testutil.Docker(t, "network", "inspect", "-f", "{{.Id}} {{range .IPAM.Config}}{{.Subnet}}{{end}}", netName),
			testutil.Docker(t, "network", "inspect", "-f", "{{.Id}} {{range .IPAM.Config}}{{.Subnet}}{{end}}", fmt.Sprintf("nullops-%s-d%d", e.node, idB)),
			rules)
	}
	if code, _ := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/dial?addr=db:8080", ssB.HostPort)); code == 200 {
		t.Fatal("deployment B resolved and reached A's db by name")
	}

	// Secrets: not in the data dir, not in the agent's logs, not in events.
	e.grepDataDir(dbPassword)
	e.grepDataDir("reg-pass-77")
	if strings.Contains(e.logs.String(), dbPassword) || strings.Contains(e.logs.String(), "reg-pass-77") {
		t.Error("secret value in the agent's logs")
	}
	if all := e.rec.allJSON(); strings.Contains(all, dbPassword) || strings.Contains(all, "reg-pass-77") {
		t.Error("secret value in emitted (journaled) events")
	}
	mk := e.rec.steps(idA, "mkdb")
	if out := mk[len(mk)-1].Outputs["url"]; out != "postgres://app:${secrets.db_password}@db:8080/app" {
		t.Errorf("reported output = %q, want the secret as a placeholder", out)
	}

	// Delete removes everything.
	for _, id := range []int64{idA, idB} {
		if err := e.ex.Delete(ctx, protocol.DeleteRequest{DeploymentID: id}); err != nil {
			t.Fatal(err)
		}
		e.rec.waitDeployment(t, ctx, id, protocol.StatusDeleted)
		e.assertNothingLeft(id)
	}
	resp, err := http.Get(base + "/healthz")
	if err == nil {
		resp.Body.Close()
		t.Fatal("api still answers after delete")
	}
}

// TestFailingPluginRollsBack: a plugin that exits non-zero, prints bad JSON,
// times out or has no image fails the deployment with the right reason and
// leaves nothing with the deployment's label.
func TestFailingPluginRollsBack(t *testing.T) {
	requireDocker(t, "pulls from a registry after docker rmi")
	e := newEnv(t, Config{})
	ctx := testutil.Context(t, 4*time.Minute)
	reg := testutil.StartRegistry(t, "agent", "reg-pass-88")
	pushed := reg.Push(t, testPluginImage, "exec/plugin", e.node)[0]
	testutil.Docker(t, "rmi", pushed)
	cases := []struct {
		name    string
		params  map[string]any
		image   string
		timeout string
		want    []string
		auth    *protocol.RegistryAuth
	}{
		{"exit", map[string]any{"mode": "exit", "code": 3, "stderr": "boom: table missing"}, "", "", []string{"plugin exited with code 3", "boom: table missing", "failing on purpose"}, nil},
		{"badjson", map[string]any{"mode": "badjson", "stderr": "about to misbehave"}, "", "", []string{"invalid JSON on stdout", "this is not json", "about to misbehave"}, nil},
		{"timeout", map[string]any{"mode": "sleep", "sleep": "60s"}, "", "2s", []string{"timed out after 2s", "sleeping 1m0s"}, nil},
		{"noimage", map[string]any{}, reg.Host + "/exec/absent:v1", "", []string{"plugin image missing", "exec/absent:v1"},
			&protocol.RegistryAuth{ServerAddress: reg.Host, Username: "agent", Password: "reg-pass-88"}},
		{"pullfails", map[string]any{}, pushed, "", []string{"plugin image pull failed", "exec/plugin"},
			&protocol.RegistryAuth{ServerAddress: reg.Host, Username: "agent", Password: "wrong-password"}},
	}
	base := int64(time.Now().UnixNano()%1e6 + 2000000)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := base + int64(i)
			spec := specOf(id, []protocol.Node{webNode("web", nil), pluginNode("step", tc.params)}, [][2]string{{"web", "step"}}, demoWebImage, nil)
			p := spec.Plugins["step"]
			if tc.image != "" {
				p.Image = tc.image
			}
			p.Timeout = tc.timeout
			p.Auth = tc.auth
			spec.Plugins["step"] = p
			if err := e.ex.Deploy(ctx, protocol.DeployRequest{Spec: spec}); err != nil {
				t.Fatal(err)
			}
			ds := e.rec.waitDeployment(t, ctx, id, protocol.StatusRunning, protocol.StatusFailed)
			if ds.Status != protocol.StatusFailed || ds.FailedStep != "step" {
				t.Fatalf("got %s (step %q), want failed at step", ds.Status, ds.FailedStep)
			}
			t.Logf("reason: %s", ds.Reason)
			for _, w := range tc.want {
				if !strings.Contains(ds.Reason, w) {
					t.Errorf("reason lacks %q:\n%s", w, ds.Reason)
				}
			}
			st := e.rec.steps(id, "step")
			if last := st[len(st)-1]; last.Status != protocol.StepFailed || last.Attempt != 1 {
				t.Errorf("step's last status %+v", last)
			}
			e.assertNothingLeft(id)
		})
	}
}

// TestPluginRetries: each attempt is visible; the third succeeds.
func TestPluginRetries(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := testutil.Context(t, 2*time.Minute)
	id := int64(time.Now().UnixNano()%1e6 + 3000000)
	n := pluginNode("flaky", map[string]any{"mode": "flaky", "succeed_at": 3})
	n.Retries = &protocol.Retry{Count: 2, Backoff: "100ms"}
	spec := specOf(id, []protocol.Node{n}, nil, demoWebImage, nil)
	if err := e.ex.Deploy(ctx, protocol.DeployRequest{Spec: spec}); err != nil {
		t.Fatal(err)
	}
	if ds := e.rec.waitDeployment(t, ctx, id, protocol.StatusRunning, protocol.StatusFailed); ds.Status != protocol.StatusRunning {
		t.Fatalf("%s: %s", ds.Status, ds.Reason)
	}
	var attempts []int
	for _, s := range e.rec.steps(id, "flaky") {
		if s.Status == protocol.StepRunning {
			attempts = append(attempts, s.Attempt)
		}
	}
	if !slices.Equal(attempts, []int{1, 2, 3}) {
		t.Fatalf("running attempts %v, want [1 2 3]", attempts)
	}
	st := e.rec.steps(id, "flaky")
	last := st[len(st)-1]
	if last.Status != protocol.StepSucceeded || last.Attempt != 3 || last.Outputs["attempt"] != "3" {
		t.Fatalf("last status %+v", last)
	}
	logs := e.rec.stepLogs(id, "flaky")
	for _, w := range []string{"attempt 1 failed", "transient failure on attempt 1", "attempt 2 failed"} {
		if !strings.Contains(logs, w) {
			t.Errorf("step log lacks %q:\n%s", w, logs)
		}
	}
}

// TestCancelMidPipeline: cancel while a plugin runs stops it, rolls back
// and reports deleted.
func TestCancelMidPipeline(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := testutil.Context(t, 2*time.Minute)
	id := int64(time.Now().UnixNano()%1e6 + 4000000)
	spec := specOf(id, []protocol.Node{
		webNode("web", nil),
		pluginNode("slow", map[string]any{"mode": "sleep", "sleep": "90s"}),
		webNode("after", nil),
	}, [][2]string{{"web", "slow"}, {"slow", "after"}}, demoWebImage, nil)
	if err := e.ex.Deploy(ctx, protocol.DeployRequest{Spec: spec}); err != nil {
		t.Fatal(err)
	}
	e.rec.waitStep(t, ctx, id, "slow", protocol.StepRunning)
	testutil.WaitFor(t, ctx, 100*time.Millisecond, "plugin workload exists", func() bool {
		return strings.Contains(strings.Join(e.objects(id), "\n"), "slow")
	})
	if err := e.ex.Cancel(ctx, protocol.DeleteRequest{DeploymentID: id}); err != nil {
		t.Fatal(err)
	}
	ds := e.rec.waitDeployment(t, ctx, id, protocol.StatusDeleted, protocol.StatusFailed)
	if ds.Status != protocol.StatusDeleted {
		t.Fatalf("cancel reported %s: %s", ds.Status, ds.Reason)
	}
	e.assertNothingLeft(id)
	st := e.rec.steps(id, "slow")
	if last := st[len(st)-1]; last.Status != protocol.StepFailed || last.Message != "cancelled" {
		t.Errorf("slow step ended %+v", last)
	}
	if st := e.rec.steps(id, "after"); st[len(st)-1].Status != protocol.StepSkipped {
		t.Errorf("after step ended %+v", st[len(st)-1])
	}
	if _, err := e.st.Get(id); err == nil {
		t.Error("deleted deployment still in local state")
	}
}

// TestDeleteRightAfterDeploy: a delete that lands while the pipeline is
// still creating its network or first container must not leave that object
// behind (the daemon finishes a creation even when the client gave up).
func TestDeleteRightAfterDeploy(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := testutil.Context(t, 3*time.Minute)
	base := time.Now().UnixNano()%1e6 + 5000000
	for i, delay := range []time.Duration{0, 2 * time.Millisecond, 10 * time.Millisecond, 30 * time.Millisecond, 80 * time.Millisecond, 200 * time.Millisecond} {
		id := base + int64(i)
		spec := specOf(id, []protocol.Node{webNode("web", nil)}, nil, demoWebImage, nil)
		if err := e.ex.Deploy(ctx, protocol.DeployRequest{Spec: spec}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		if err := e.ex.Delete(ctx, protocol.DeleteRequest{DeploymentID: id}); err != nil {
			t.Fatal(err)
		}
		if ds := e.rec.waitDeployment(t, ctx, id, protocol.StatusDeleted); ds.Status != protocol.StatusDeleted {
			t.Fatalf("delay %s: %s", delay, ds.Status)
		}
		// An orphan would appear just after the delete reported.
		time.Sleep(500 * time.Millisecond)
		if left := e.objects(id); len(left) > 0 {
			t.Errorf("delete %s after deploy left %v", delay, left)
		}
	}
}

// TestLateDeployAfterDeleteIsRefused: a deploy the control plane sent
// before deleting the deployment, delivered after the delete (a server
// replica lost the node in between), starts nothing; the node's full
// desired state (sync) still decides.
func TestLateDeployAfterDeleteIsRefused(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := testutil.Context(t, 3*time.Minute)
	id := time.Now().UnixNano()%1e6 + 7000000
	spec := specOf(id, []protocol.Node{webNode("web", nil)}, nil, demoWebImage, nil)
	if err := e.ex.Delete(ctx, protocol.DeleteRequest{DeploymentID: id}); err != nil {
		t.Fatal(err)
	}
	e.rec.waitDeployment(t, ctx, id, protocol.StatusDeleted)
	err := e.ex.Deploy(ctx, protocol.DeployRequest{Spec: spec})
	if err == nil || !strings.Contains(err.Error(), "deleted on this node") {
		t.Fatalf("late deploy after delete: %v", err)
	}
	if left := e.objects(id); len(left) > 0 {
		t.Fatalf("a refused deploy created %v", left)
	}
	// The desired state wants it after all: sync builds it.
	if _, err := e.ex.Sync(ctx, protocol.SyncRequest{Deployments: []protocol.DeploySpec{spec}}); err != nil {
		t.Fatal(err)
	}
	if ds := e.rec.waitDeployment(t, ctx, id, protocol.StatusRunning); ds.Status != protocol.StatusRunning {
		t.Fatalf("after sync: %s", ds.Status)
	}
	if err := e.ex.Delete(ctx, protocol.DeleteRequest{DeploymentID: id}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, ctx, 100*time.Millisecond, "the synced deployment removed", func() bool { return len(e.objects(id)) == 0 })
}
