package kubernetes_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	agentkube "github.com/nullops/nullops/agent/kube"
	"github.com/nullops/nullops/agent/runtime"
	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/internal/testutil/kube"
	"github.com/nullops/nullops/plugins/sdk"
	"github.com/nullops/nullops/protocol"
)

// TestAgentRuntimeUnderTheManifest: the Kubernetes runtime does its whole
// job with exactly the rights agent.yaml gives the agent's ServiceAccount
// (no nodes/proxy): it binds its workload role in the namespace it creates
// and then runs a service (NodePort answering), a plugin pod over attach,
// reads logs, reports capacity, keeps its state Secret and deletes the
// namespace. Stats need nodes/proxy: they fail and the node's usage stays
// zero, the rest goes on.
func TestAgentRuntimeUnderTheManifest(t *testing.T) {
	cfg := kube.RESTConfig(t)
	ctx := testutil.Context(t, 4*time.Minute)
	inst := kube.AgentInstallation(t)
	agentNS, agentSA := inst.NS, inst.SA
	kube.Apply(t, cfg, inst.YAML, func(u *unstructured.Unstructured) bool {
		return u.GetKind() != "Deployment" && u.GetKind() != "Service"
	})
	web := kube.ScratchImage(t, "./scripts/images/demo-web", "nullops-test/demo-web:manifest")
	plugin := kube.ScratchImage(t, "./scripts/images/test-plugin", "nullops-test/test-plugin:manifest")
	as := kube.Impersonate(cfg, agentNS, agentSA)
	node := fmt.Sprintf("manifest-%d", time.Now().UnixNano()%1e8)
	rt, err := agentkube.New(agentkube.Config{Node: node, REST: as,
		WorkloadRole: inst.WorkloadRole, ServiceAccount: agentNS + "/" + agentSA})
	if err != nil {
		t.Fatal(err)
	}
	admin := kube.Client(t)
	t.Cleanup(func() {
		list, _ := admin.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{LabelSelector: runtime.LabelNode + "=" + node})
		for _, ns := range list.Items {
			_ = admin.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
		}
	})

	// The admission policies and bindings are in force a moment after they
	// are applied.
	var net runtime.Network
	testutil.WaitFor(t, ctx, 500*time.Millisecond, "a namespace as the agent", func() bool {
		net, err = rt.EnsureNetwork(ctx, runtime.NetworkSpec{DeploymentID: 1, Resources: protocol.Resources{CPU: 0.3, MemoryMB: 128}})
		if err != nil {
			t.Logf("ensure network: %v", err)
		}
		return err == nil
	})
	if _, err := admin.RbacV1().RoleBindings(net.Name).Get(ctx, agentkube.RoleBindingName, metav1.GetOptions{}); err != nil {
		t.Fatalf("the workload role binding: %v", err)
	}
	info, err := rt.StartService(ctx, runtime.ServiceSpec{DeploymentID: 1, Service: "web", Image: web, Network: net.Name,
		Env: map[string]string{"MESSAGE": "under-the-manifest"}, Ports: []int{8080}, PublishPort: 8080, HealthPort: 8080,
		Health: &protocol.Health{HTTP: "/healthz"}, Resources: protocol.Resources{CPU: 0.2, MemoryMB: 64}})
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, ctx, 200*time.Millisecond, "web healthy and answering on its NodePort", func() bool {
		i, err := rt.InspectService(ctx, info.ID)
		if err != nil || i.Health != "healthy" {
			return false
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", info.HostPort))
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.Contains(string(b), "under-the-manifest")
	})
	var logs strings.Builder
	if err := rt.Logs(ctx, info.ID, 10, false, false, func(_, d string) error { logs.WriteString(d); return nil }); err != nil || !strings.Contains(logs.String(), "listening") {
		t.Fatalf("logs %q: %v", logs.String(), err)
	}
	in, _ := json.Marshal(sdk.Input{Step: "mk", Attempt: 1, Params: map[string]any{"outputs": map[string]any{"k": "v"}}})
	var out bytes.Buffer
	res, err := rt.RunOneShot(ctx, runtime.OneShotSpec{DeploymentID: 1, Step: "mk", Attempt: 1, Image: plugin, Input: in,
		Network: net.Name, Resources: protocol.Resources{CPU: 0.1, MemoryMB: 32}, Timeout: time.Minute, Stdout: &out})
	if err != nil || res.ExitCode != 0 || !strings.Contains(out.String(), `"k":"v"`) {
		t.Fatalf("plugin: %+v %v %q", res, err, out.String())
	}
	if c, err := rt.Capacity(ctx); err != nil || c.CPUs <= 0 {
		t.Fatalf("capacity as the agent: %+v %v", c, err)
	}
	if _, err := rt.Stats(ctx, info.ID); !apierrors.IsForbidden(errors.Unwrap(err)) && (err == nil || !strings.Contains(err.Error(), "forbidden")) {
		t.Fatalf("stats without nodes/proxy: %v, want forbidden", err)
	}
	if u := rt.Host().Usage(); u.MemoryUsedMB != 0 {
		t.Fatalf("usage without nodes/proxy: %+v", u)
	}

	ss, err := agentkube.NewStateSecretFor(as, agentNS, inst.StateSecret, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := ss.Save(ctx); err != nil {
		t.Fatalf("state secret as the agent: %v", err)
	}
	if _, err := ss.Restore(ctx); err != nil {
		t.Fatalf("state secret as the agent: %v", err)
	}
	t.Cleanup(func() {
		_ = admin.CoreV1().Secrets(agentNS).Delete(context.Background(), inst.StateSecret, metav1.DeleteOptions{})
	})

	if _, err := rt.RemoveDeployment(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().Namespaces().Get(ctx, net.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("namespace after delete: %v", err)
	}
}
