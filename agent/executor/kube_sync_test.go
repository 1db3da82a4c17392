package executor

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nullops/nullops/agent/kube"
	"github.com/nullops/nullops/agent/runtime"
	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/protocol"
)

// TestKubeSyncReconciles (Kubernetes): a sync removes this node's
// namespaces of deployments the control plane does not know (another
// node's are left alone), re-creates a service whose Deployment is gone
// (with its templated env: plugin output and secret), deploys a desired
// deployment unknown here, and a sync that wants nothing leaves no
// namespace behind.
func TestKubeSyncReconciles(t *testing.T) {
	if runtimeName() != runtime.Kubernetes {
		t.Skip("Kubernetes only (namespaces made and broken with client-go); NULLOPS_RUNTIME=kubernetes")
	}
	e := newEnv(t, Config{})
	krt := e.rt.(*kube.Runtime)
	cs := krt.Client()
	ctx := testutil.Context(t, 5*time.Minute)
	id := int64(time.Now().UnixNano()%1e6 + 7000000)
	const secret = "kube-sync-secret-value"
	spec := specOf(id, []protocol.Node{
		webNode("db", nil),
		pluginNode("mk", map[string]any{"outputs": map[string]any{"url": "pg://u:${secrets.pw}@db/app"}}),
		webNode("api", func(n *protocol.Node) {
			n.Ingress = true
			n.Env = map[string]string{"REQUIRE_DATABASE_URL": "1", "DATABASE_URL": "${steps.mk.outputs.url}"}
		}),
	}, [][2]string{{"db", "mk"}, {"mk", "api"}}, demoWebImage, nil)
	for _, s := range []string{"db", "api"} {
		si := spec.Services[s]
		si.Resources = protocol.Resources{CPU: 0.25, MemoryMB: 32} // the server's shares of the budget
		spec.Services[s] = si
	}
	spec.Secrets = map[string]string{"pw": secret}
	if err := e.ex.Deploy(ctx, protocol.DeployRequest{Spec: spec}); err != nil {
		t.Fatal(err)
	}
	if ds := e.rec.waitDeployment(t, ctx, id, protocol.StatusRunning, protocol.StatusFailed); ds.Status != protocol.StatusRunning {
		t.Fatalf("%s: %s", ds.Status, ds.Reason)
	}

	// Orphan: a namespace of this node for a deployment nobody wants; and
	// one of another node.
	orphanID := id + 500
	mkNS := func(name, node string) {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			runtime.LabelManaged: "true", runtime.LabelNode: node, runtime.LabelDeployment: fmt.Sprint(orphanID),
		}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	orphan := kube.NamespaceName(e.node, orphanID)
	mkNS(orphan, e.node)
	other := kube.NamespaceName(e.node+"-other", orphanID)
	mkNS(other, e.node+"-other")
	t.Cleanup(func() {
		_ = cs.CoreV1().Namespaces().Delete(testutil.Context(t, time.Minute), other, metav1.DeleteOptions{})
	})

	// Break the deployment: its api is gone.
	ns := kube.NamespaceName(e.node, id)
	if err := cs.AppsV1().Deployments(ns).Delete(ctx, "api", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// And a desired deployment this agent does not know (its data dir was
	// lost, say).
	id2 := id + 1
	spec2 := specOf(id2, []protocol.Node{webNode("web", nil)}, nil, demoWebImage, nil)

	reply, err := e.ex.Sync(ctx, protocol.SyncRequest{Deployments: []protocol.DeploySpec{spec, spec2}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(reply.RemovedOrphans, orphan) {
		t.Errorf("removed orphans %v, want %s", reply.RemovedOrphans, orphan)
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, orphan, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("orphan namespace: %v", err)
	}
	if got, err := cs.CoreV1().Namespaces().Get(ctx, other, metav1.GetOptions{}); err != nil || got.DeletionTimestamp != nil {
		t.Errorf("another node's namespace was touched: %v", err)
	}
	var apiPort int
	for _, d := range reply.Deployments {
		if d.DeploymentID != id {
			continue
		}
		for _, s := range d.Services {
			if s.Service == "api" {
				apiPort = s.HostPort
			}
		}
	}
	if apiPort == 0 {
		t.Fatalf("sync reply %+v: api has no NodePort", reply.Deployments)
	}
	testutil.WaitFor(t, ctx, 200*time.Millisecond, "re-created api answers with its env", func() bool {
		code, body := httpGetQuiet(e.published(apiPort) + "/env")
		return code == 200 && strings.Contains(body, "pg://u:"+secret+"@db/app")
	})
	if ds := e.rec.waitDeployment(t, ctx, id2, protocol.StatusRunning, protocol.StatusFailed); ds.Status != protocol.StatusRunning {
		t.Fatalf("unknown desired deployment: %s: %s", ds.Status, ds.Reason)
	}

	// Nothing desired any more: both go, namespaces and all.
	if _, err := e.ex.Sync(ctx, protocol.SyncRequest{}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []int64{id, id2} {
		e.rec.waitDeployment(t, ctx, d, protocol.StatusDeleted)
		e.assertNothingLeft(d)
	}
}
