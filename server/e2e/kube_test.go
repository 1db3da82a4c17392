package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/nullops/nullops/internal/testutil"
	testkube "github.com/nullops/nullops/internal/testutil/kube"
	"github.com/nullops/nullops/restapi"
)

// TestKubernetesRuntimeEndToEnd: a real server and a real agent process
// with runtime kubernetes (outside the cluster, through a kubeconfig), a
// demo-like pipeline (a plugin step whose output reaches a service's env,
// the service behind the ingress) created through the public API from
// images in a registry with credentials (imagePullSecrets); the route
// the server publishes leads to the agent's kubernetes.routehost (the
// cluster node's address, not the node's host in NullOps) with the
// NodePort, and the link answers through nullops-ingress there; delete leaves no namespace, pod,
// service or secret of the deployment. Runs with NULLOPS_K8S=1 and
// KUBECONFIG of the test cluster.
func TestKubernetesRuntimeEndToEnd(t *testing.T) {
	if os.Getenv("NULLOPS_K8S") != "1" {
		t.Skip("Kubernetes tests run with NULLOPS_K8S=1 and KUBECONFIG")
	}
	kc := os.Getenv("KUBECONFIG")
	if kc == "" {
		t.Fatal("NULLOPS_K8S=1 but KUBECONFIG is not set")
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Discovery().ServerVersion(); err != nil {
		t.Fatalf("the test cluster does not answer: %v", err)
	}

	w := &world{unique: fmt.Sprintf("%x", time.Now().UnixNano()&0xffffff)}
	w.srv = startServer(t)
	w.admin = login(t, w.srv.URL, adminUser, adminPass)
	reg := testutil.StartRegistry(t, "e2e", "e2e-registry-pw")
	web := testutil.ScratchImage(t, "./scripts/images/demo-web", "nullops-e2e/demo-web:build")
	plugin := testutil.ScratchImage(t, "./scripts/images/test-plugin", "nullops-e2e/test-plugin:build")
	reg.Push(t, web, "e2e/web", "v1.0.0")
	reg.Push(t, plugin, "e2e/plugin", "1")
	w.regID = idOf(t, w.admin.post("/registries", map[string]any{
		"name": "local", "url": "http://" + reg.Host, "username": "e2e", "password": "e2e-registry-pw", "insecure": true,
	}).want(t, 201))
	w.admin.post("/services", map[string]any{
		"name": "e2e-web", "registry_id": w.regID, "image": "e2e/web", "tag_mode": "selectable", "tag_pattern": "v*",
		"ports": []int{8080}, "health": map[string]any{"http": "/healthz"},
	}).want(t, 201)
	w.admin.post("/plugins", map[string]any{
		"name": "e2e-setup", "registry_id": w.regID, "image": "e2e/plugin", "tag": "1", "cpu": 0.1, "memory_mb": 32, "timeout": "60s",
	}).want(t, 201)
	w.envID = idOf(t, w.admin.post("/environments", map[string]any{"name": "qa", "base_domain": "e2e.test", "default_ttl": "1h"}).want(t, 201))
	w.project = w.newProject(t, "shop", 0.25, "", pipelineGraph("ok"))
	// The node's host in NullOps is 127.0.0.1 (where the server dials the
	// agent); the agent's operator sends the ingress to the cluster node's
	// own address instead (kubernetes.routehost), where its NodePorts
	// answer too.
	nodeIP := testkube.NodeIP(t, cs)
	kubeAgent := func(a *agent) {
		a.args = append(a.args, "--runtime=kubernetes", "--kubernetes.kubeconfig="+kc, "--kubernetes.routehost="+nodeIP)
	}
	w.node, w.nodeID = w.addNode(t, w.envID, "kube-1", 0, 0, kubeAgent)
	t.Cleanup(func() { removeKubeNamespaces(t, cs, w.node.node) })
	ing := startIngressFor(t, w.srv.URL, w.srv.App.Config.Ingress.Token)

	d := create(t, w.admin, w.project, w.envID, "pr-k", "v1.0.0")
	d = waitStatus(t, w.admin, d.ID, "running", 3*time.Minute)
	if len(d.Services) != 1 || d.Services[0].HostPort < 30000 || d.Services[0].HostPort > 32767 {
		t.Fatalf("running deployment's services %+v: want a NodePort", d.Services)
	}
	// The published route leads to the route host with the NodePort, not
	// to the node's host.
	w.waitRoutes(t, map[int64]string{d.ID: "http://" + net.JoinHostPort(nodeIP, strconv.Itoa(d.Services[0].HostPort))}, time.Minute)
	ns := kubeNamespaces(t, cs, w.node.node)
	if len(ns) != 1 {
		t.Fatalf("namespaces of the node: %v", ns)
	}
	// Through nullops-ingress, by the deployment's host name; the plugin's
	// output is in the service's env.
	host := "web.pr-k.qa.e2e.test"
	deadline := time.Now().Add(time.Minute)
	for {
		code, body := ing.get(host)
		if code == 200 && strings.Contains(body, "message: hi") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s through the ingress: %d %q", host, code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Service logs through the API (the pods API).
	r := w.admin.get(fmt.Sprintf("/deployments/%d/logs?service=web&tail=50", d.ID)).want(t, 200)
	if !strings.Contains(string(r.Body), "listening") {
		t.Fatalf("service logs %q", r.Body)
	}
	// Step logs: the plugin's stderr, read over attach.
	var logs struct {
		Items []struct {
			Chunk string `json:"chunk"`
		} `json:"items"`
	}
	w.admin.get(fmt.Sprintf("/deployments/%d/steps/setup/logs", d.ID)).want(t, 200).decode(t, &logs)
	var all strings.Builder
	for _, l := range logs.Items {
		all.WriteString(l.Chunk)
	}
	if !strings.Contains(all.String(), "setup says hello") {
		t.Fatalf("step logs %q lack the plugin's stderr", all.String())
	}

	var del restapi.Deployment
	w.admin.del(fmt.Sprintf("/deployments/%d", d.ID)).want(t, 202).decode(t, &del)
	waitStatus(t, w.admin, d.ID, "deleted", 3*time.Minute)
	ing.waitStatus(t, host, 410, time.Minute)
	// Nothing is left: the namespace (and with it every pod, service and
	// secret of the deployment) is gone.
	if left := kubeNamespaces(t, cs, w.node.node); len(left) != 0 {
		t.Fatalf("namespaces left after delete: %v", left)
	}
	for _, kind := range []string{"pods", "services", "secrets"} {
		if n := kubeCount(t, cs, kind, ns[0]); n != 0 {
			t.Fatalf("%d %s left in %s", n, kind, ns[0])
		}
	}
}

func kubeNamespaces(t *testing.T, cs kubernetes.Interface, node string) []string {
	t.Helper()
	list, err := cs.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{LabelSelector: "nullops.node=" + node})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range list.Items {
		out = append(out, n.Name)
	}
	return out
}

func kubeCount(t *testing.T, cs kubernetes.Interface, kind, ns string) int {
	t.Helper()
	ctx := context.Background()
	var n int
	var err error
	switch kind {
	case "pods":
		l, e := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if e == nil {
			n = len(l.Items)
		}
		err = e
	case "services":
		l, e := cs.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
		if e == nil {
			n = len(l.Items)
		}
		err = e
	case "secrets":
		l, e := cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
		if e == nil {
			n = len(l.Items)
		}
		err = e
	}
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func removeKubeNamespaces(t *testing.T, cs kubernetes.Interface, node string) {
	for _, ns := range kubeNamespaces(t, cs, node) {
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	}
}
