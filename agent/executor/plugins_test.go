package executor

import (
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/protocol"
)

// TestFirstPartyPlugins runs http-wait and exec (which gets the Docker
// socket) as containers in a pipeline; the service's health is an exec'd
// command.
func TestFirstPartyPlugins(t *testing.T) {
	requireDocker(t, "the exec plugin uses the Docker socket")
	e := newEnv(t, Config{AllowDockerSocket: true})
	ctx := testutil.Context(t, 3*time.Minute)
	httpWait := testutil.ScratchImage(t, "./plugins/http-wait", "nullops-test/plugin-http-wait:executor")
	execImg := testutil.ScratchImage(t, "./plugins/exec", "nullops-test/plugin-exec:executor")
	id := int64(time.Now().UnixNano()%1e6 + 7000000)
	web := webNode("web", nil)
	web.Health = &protocol.Health{Command: []string{"/app", "healthcheck"}, Interval: "200ms", Timeout: "20s"}
	spec := specOf(id, []protocol.Node{
		web,
		{ID: "wait", Kind: protocol.KindComponent, Plugin: "http-wait", Params: map[string]any{"url": "http://web:8080/healthz", "timeout": "20s"}},
		{ID: "migrate", Kind: protocol.KindComponent, Plugin: "exec", Params: map[string]any{"service": "web", "command": []any{"/app", "healthcheck"}}},
		{ID: "refused", Kind: protocol.KindComponent, Plugin: "exec", Params: map[string]any{"service": "nope", "command": "/app healthcheck"}},
	}, [][2]string{{"web", "wait"}, {"wait", "migrate"}, {"migrate", "refused"}}, demoWebImage, nil)
	spec.Plugins["wait"] = protocol.PluginImage{Name: "http-wait", Image: httpWait, JoinNetwork: true, Resources: protocol.Resources{CPU: 0.2, MemoryMB: 32}}
	spec.Plugins["migrate"] = protocol.PluginImage{Name: "exec", Image: execImg, Resources: protocol.Resources{CPU: 0.2, MemoryMB: 64}, DockerSocket: true}
	spec.Plugins["refused"] = spec.Plugins["migrate"]
	if err := e.ex.Deploy(ctx, protocol.DeployRequest{Spec: spec}); err != nil {
		t.Fatal(err)
	}
	ds := e.rec.waitDeployment(t, ctx, id, protocol.StatusRunning, protocol.StatusFailed)
	if ds.Status != protocol.StatusFailed || ds.FailedStep != "refused" || !strings.Contains(ds.Reason, `service "nope" is not running`) {
		t.Fatalf("want failure at the last step for an unknown service, got %+v", ds)
	}
	w := e.rec.steps(id, "wait")
	if last := w[len(w)-1]; last.Status != protocol.StepSucceeded || last.Outputs["status"] != "200" {
		t.Errorf("http-wait: %+v", last)
	}
	m := e.rec.steps(id, "migrate")
	if last := m[len(m)-1]; last.Status != protocol.StepSucceeded || last.Outputs["exit_code"] != "0" || last.Outputs["output"] != "ok web" {
		t.Errorf("exec: %+v\nlog: %s", last, e.rec.stepLogs(id, "migrate"))
	}
	e.assertNothingLeft(id)
}
