package executor

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nullops/nullops/agent/runtime"
	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/protocol"
)

// capsRuntime is the runtime under test with other capabilities: without
// the Docker socket, and running health checks itself — it reports the
// verdict verdict(service, inspections so far) in ServiceInfo.Health, the
// way a runtime whose workloads the agent cannot reach does.
type capsRuntime struct {
	runtime.Runtime
	caps    runtime.Capabilities
	verdict func(service string, n int) string

	mu      sync.Mutex
	specs   map[string]runtime.ServiceSpec // by workload id
	inspect map[string]int
}

func (c *capsRuntime) Capabilities() runtime.Capabilities { return c.caps }

func (c *capsRuntime) StartService(ctx context.Context, s runtime.ServiceSpec) (runtime.ServiceInfo, error) {
	info, err := c.Runtime.StartService(ctx, s)
	if err == nil {
		c.mu.Lock()
		c.specs[info.ID] = s
		c.mu.Unlock()
	}
	return c.withVerdict(info), err
}

func (c *capsRuntime) InspectService(ctx context.Context, id string) (runtime.ServiceInfo, error) {
	info, err := c.Runtime.InspectService(ctx, id)
	return c.withVerdict(info), err
}

func (c *capsRuntime) withVerdict(info runtime.ServiceInfo) runtime.ServiceInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.specs[info.ID]
	if !ok {
		return info
	}
	if s.Health == nil || s.HealthPort != 8080 {
		panic("the runtime was not given the service's health check and port")
	}
	c.inspect[info.ID]++
	info.Health = c.verdict(s.Service, c.inspect[info.ID])
	return info
}

// TestRuntimeCapabilities: on a runtime that runs health checks itself,
// the executor waits for its verdict, not its own probe (which would pass
// at once for both services here): a service is healthy once the runtime
// says so, after "starting", and one the runtime calls unhealthy fails
// with that verdict; a plugin that
// needs the Docker socket fails at once, naming the runtime, on a runtime
// that cannot give it, even where the node's operator allows it.
func TestRuntimeCapabilities(t *testing.T) {
	e := newEnvWrapped(t, Config{AllowDockerSocket: true}, nil, func(rt runtime.Runtime) runtime.Runtime {
		return &capsRuntime{Runtime: rt, caps: runtime.Capabilities{HealthChecks: true},
			specs: map[string]runtime.ServiceSpec{}, inspect: map[string]int{},
			verdict: func(service string, n int) string {
				switch {
				case service == "sick":
					return "unhealthy"
				case n < 3:
					return "starting"
				}
				return "healthy"
			}}
	})
	ctx := testutil.Context(t, 3*time.Minute)
	id := int64(time.Now().UnixNano()%1e6 + 9700000)
	check := func(n *protocol.Node) {
		n.Health = &protocol.Health{HTTP: "/healthz", Timeout: "5s", Interval: "100ms"}
	}
	spec := specOf(id, []protocol.Node{webNode("web", check)}, nil, demoWebImage, nil)
	if err := e.ex.Deploy(ctx, protocol.DeployRequest{Spec: spec}); err != nil {
		t.Fatal(err)
	}
	if ds := e.rec.waitDeployment(t, ctx, id, protocol.StatusRunning, protocol.StatusFailed); ds.Status != protocol.StatusRunning {
		t.Fatalf("deployment %s: %s (the executor probed itself instead of taking the runtime's verdict?)", ds.Status, ds.Reason)
	}
	if log := e.rec.stepLogs(id, "web"); !strings.Contains(log, "health check: starting") {
		t.Errorf("step log does not show the runtime's verdict while waiting: %q", log)
	}

	sick := id + 1
	spec = specOf(sick, []protocol.Node{webNode("sick", check)}, nil, demoWebImage, nil)
	if err := e.ex.Deploy(ctx, protocol.DeployRequest{Spec: spec}); err != nil {
		t.Fatal(err)
	}
	ds := e.rec.waitDeployment(t, ctx, sick, protocol.StatusRunning, protocol.StatusFailed)
	if ds.Status != protocol.StatusFailed || !strings.Contains(ds.Reason, "not healthy after 5s") || !strings.Contains(ds.Reason, "health check: unhealthy") {
		t.Fatalf("want failed with the runtime's verdict, got %+v", ds)
	}

	sock := id + 2
	spec = specOf(sock, []protocol.Node{pluginNode("wants-socket", nil)}, nil, demoWebImage, nil)
	spec.Plugins["wants-socket"] = protocol.PluginImage{Name: "tool", Image: testPluginImage, DockerSocket: true}
	if err := e.ex.Deploy(ctx, protocol.DeployRequest{Spec: spec}); err != nil {
		t.Fatal(err)
	}
	ds = e.rec.waitDeployment(t, ctx, sock, protocol.StatusRunning, protocol.StatusFailed)
	want := "runtime of this node cannot give"
	if ds.Status != protocol.StatusFailed || ds.FailedStep != "wants-socket" || !strings.Contains(ds.Reason, want) || !strings.Contains(ds.Reason, e.rt.Name()) {
		t.Fatalf("want the step refused with %q naming the runtime, got %+v", want, ds)
	}
	if s := e.rec.steps(sock, "wants-socket"); len(s) == 0 || s[len(s)-1].Attempt > 1 {
		t.Errorf("refused step retried: %+v", s)
	}
}
