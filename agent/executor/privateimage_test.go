package executor

import (
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/protocol"
)

// TestCachedPrivateImageNeedsItsCredentials: an image that one registry
// credential pulled onto the node is not handed to a service or plugin
// whose credentials (another registry's, or none) cannot pull it; the
// registry is asked again before the cached copy is used, and the right
// credentials still use the cache without a pull.
func TestCachedPrivateImageNeedsItsCredentials(t *testing.T) {
	requireDocker(t, "the daemon's image cache")
	e := newEnv(t, Config{})
	ctx := testutil.Context(t, 4*time.Minute)
	reg := testutil.StartRegistry(t, "alice", "alice-pass-7731")
	other := testutil.StartRegistry(t, "bob", "bob-pass-2290")
	web := reg.Push(t, demoWebImage, "private/web-"+e.node, "v1")[0]
	plug := reg.Push(t, ownTestPlugin(t), "private/plugin-"+e.node, "v1")[0]
	testutil.Docker(t, "rmi", web, plug) // the agent has to pull them
	alice := &protocol.RegistryAuth{ServerAddress: reg.Host, Username: reg.Username, Password: reg.Password}
	bobs := &protocol.RegistryAuth{ServerAddress: reg.Host, Username: other.Username, Password: other.Password}

	next := int64(time.Now().UnixNano()%1e6 + 6000000)
	deploy := func(auth *protocol.RegistryAuth, withPlugin bool) (int64, protocol.DeploymentStatus) {
		t.Helper()
		next++
		nodes := []protocol.Node{webNode("web", nil)}
		var edges [][2]string
		if withPlugin {
			nodes = append(nodes, pluginNode("step", nil))
			edges = [][2]string{{"web", "step"}}
		}
		spec := specOf(next, nodes, edges, web, auth)
		if withPlugin {
			spec.Plugins["step"] = protocol.PluginImage{Name: "test-plugin", Image: plug, Auth: auth, Resources: protocol.Resources{CPU: 0.2, MemoryMB: 32}}
		}
		if err := e.ex.Deploy(ctx, protocol.DeployRequest{Spec: spec}); err != nil {
			t.Fatal(err)
		}
		return next, e.rec.waitDeployment(t, ctx, next, protocol.StatusRunning, protocol.StatusFailed)
	}

	// Alice's credentials pull both images.
	id, ds := deploy(alice, true)
	if ds.Status != protocol.StatusRunning {
		t.Fatalf("with the right credentials: %s: %s", ds.Status, ds.Reason)
	}
	if !strings.Contains(e.rec.stepLogs(id, "web"), "pulled "+web) {
		t.Errorf("first deployment did not pull: %q", e.rec.stepLogs(id, "web"))
	}

	// Another registry's credentials, and none: refused, though cached.
	for name, auth := range map[string]*protocol.RegistryAuth{"another registry's credentials": bobs, "no credentials": nil} {
		_, ds := deploy(auth, false)
		if ds.Status != protocol.StatusFailed || ds.FailedStep != "web" || !strings.Contains(ds.Reason, "registry access not confirmed") {
			t.Errorf("service with %s: %s (step %s): %s", name, ds.Status, ds.FailedStep, ds.Reason)
		}
	}
	// The plugin image too: the service gets alice's credentials, the
	// plugin none.
	next++
	spec := specOf(next, []protocol.Node{webNode("web", nil), pluginNode("step", nil)}, [][2]string{{"web", "step"}}, web, alice)
	spec.Plugins["step"] = protocol.PluginImage{Name: "test-plugin", Image: plug, Resources: protocol.Resources{CPU: 0.2, MemoryMB: 32}}
	if err := e.ex.Deploy(ctx, protocol.DeployRequest{Spec: spec}); err != nil {
		t.Fatal(err)
	}
	ds = e.rec.waitDeployment(t, ctx, next, protocol.StatusRunning, protocol.StatusFailed)
	if ds.Status != protocol.StatusFailed || ds.FailedStep != "step" || !strings.Contains(ds.Reason, "not confirmed") {
		t.Errorf("plugin without credentials: %s (step %s): %s", ds.Status, ds.FailedStep, ds.Reason)
	}

	// Alice again: confirmed by the registry, the cached images are used.
	id, ds = deploy(alice, true)
	if ds.Status != protocol.StatusRunning {
		t.Fatalf("right credentials again: %s: %s", ds.Status, ds.Reason)
	}
	if logs := e.rec.stepLogs(id, "web") + e.rec.stepLogs(id, "step"); strings.Contains(logs, "pulled ") {
		t.Errorf("cached image pulled again: %q", logs)
	}
}
