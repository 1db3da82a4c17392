package kube

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/agent/runtime"
	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/plugins/sdk"
	"github.com/nullops/nullops/protocol"
)

// TestNetworkPolicies (on a cluster that enforces them, as the test
// cluster does): inside a deployment's namespace a plugin reaches a service
// by name; a plugin that does not join the network does not; a pod of
// another deployment reaches only the published port of an exposed
// service, not an unexposed one.
func TestNetworkPolicies(t *testing.T) {
	t.Parallel()
	rt := testRuntime(t)
	web, plugin := webImg(t), pluginImg(t)
	ctx := testutil.Context(t, 8*time.Minute)
	a, err := rt.EnsureNamespace(ctx, 51, protocol.Resources{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := rt.EnsureNamespace(ctx, 52, protocol.Resources{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []ServiceSpec{
		{DeploymentID: 51, Service: "hidden", Image: web, Network: a.Name, Ports: []int{8080}},
		{DeploymentID: 51, Service: "shown", Image: web, Network: a.Name, Ports: []int{8080}, PublishPort: 8080},
	} {
		if _, err := rt.StartService(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	// dial runs a plugin of deployment dep (joined to its network or not)
	// that must open a TCP connection to addr: did it?
	n := 0
	// Each probe is a new pod, whose traffic the network plugin admits
	// only once it has programmed the pod's address (about a second idle,
	// longer when the machine is busy): a probe keeps dialing for within.
	dial := func(dep int64, network, addr string, within time.Duration) bool {
		t.Helper()
		n++
		in, _ := json.Marshal(sdk.Input{Step: "probe", Attempt: n, Params: map[string]any{"dial": addr, "dial_for": within.String()}})
		var stderr bytes.Buffer
		res, err := rt.RunOneShot(ctx, runtime.OneShotSpec{DeploymentID: dep, Step: "probe", Attempt: n, Image: plugin,
			Network: network, Input: in, Timeout: within + time.Minute, Stderr: &stderr})
		if err != nil {
			t.Fatal(err)
		}
		// A name that does not resolve would pass for a blocked
		// connection: the cases here all resolve.
		if strings.Contains(stderr.String(), "no such host") {
			t.Fatalf("%s did not resolve: %s", addr, stderr.String())
		}
		return res.ExitCode == 0
	}
	// A policy (and a new pod's address) is in force about a second after
	// the API has it on an idle machine, and much later on a busy one (the
	// network plugin programs it): reachable is probed until it shows, for
	// up to two minutes; blocked is probed once the reachable cases passed.
	eventually := func(what string, dep int64, network, addr string) {
		t.Helper()
		start := time.Now()
		for time.Since(start) < 2*time.Minute {
			if dial(dep, network, addr, 45*time.Second) {
				t.Logf("%s: %s reachable after %s (%d probes so far)", what, addr, time.Since(start).Round(time.Millisecond), n)
				return
			}
		}
		t.Fatalf("%s: %s never reachable in %s (%d probes)", what, addr, time.Since(start).Round(time.Second), n)
	}
	blocked := func(what string, dep int64, network, addr string) {
		t.Helper()
		if dial(dep, network, addr, 10*time.Second) {
			t.Fatalf("%s: %s reachable, want blocked", what, addr)
		}
	}
	other := func(svc string) string { return fmt.Sprintf("%s.%s.svc.cluster.local:8080", svc, a.Name) }
	eventually("same namespace, joined", 51, a.Name, "hidden:8080")
	eventually("another deployment, published port", 52, b.Name, other("shown"))
	blocked("another deployment, unexposed service", 52, b.Name, other("hidden"))
	blocked("same namespace, not joined", 51, "", "hidden:8080")
}
