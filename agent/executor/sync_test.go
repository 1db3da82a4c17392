package executor

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/protocol"
)

// TestSyncReconciles: orphans of this node are removed while another node's
// objects are left alone; a stopped service is started and a missing one is
// recreated with its templated env (plugin output + secret); a deployment
// that is no longer desired is deleted. Logs and metrics are served for the
// running deployment.
func TestSyncReconciles(t *testing.T) {
	requireDocker(t, "makes orphans and stops containers with the docker CLI")
	e := newEnv(t, Config{})
	ctx := testutil.Context(t, 3*time.Minute)
	id := int64(time.Now().UnixNano()%1e6 + 6000000)
	const secret = "sync-secret-Pp0-value"
	spec := specOf(id, []protocol.Node{
		webNode("db", nil),
		pluginNode("mk", map[string]any{"outputs": map[string]any{"url": "pg://u:${secrets.pw}@db/app"}}),
		webNode("api", func(n *protocol.Node) {
			n.Ingress = true
			n.Env = map[string]string{"REQUIRE_DATABASE_URL": "1", "DATABASE_URL": "${steps.mk.outputs.url}"}
		}),
	}, [][2]string{{"db", "mk"}, {"mk", "api"}}, demoWebImage, nil)
	spec.Secrets = map[string]string{"pw": secret}
	if err := e.ex.Deploy(ctx, protocol.DeployRequest{Spec: spec}); err != nil {
		t.Fatal(err)
	}
	if ds := e.rec.waitDeployment(t, ctx, id, protocol.StatusRunning, protocol.StatusFailed); ds.Status != protocol.StatusRunning {
		t.Fatalf("%s: %s", ds.Status, ds.Reason)
	}

	// Orphans: a container and a network labelled for this node but for a
	// deployment nobody wants; and a container of another node.
	orphanID := id + 500
	orphan := fmt.Sprintf("nullops-%s-orphan", e.node)
	lbl := func(node string, dep int64) []string {
		return []string{"--label", "nullops.managed=true", "--label", "nullops.node=" + node, "--label", fmt.Sprintf("nullops.deployment=%d", dep)}
	}
	testutil.Docker(t, append(append([]string{"run", "-d", "--name", orphan}, lbl(e.node, orphanID)...), demoWebImage)...)
	testutil.Docker(t, append(append([]string{"network", "create"}, lbl(e.node, orphanID)...), orphan+"-net")...)
	other := fmt.Sprintf("nullops-%s-othernode", e.node)
	testutil.Docker(t, append(append([]string{"run", "-d", "--name", other}, lbl(e.node+"-other", orphanID)...), demoWebImage)...)
	t.Cleanup(func() { _, _ = testutil.DockerErr("rm", "-f", other) })

	// Break the deployment: stop db, remove api.
	dbName := fmt.Sprintf("nullops-%s-d%d-db", e.node, id)
	apiName := fmt.Sprintf("nullops-%s-d%d-api", e.node, id)
	testutil.Docker(t, "stop", "-t", "1", dbName)
	testutil.Docker(t, "rm", "-f", apiName)

	reply, err := e.ex.Sync(ctx, protocol.SyncRequest{Deployments: []protocol.DeploySpec{spec}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(reply.RemovedOrphans, orphan) || !slices.Contains(reply.RemovedOrphans, orphan+"-net") {
		t.Errorf("removed orphans %v, want %s and its network", reply.RemovedOrphans, orphan)
	}
	if _, err := testutil.DockerErr("inspect", orphan); err == nil {
		t.Error("orphan container still exists")
	}
	if _, err := testutil.DockerErr("network", "inspect", orphan+"-net"); err == nil {
		t.Error("orphan network still exists")
	}
	if s := testutil.Docker(t, "inspect", "-f", "{{.State.Running}}", other); s != "true" {
		t.Errorf("another node's container was touched (running=%s)", s)
	}
	if len(reply.Deployments) != 1 || reply.Deployments[0].Status != protocol.StatusRunning {
		t.Fatalf("sync reply %+v", reply.Deployments)
	}
	var apiPort int
	for _, s := range reply.Deployments[0].Services {
		if !s.Running {
			t.Errorf("service %s not running after sync", s.Service)
		}
		if s.Service == "api" {
			apiPort = s.HostPort
		}
	}
	if s := testutil.Docker(t, "inspect", "-f", "{{.State.Running}}", dbName); s != "true" {
		t.Error("stopped db not started by sync")
	}
	testutil.WaitFor(t, ctx, 100*time.Millisecond, "recreated api answers", func() bool {
		code, body := httpGetQuiet(fmt.Sprintf("http://127.0.0.1:%d/env", apiPort))
		return code == 200 && strings.Contains(body, "pg://u:"+secret+"@db/app")
	})

	// Logs of a service.
	lctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	ch, err := e.ex.Logs(lctx, protocol.LogsOpen{DeploymentID: id, Service: "db", Tail: 50})
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	sawEOF := false
	for d := range ch {
		logs.WriteString(d.Data)
		sawEOF = sawEOF || d.EOF
	}
	cancel()
	if !sawEOF || !strings.Contains(logs.String(), "listening") {
		t.Errorf("logs (eof=%v): %q", sawEOF, logs.String())
	}
	if _, err := e.ex.Logs(ctx, protocol.LogsOpen{DeploymentID: id, Service: "nope"}); err == nil {
		t.Error("logs of an unknown service did not fail")
	}
	fctx, fcancel := context.WithCancel(ctx)
	fch, err := e.ex.Logs(fctx, protocol.LogsOpen{DeploymentID: id, Service: "db", Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	<-fch // first chunk
	fcancel()
	for range fch {
	}

	// Metrics.
	stats := e.ex.ContainerStats(ctx)
	found := 0
	for _, s := range stats {
		if s.DeploymentID == id && s.Running && s.MemoryBytes > 0 {
			found++
		}
	}
	if found != 2 {
		t.Errorf("container stats %+v: want 2 running services with memory", stats)
	}
	rec := httptest.NewRecorder()
	e.ex.MetricsHandler(staticHost{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, w := range []string{
		fmt.Sprintf(`nullops_agent_container_memory_bytes{deployment="%d",service="api"}`, id),
		`nullops_agent_deployments{status="running"} 1`,
		"nullops_agent_capacity_cpus 2",
	} {
		if !strings.Contains(string(body), w) {
			t.Errorf("/metrics lacks %s:\n%s", w, body)
		}
	}

	// Not desired any more → deleted, nothing left.
	reply, err = e.ex.Sync(ctx, protocol.SyncRequest{})
	if err != nil {
		t.Fatal(err)
	}
	e.rec.waitDeployment(t, ctx, id, protocol.StatusDeleted)
	e.assertNothingLeft(id)
	if len(reply.Deployments) != 0 {
		t.Errorf("empty sync reply lists %+v", reply.Deployments)
	}
	e.grepDataDir(secret)
}

type staticHost struct{}

func (staticHost) Capacity() protocol.Capacity {
	return protocol.Capacity{CPUs: 2, MemoryMB: 1024, DiskMB: 2048}
}
func (staticHost) Usage() protocol.Usage { return protocol.Usage{CPUPercent: 10, MemoryUsedMB: 100} }

func httpGetQuiet(url string) (int, string) {
	resp, err := (&httpClient).Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
