package e2e

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/nullops/nullops/agent/certs"
	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/internal/testutil/kube"
	"github.com/nullops/nullops/restapi"
)

// TestKubernetesInClusterAgent: nullops-agent installed in the cluster with
// deploy/kubernetes/agent.yaml (under unique names; its image the agent
// binary FROM scratch, imported into the cluster's containerd), dialled by
// a real nullops-server at the node's address and the NodePort, as an admin
// sets it up:
//
//   - the node is added with the NodePort's address, the agent started with
//     its token; the control plane pins the certificate the agent keeps in
//     its state Secret (the thumbprint an admin reads there);
//   - a pipeline (plugin, service with a secret, ingress) is deployed
//     through it; the link answers through nullops-ingress;
//   - the agent pod is deleted while a second deployment's plugin step
//     runs: the replacement pod presents the same certificate, and, having
//     no state, gets both deployments from the control plane's sync, which
//     rebuilds each once from zero: both end running, with exactly their
//     own objects (no second copy, no orphaned plugin pod);
//   - delete leaves nothing;
//   - the state Secret lost (a reinstall): the new pod has a new
//     certificate, the node turns untrusted and nothing is sent until the
//     admin approves the thumbprint read from the new state Secret.
func TestKubernetesInClusterAgent(t *testing.T) {
	t.Parallel()
	kw := newKubeWorld(t)
	w := kw.world
	cfg := kube.RESTConfig(t)
	ctx := testutil.Context(t, 15*time.Minute)
	inst := kube.AgentInstallation(t)
	node := inst.SA // NULLOPS_NODENAME: the label of every object
	img := kube.ScratchImage(t, "./cmd/nullops-agent", fmt.Sprintf("nullops-e2e/agent:incluster-%d", os.Getpid()))
	// The cluster has its own copy now; Docker's tag (new each run) goes.
	t.Cleanup(func() { _, _ = testutil.DockerErr("rmi", img) })
	manifest := inst.WithImage(t, img)
	kind := func(k string) func(*unstructured.Unstructured) bool {
		return func(u *unstructured.Unstructured) bool { return u.GetKind() == k }
	}
	kube.Apply(t, cfg, manifest, func(u *unstructured.Unstructured) bool {
		return u.GetKind() != "Deployment" && u.GetKind() != "Service"
	})
	kube.Apply(t, cfg, manifest, kind("Service"))
	svc, err := kw.cs.CoreV1().Services(inst.NS).Get(ctx, inst.SA, metav1.GetOptions{})
	if err != nil || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].NodePort == 0 {
		t.Fatalf("the agent's NodePort Service: %v", err)
	}
	nodePort := int(svc.Spec.Ports[0].NodePort)

	// The admin adds the node at a node address and the NodePort; its token
	// goes into the Secret the manifest's Deployment reads.
	nodeID, token := kw.addNodeAt(t, "kube-pod", "127.0.0.1", nodePort)
	if _, err := kw.cs.CoreV1().Secrets(inst.NS).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: inst.TokenSecret},
		StringData: map[string]string{"token": token},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kube.Apply(t, cfg, manifest, kind("Deployment"))
	// Registered after Apply: runs before the installation is removed.
	t.Cleanup(func() { removeKubeNamespaces(t, kw.cs, node) })
	t.Cleanup(func() {
		if t.Failed() {
			kw.logAgentPods(t, inst.NS, inst.SA)
		}
	})
	started := time.Now()
	w.waitNode(t, nodeID, "online")
	t.Logf("in-cluster agent online through NodePort %d after %s", nodePort, time.Since(started).Round(time.Millisecond))
	tp := kw.stateThumbprint(t, ctx, inst.NS, inst.StateSecret)
	n := kw.nodeThumbprints(t, nodeID)
	if n.ExpectedThumbprint != tp || n.SeenThumbprint != tp {
		t.Fatalf("the control plane pinned %q (seen %q); the agent's state Secret holds %q", n.ExpectedThumbprint, n.SeenThumbprint, tp)
	}

	// A pipeline through the in-cluster agent.
	project := w.newProject(t, "shop-pod", 0.25, "", kubeJourneyGraph())
	d1 := create(t, w.admin, project, w.envID, "pr-p", "v1.0.0")
	d1 = waitStatus(t, w.admin, d1.ID, "running", 3*time.Minute)
	if d1.Node != "kube-pod" || len(d1.Services) != 1 || d1.Services[0].HostPort < 30000 {
		t.Fatalf("running deployment %+v", d1)
	}
	t.Logf("pr-p running %s after the node came online", time.Since(started).Round(time.Millisecond))
	host1 := "web.pr-p.qa.e2e.test"
	kw.waitLink(t, host1, "message: hi")
	kw.waitEnv(t, host1, "API_TOKEN", kw.secret)
	kw.wantOnlyInSecrets(t, node, d1.ID)

	// The agent pod dies while a plugin step of a second deployment runs.
	seen := watchPodsOf(t, kw.cs, node)
	slow := w.newProject(t, "slow-pod", 0.25, "", kubeServiceThenPlugin("wait", map[string]any{"mode": "sleep", "sleep": "20s"}))
	d2 := create(t, w.admin, slow, w.envID, "slow-p", "v1.0.0")
	stepPod := kw.waitStepPodRunning(t, node, d2.ID, "wait")
	agentPod := kube.WaitReadyPod(t, ctx, kw.cs, inst.NS, "app.kubernetes.io/name="+inst.SA, "")
	zero := int64(0)
	if err := kw.cs.CoreV1().Pods(inst.NS).Delete(ctx, agentPod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	kube.WaitReadyPod(t, ctx, kw.cs, inst.NS, "app.kubernetes.io/name="+inst.SA, agentPod.Name)
	// The sync of the new pod rebuilds both: d2 (deploying) ends running;
	// d1 turned deploying with that same sync, then running again.
	d2 = waitStatus(t, w.admin, d2.ID, "running", 4*time.Minute)
	d1 = waitStatus(t, w.admin, d1.ID, "running", 3*time.Minute)
	t.Logf("both running again %s after the agent pod was deleted", time.Since(killed).Round(time.Millisecond))
	if n := kw.nodeThumbprints(t, nodeID); n.ExpectedThumbprint != tp || n.Status != "online" {
		t.Fatalf("node after the agent pod's replacement: %+v (pinned %s)", n, tp)
	}
	if nss := kubeNamespaces(t, kw.cs, node); len(nss) != 2 {
		t.Fatalf("namespaces of the node after the rebuild: %v, want one per deployment", nss)
	}
	for _, d := range []restapi.Deployment{d1, d2} {
		c := waitKubeObjects(t, kw.cs, node, d.ID, "exactly 1 namespace, pod, Deployment, Service and quota", func(c objectCounts) bool {
			return c["namespaces"] == 1 && c["pods"] == 1 && c["deployments"] == 1 && c["services"] == 1 && c["resourcequotas"] == 1
		})
		t.Logf("%s after the rebuild: %s; pods it had: %v", d.Name, c, seen(d.ID))
		kw.wantOnlyInSecrets(t, node, d.ID)
	}
	if _, err := kw.cs.CoreV1().Pods(stepPod.Namespace).Get(ctx, stepPod.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the plugin pod %s of the dead agent is still there (%v)", stepPod.Name, err)
	}
	kw.waitLink(t, host1, "message: hi")
	kw.waitLink(t, "web.slow-p.qa.e2e.test", "hello from web")

	for _, d := range []restapi.Deployment{d1, d2} {
		w.admin.del(fmt.Sprintf("/deployments/%d", d.ID)).want(t, 202)
	}
	for _, d := range []restapi.Deployment{d1, d2} {
		waitStatus(t, w.admin, d.ID, "deleted", 3*time.Minute)
		if c := kubeObjectsOf(t, kw.cs, node, d.ID); c.total() != 0 {
			t.Fatalf("%s deleted, left %s", d.Name, c)
		}
	}
	if left := kubeNamespaces(t, kw.cs, node); len(left) != 0 {
		t.Fatalf("namespaces left after delete: %v", left)
	}

	// Reinstall without the state Secret: a new certificate, which the
	// control plane refuses until the admin approves it.
	kw.scaleAgent(t, ctx, inst.NS, inst.SA, 0)
	if err := kw.cs.CoreV1().Secrets(inst.NS).Delete(ctx, inst.StateSecret, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	kw.scaleAgent(t, ctx, inst.NS, inst.SA, 1)
	untrusted := w.waitNodeTrust(t, nodeID, "untrusted", func(n nodeTrust) bool { return n.Status == "untrusted" })
	tp2 := kw.stateThumbprint(t, ctx, inst.NS, inst.StateSecret)
	n = kw.nodeThumbprints(t, nodeID)
	if tp2 == tp || n.SeenThumbprint != tp2 || n.ExpectedThumbprint != tp {
		t.Fatalf("after the reinstall: state Secret %s, node seen %s expected %s (old %s); %s", tp2, n.SeenThumbprint, n.ExpectedThumbprint, tp, untrusted.Reason)
	}
	w.admin.post(fmt.Sprintf("/nodes/%d/approve-thumbprint", nodeID), map[string]any{"thumbprint": tp2}).want(t, 200)
	w.waitNodeTrust(t, nodeID, "online after the approval", online)
	if n := kw.nodeThumbprints(t, nodeID); n.ExpectedThumbprint != tp2 {
		t.Fatalf("pinned after the approval: %s, want %s", n.ExpectedThumbprint, tp2)
	}
	t.Logf("from the node's creation to its approval after the reinstall: %s", time.Since(started).Round(time.Millisecond))
}

// addNodeAt adds a node at host:port through the API (its agent is started
// elsewhere) and returns its id and token.
func (kw *kubeWorld) addNodeAt(t *testing.T, name, host string, port int) (int64, string) {
	t.Helper()
	var out struct {
		ID    int64  `json:"id"`
		Token string `json:"token"`
		Node  struct {
			ID int64 `json:"id"`
		} `json:"node"`
	}
	kw.admin.post(fmt.Sprintf("/environments/%d/nodes", kw.envID), map[string]any{"name": name, "host": host, "port": port}).
		want(t, 201).decode(t, &out)
	id := out.ID
	if id == 0 {
		id = out.Node.ID
	}
	if id == 0 || out.Token == "" {
		t.Fatalf("node creation returned no id or token")
	}
	return id, out.Token
}

type nodeThumbprints struct {
	Status             string `json:"status"`
	ExpectedThumbprint string `json:"expected_thumbprint"`
	SeenThumbprint     string `json:"seen_thumbprint"`
}

func (kw *kubeWorld) nodeThumbprints(t *testing.T, id int64) nodeThumbprints {
	t.Helper()
	var n nodeThumbprints
	kw.admin.get(fmt.Sprintf("/nodes/%d", id)).want(t, 200).decode(t, &n)
	return n
}

// stateThumbprint waits until the agent's state Secret holds its
// certificate and returns the certificate's thumbprint (what an admin
// reads with kubectl and openssl).
func (kw *kubeWorld) stateThumbprint(t *testing.T, ctx context.Context, ns, name string) string {
	t.Helper()
	var tp string
	testutil.WaitFor(t, ctx, 250*time.Millisecond, "the agent's certificate in its state Secret", func() bool {
		sec, err := kw.cs.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		block, _ := pem.Decode(sec.Data[certs.CertFile])
		if block == nil {
			return false
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return false
		}
		tp = certs.Thumbprint(c.Raw)
		return true
	})
	return tp
}

// scaleAgent sets the agent Deployment's replicas and waits until that
// many agent pods exist (0: all gone).
func (kw *kubeWorld) scaleAgent(t *testing.T, ctx context.Context, ns, name string, replicas int32) {
	t.Helper()
	if _, err := kw.cs.AppsV1().Deployments(ns).UpdateScale(ctx, name, &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       autoscalingv1.ScaleSpec{Replicas: replicas},
	}, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if replicas > 0 {
		kube.WaitReadyPod(t, ctx, kw.cs, ns, "app.kubernetes.io/name="+name, "")
		return
	}
	testutil.WaitFor(t, ctx, 250*time.Millisecond, "no agent pod", func() bool {
		pods, err := kw.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + name})
		return err == nil && len(pods.Items) == 0
	})
}

// logAgentPods logs the tail of every agent pod's log (after a failure).
func (kw *kubeWorld) logAgentPods(t *testing.T, ns, app string) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pods, err := kw.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + app})
	if err != nil {
		return
	}
	lines := int64(60)
	for _, p := range pods.Items {
		b, _ := kw.cs.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: &lines}).DoRaw(ctx)
		t.Logf("agent pod %s log:\n%s", p.Name, b)
	}
}
