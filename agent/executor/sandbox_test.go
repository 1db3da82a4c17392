package executor

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/protocol"
)

// TestPluginSandboxAndDockerSocket runs the test plugin in probe mode: it
// reports from inside its container what it may do. Plugins get no
// capabilities, no privilege gain, a read-only root filesystem with a
// writable /tmp, a process limit, and the Docker socket only when the spec asks for it AND
// the agent allows it — never because of the plugin's name. Service
// containers run with no-new-privileges and a pids limit.
func TestPluginSandboxAndDockerSocket(t *testing.T) {
	requireDocker(t, "Docker's sandbox flags and the Docker socket")
	img := ownTestPlugin(t)
	ctx := testutil.Context(t, 4*time.Minute)
	probe := map[string]any{"probe": "true"}
	deploy := func(e *env, id int64, plugins map[string]protocol.PluginImage) protocol.DeploymentStatus {
		t.Helper()
		nodes := []protocol.Node{webNode("web", nil)}
		var edges [][2]string
		for name := range plugins {
			nodes = append(nodes, pluginNode(name, probe))
			edges = append(edges, [2]string{"web", name})
		}
		spec := specOf(id, nodes, edges, demoWebImage, nil)
		for name, pi := range plugins {
			pi.Image, pi.Resources, pi.JoinNetwork = img, protocol.Resources{CPU: 0.2, MemoryMB: 32}, true
			spec.Plugins[name] = pi
		}
		if err := e.ex.Deploy(ctx, protocol.DeployRequest{Spec: spec}); err != nil {
			t.Fatal(err)
		}
		return e.rec.waitDeployment(t, ctx, id, protocol.StatusRunning, protocol.StatusFailed)
	}

	// An agent with the default configuration.
	e := newEnv(t, Config{})
	id := int64(time.Now().UnixNano()%1e6 + 9000000)
	ds := deploy(e, id, map[string]protocol.PluginImage{
		"plain":   {Name: "test-plugin"},
		"by-name": {Name: "exec"}, // the name grants nothing
	})
	if ds.Status != protocol.StatusRunning {
		t.Fatalf("deployment %s: %s", ds.Status, ds.Reason)
	}
	for _, step := range []string{"plain", "by-name"} {
		out := lastOutputs(t, e, id, step)
		want := map[string]string{"rootfs_writable": "false", "tmp_writable": "true", "no_new_privs": "1",
			"cap_eff": "0000000000000000", "docker_socket": "false", "pids_max": "512"}
		for k, v := range want {
			if out[k] != v {
				t.Errorf("plugin %s: %s=%q, want %q (outputs %v)", step, k, out[k], v, out)
			}
		}
	}
	svc := fmt.Sprintf("nullops-%s-d%d-web", e.node, id)
	if got := testutil.Docker(t, "inspect", "-f", "{{json .HostConfig.SecurityOpt}} {{.HostConfig.PidsLimit}}", svc); got != `["no-new-privileges:true"] 4096` {
		t.Errorf("service container security options and pids limit: %s", got)
	}

	// The catalog asks for the socket; this agent does not allow it.
	id2 := id + 1
	ds = deploy(e, id2, map[string]protocol.PluginImage{"wants-socket": {Name: "tool", DockerSocket: true}})
	if ds.Status != protocol.StatusFailed || ds.FailedStep != "wants-socket" || !strings.Contains(ds.Reason, "--docker.pluginsocket") {
		t.Fatalf("want the step refused naming the agent option, got %+v", ds)
	}
	if s := e.rec.steps(id2, "wants-socket"); len(s) == 0 || s[len(s)-1].Attempt > 1 {
		t.Errorf("refused step retried: %+v", s)
	}

	// An agent that allows it: the socket is there.
	e2 := newEnv(t, Config{AllowDockerSocket: true})
	id3 := id + 2
	ds = deploy(e2, id3, map[string]protocol.PluginImage{"wants-socket": {Name: "tool", DockerSocket: true}, "plain": {Name: "exec"}})
	if ds.Status != protocol.StatusRunning {
		t.Fatalf("deployment %s: %s", ds.Status, ds.Reason)
	}
	if got := lastOutputs(t, e2, id3, "wants-socket")["docker_socket"]; got != "true" {
		t.Errorf("allowed plugin has no socket: %q", got)
	}
	if got := lastOutputs(t, e2, id3, "plain")["docker_socket"]; got != "false" {
		t.Errorf("plugin that did not ask got the socket: %q", got)
	}
}
