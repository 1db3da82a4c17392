package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/internal/testutil/kube"
	"github.com/nullops/nullops/restapi"
)

// The Kubernetes end-to-end tests: a real server, a real nullops-agent with
// runtime kubernetes (a process outside the cluster here; a pod installed
// with deploy/kubernetes/agent.yaml in kube_incluster_test.go), a real
// registry with credentials, nullops-ingress, and the project's test
// cluster (NULLOPS_K8S=1, KUBECONFIG). Everything is asked of the server's
// API as a user would; the cluster is only looked at, with an admin
// client, to count what is left.

// kubeWorld is a control plane ready for Kubernetes nodes: the catalog
// (service e2e-web from a registry with credentials, plugin e2e-setup, the
// secret kube_token), environment qa and an ingress.
type kubeWorld struct {
	*world
	cs     kubernetes.Interface
	kc     string // kubeconfig of the test cluster
	ing    *ingressProc
	secret string // the value of ${secrets.kube_token}
	// nodeIP is the cluster node's own address, where its NodePorts
	// answer: the process agent's kubernetes.routehost.
	nodeIP string
	// expiring is the deployment left to expire while the other steps
	// run: their checks of the node's namespaces leave it out.
	expiring int64
}

func newKubeWorld(t *testing.T) *kubeWorld {
	t.Helper()
	kc := kube.Kubeconfig(t) // skips unless NULLOPS_K8S=1
	cs := kube.Client(t)
	w := &world{unique: newUnique()}
	w.srv = startServer(t)
	w.admin = login(t, w.srv.URL, adminUser, adminPass)
	reg := testutil.StartRegistry(t, "e2e", "e2e-registry-pw")
	web := testutil.ScratchImage(t, "./scripts/images/demo-web", "nullops-e2e/demo-web:build")
	plugin := testutil.ScratchImage(t, "./scripts/images/test-plugin", "nullops-e2e/test-plugin:build")
	reg.Push(t, web, "e2e/web", "v1.0.0", "v1.1.0")
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
	secret := "kube-secret-" + w.unique + "-value"
	w.admin.post("/secrets", map[string]any{"name": "kube_token", "value": secret}).want(t, 201)
	w.envID = idOf(t, w.admin.post("/environments", map[string]any{"name": "qa", "base_domain": "e2e.test", "default_ttl": "1h"}).want(t, 201))
	ing := startIngressFor(t, w.srv.URL, w.srv.App.Config.Ingress.Token)
	return &kubeWorld{world: w, cs: cs, kc: kc, ing: ing, secret: secret, nodeIP: kube.NodeIP(t, cs)}
}

// kubeJourneyGraph: a plugin step whose output reaches the service's env,
// the service with a secret in its env, behind the ingress.
func kubeJourneyGraph() map[string]any {
	return map[string]any{
		"nodes": []map[string]any{
			{"id": "setup", "kind": "component", "plugin": "e2e-setup",
				"params": map[string]any{"mode": "ok", "stderr": "setup says hello", "outputs": map[string]any{"greeting": "hi"}}},
			{"id": "web", "kind": "service", "service": "e2e-web", "port": 8080, "ingress": true,
				"env": map[string]any{"MESSAGE": "${steps.setup.outputs.greeting}", "SERVICE_NAME": "web", "API_TOKEN": "${secrets.kube_token}"}},
		},
		"edges": [][2]string{{"setup", "web"}},
	}
}

// kubeServiceThenPlugin: the service (with the secret) first, then a plugin
// step with params: what a failing or slow step has made before it ends.
func kubeServiceThenPlugin(step string, params map[string]any) map[string]any {
	return map[string]any{
		"nodes": []map[string]any{
			{"id": "web", "kind": "service", "service": "e2e-web", "port": 8080, "ingress": true,
				"env": map[string]any{"SERVICE_NAME": "web", "API_TOKEN": "${secrets.kube_token}"}},
			{"id": step, "kind": "component", "plugin": "e2e-setup", "params": params},
		},
		"edges": [][2]string{{"web", step}},
	}
}

// processKubeAgent runs the agent process with runtime kubernetes through
// the test cluster's kubeconfig. The node's host in NullOps is 127.0.0.1
// (where the server dials the agent); the agent's operator sends the
// ingress to the cluster node's own address instead
// (kubernetes.routehost), where its NodePorts answer too.
func (kw *kubeWorld) processKubeAgent(a *agent) {
	a.args = append(a.args, "--runtime=kubernetes", "--kubernetes.kubeconfig="+kw.kc, "--kubernetes.routehost="+kw.nodeIP)
}

// TestKubernetesRuntimeEndToEnd: a Kubernetes node (the agent process with
// runtime kubernetes, outside the cluster) in an environment, driven
// through the API as a user would, step by step on one control plane:
//
//   - journey: a pipeline with a plugin step and a service using a secret,
//     from a registry with credentials; the route the server publishes
//     leads to the agent's kubernetes.routehost (the cluster node's
//     address, not the node's host in NullOps) with the NodePort; clone;
//     extend; both answer through nullops-ingress; the secret reaches the service from a Kubernetes
//     Secret of the deployment's namespace and is in no pod or Deployment
//     spec; logs; delete leaves nothing;
//   - a failing plugin: the deployment ends failed with the plugin's error
//     in the API, and the rollback leaves zero objects of it;
//   - the agent killed (SIGKILL) while a plugin step runs, then started
//     again: the deployment ends failed (interrupted, rolled back), with
//     nothing of it left in the cluster;
//   - a TTL expiry: the cleanup job deletes the expired deployment and
//     nothing of it is left. The deployment is created first and expires
//     while the other steps run, so its minute is not waited for alone.
func TestKubernetesRuntimeEndToEnd(t *testing.T) {
	t.Parallel()
	kw := newKubeWorld(t)
	w := kw.world
	w.node, w.nodeID = w.addNode(t, w.envID, "kube-1", 0, 0, kw.processKubeAgent)
	t.Cleanup(func() { removeKubeNamespaces(t, kw.cs, w.node.node) })
	var expiring restapi.Deployment
	t.Run("a deployment with a 1-minute TTL runs", func(t *testing.T) { expiring = kw.startExpiring(t) })
	t.Run("journey: create, clone, extend, secret, delete", func(t *testing.T) { kw.journey(t, w.node.node, "pr-k", kw.nodeIP) })
	t.Run("a failing plugin rolls back to zero objects", func(t *testing.T) { kw.failingPlugin(t, w.node.node) })
	t.Run("agent killed mid-pipeline", func(t *testing.T) { kw.agentKilledMidPipeline(t) })
	t.Run("a TTL expiry leaves zero objects", func(t *testing.T) { kw.ttlExpiry(t, expiring) })
}

// expiringHost is the link of the deployment startExpiring creates.
const expiringHost = "web.brief-1.qa.e2e.test"

// startExpiring creates a deployment of a project with the shortest TTL
// (1 minute) and waits until it runs and answers; ttlExpiry checks its end.
func (kw *kubeWorld) startExpiring(t *testing.T) restapi.Deployment {
	w := kw.world
	project := w.newProject(t, "brief", 0.25, "1m", kubeServiceThenPlugin("setup", map[string]any{"mode": "ok"}))
	d := create(t, w.admin, project, w.envID, "brief-1", "v1.0.0")
	kw.expiring = d.ID
	d = waitStatus(t, w.admin, d.ID, "running", 3*time.Minute)
	kw.waitLink(t, expiringHost, "hello from web")
	counts := waitKubeObjects(t, kw.cs, w.node.node, d.ID, "1 pod, 1 Deployment, 1 Service", func(c objectCounts) bool {
		return c["pods"] == 1 && c["deployments"] == 1 && c["services"] == 1
	})
	t.Logf("running until it expires at %s: %s", d.ExpiresAt.Format(time.RFC3339), counts)
	return d
}

// ttlExpiry: the deployment startExpiring created is deleted by the
// cleanup job (every second here) when it expires: the system's "expired"
// in its history, 410 at its link, and nothing of it left in the cluster.
func (kw *kubeWorld) ttlExpiry(t *testing.T, d restapi.Deployment) {
	if d.ID == 0 {
		t.Fatal("the expiring deployment was not started")
	}
	w := kw.world
	node := w.node.node
	host := expiringHost
	waitStatus(t, w.admin, d.ID, "deleted", max(time.Until(d.ExpiresAt), 0)+2*time.Minute)
	type entry struct {
		Action string `json:"action"`
		Actor  string `json:"actor"`
	}
	var hist struct {
		Items []entry `json:"items"`
	}
	w.admin.get(fmt.Sprintf("/deployments/%d/history", d.ID)).want(t, 200).decode(t, &hist)
	if !slices.Contains(hist.Items, entry{Action: "expired", Actor: "system"}) {
		t.Fatalf("history %+v has no expiry by the system", hist.Items)
	}
	kw.ing.waitStatus(t, host, 410, time.Minute)
	if c := kubeObjectsOf(t, kw.cs, node, d.ID); c.total() != 0 {
		t.Fatalf("expired deployment left %s", c)
	}
	kw.expiring = 0
	if left := kubeNamespaces(t, kw.cs, node); len(left) != 0 {
		t.Fatalf("namespaces of the node after the expiry: %v", left)
	}
}

// journey: create → running (NodePort, the route to routeHost and the
// NodePort, link through the ingress, the plugin's output and the secret
// in the service's env) → clone → extend → both run → the secret is only
// in Secrets → logs → delete → nothing left.
func (kw *kubeWorld) journey(t *testing.T, node, name, routeHost string) {
	w := kw.world
	started := time.Now()
	project := w.newProject(t, "shop-"+name, 0.25, "", kubeJourneyGraph())
	d := create(t, w.admin, project, w.envID, name, "v1.0.0")
	d = waitStatus(t, w.admin, d.ID, "running", 3*time.Minute)
	t.Logf("%s running after %s", name, time.Since(started).Round(time.Millisecond))
	if len(d.Services) != 1 || d.Services[0].HostPort < 30000 || d.Services[0].HostPort > 32767 {
		t.Fatalf("running deployment's services %+v: want a NodePort", d.Services)
	}
	// The published route leads to the route host with the NodePort, not
	// to the node's host.
	w.waitRoutes(t, map[int64]string{d.ID: "http://" + net.JoinHostPort(routeHost, strconv.Itoa(d.Services[0].HostPort))}, time.Minute)
	host := "web." + name + ".qa.e2e.test"
	kw.waitLink(t, host, "message: hi")
	kw.waitEnv(t, host, "API_TOKEN", kw.secret)

	// Service logs through the API (the pods API); step logs: the plugin's
	// stderr, read over attach.
	r := w.admin.get(fmt.Sprintf("/deployments/%d/logs?service=web&tail=50", d.ID)).want(t, 200)
	if !strings.Contains(string(r.Body), "listening") {
		t.Fatalf("service logs %q", r.Body)
	}
	kw.checkStepLog(t, d.ID, "setup", "setup says hello")

	// Clone with another tag: a second namespace, its own NodePort.
	var cl restapi.Deployment
	w.admin.post(fmt.Sprintf("/deployments/%d/clone", d.ID), map[string]any{"name": name + "-copy", "tags": map[string]string{"e2e-web": "v1.1.0"}}).
		want(t, 202).decode(t, &cl)
	if cl.ClonedFrom == nil || *cl.ClonedFrom != d.ID || cl.Tags["e2e-web"] != "v1.1.0" {
		t.Fatalf("clone %+v", cl)
	}
	cl = waitStatus(t, w.admin, cl.ID, "running", 3*time.Minute)
	if cl.Services[0].Tag != "v1.1.0" || cl.Services[0].HostPort == d.Services[0].HostPort {
		t.Fatalf("clone services %+v (original %+v)", cl.Services, d.Services)
	}
	cloneHost := "web." + name + "-copy.qa.e2e.test"
	kw.waitLink(t, cloneHost, "message: hi")
	kw.waitEnv(t, cloneHost, "API_TOKEN", kw.secret)

	// Extend: expires_at moves (the clone took more than a second).
	var ext restapi.Deployment
	w.admin.post(fmt.Sprintf("/deployments/%d/extend", d.ID), nil).want(t, 200).decode(t, &ext)
	if !ext.ExpiresAt.After(d.ExpiresAt) || ext.Status != "running" {
		t.Fatalf("extend: %s, expires_at %s, before %s", ext.Status, ext.ExpiresAt, d.ExpiresAt)
	}
	// Both still run and answer after the extend.
	for _, h := range []string{host, cloneHost} {
		kw.waitLink(t, h, "hello from web")
	}

	nss := kw.namespaces(t, node)
	if len(nss) != 2 {
		t.Fatalf("namespaces of the node with a deployment and its clone: %v", nss)
	}
	for _, id := range []int64{d.ID, cl.ID} {
		kw.wantOnlyInSecrets(t, node, id)
		counts := waitKubeObjects(t, kw.cs, node, id, "1 pod, 1 Deployment, 1 Service", func(c objectCounts) bool {
			return c["pods"] == 1 && c["deployments"] == 1 && c["services"] == 1
		})
		t.Logf("deployment %d running: %s", id, counts)
	}

	for _, id := range []int64{d.ID, cl.ID} {
		w.admin.del(fmt.Sprintf("/deployments/%d", id)).want(t, 202)
	}
	for _, id := range []int64{d.ID, cl.ID} {
		waitStatus(t, w.admin, id, "deleted", 3*time.Minute)
	}
	for _, h := range []string{host, cloneHost} {
		kw.ing.waitStatus(t, h, 410, time.Minute)
	}
	for _, id := range []int64{d.ID, cl.ID} {
		if c := kubeObjectsOf(t, kw.cs, node, id); c.total() != 0 {
			t.Fatalf("deployment %d deleted, left in the cluster: %s", id, c)
		}
	}
	if left := kw.namespaces(t, node); len(left) != 0 {
		t.Fatalf("namespaces left after delete: %v", left)
	}
	t.Logf("journey %s took %s", name, time.Since(started).Round(time.Millisecond))
}

// failingPlugin: the service starts, the plugin after it exits 7: the
// deployment ends failed with the step and the plugin's exit in the API,
// and nothing of it is left (namespace, pods, services, secrets, quota,
// policies, Deployments), though the cluster held all of these while it
// ran.
func (kw *kubeWorld) failingPlugin(t *testing.T, node string) {
	w := kw.world
	started := time.Now()
	seen := watchPodsOf(t, kw.cs, node)
	project := w.newProject(t, "broken", 0.25, "", kubeServiceThenPlugin("check", map[string]any{"mode": "exit", "code": 7}))
	d := create(t, w.admin, project, w.envID, "broken-1", "v1.0.0")
	d = waitStatus(t, w.admin, d.ID, "failed", 3*time.Minute)
	t.Logf("failed after %s: step %q: %s", time.Since(started).Round(time.Millisecond), d.FailedStep, d.Reason)
	if d.FailedStep != "check" || !strings.Contains(d.Reason, "plugin exited with code 7") {
		t.Fatalf("failed deployment: step %q reason %q", d.FailedStep, d.Reason)
	}
	for _, s := range d.Steps {
		switch s.ID {
		case "web":
			if s.Status != "succeeded" {
				t.Fatalf("step web %+v: the service ran before the plugin", s)
			}
		case "check":
			if s.Status != "failed" || !strings.Contains(s.Message, "plugin exited with code 7") {
				t.Fatalf("step check %+v: want failed with the plugin's exit", s)
			}
		}
	}
	// Failed is reported after the rollback: nothing is left at once.
	if c := kubeObjectsOf(t, kw.cs, node, d.ID); c.total() != 0 {
		t.Fatalf("rolled back deployment left %s", c)
	}
	pods := seen(d.ID)
	t.Logf("pods the deployment had while it ran: %v; left: 0", pods)
	if !hasPrefixIn(pods, "web-") || !hasPrefixIn(pods, "step-check-") {
		t.Fatalf("the deployment never had its service pod and plugin pod (saw %v): nothing was rolled back", pods)
	}
}

// agentKilledMidPipeline: the agent process is killed (SIGKILL) while the
// plugin step after the service runs; its pod keeps running in the
// cluster. The agent comes back with its data dir: the interrupted
// pipeline is failed and rolled back (its secrets were only in memory), so
// the deployment ends failed with the step and why, and nothing of it is
// left, the orphaned plugin pod included.
func (kw *kubeWorld) agentKilledMidPipeline(t *testing.T) {
	w := kw.world
	node := w.node.node
	seen := watchPodsOf(t, kw.cs, node)
	project := w.newProject(t, "slow", 0.25, "", kubeServiceThenPlugin("wait", map[string]any{"mode": "sleep", "sleep": "45s"}))
	d := create(t, w.admin, project, w.envID, "slow-1", "v1.0.0")
	pod := kw.waitStepPodRunning(t, node, d.ID, "wait")
	started := time.Now()
	w.node.kill()
	w.waitNode(t, w.nodeID, "offline")
	if p, err := kw.cs.CoreV1().Pods(pod.Namespace).Get(context.Background(), pod.Name, metav1.GetOptions{}); err != nil || p.Status.Phase != corev1.PodRunning {
		t.Fatalf("the plugin pod %s did not outlive the agent (%v): the test kills nothing mid-pipeline", pod.Name, err)
	}
	w.node.start()
	w.waitNode(t, w.nodeID, "online")
	d = waitStatus(t, w.admin, d.ID, "failed", 3*time.Minute)
	t.Logf("failed %s after the kill: step %q: %s", time.Since(started).Round(time.Millisecond), d.FailedStep, d.Reason)
	if d.FailedStep != "wait" || !strings.Contains(d.Reason, "agent restarted") {
		t.Fatalf("deployment after the agent's restart: step %q reason %q", d.FailedStep, d.Reason)
	}
	if c := kubeObjectsOf(t, kw.cs, node, d.ID); c.total() != 0 {
		t.Fatalf("interrupted deployment left %s", c)
	}
	if left := kw.namespaces(t, node); len(left) != 0 {
		t.Fatalf("namespaces of the node after the restart: %v", left)
	}
	t.Logf("pods the deployment had: %v; left: 0", seen(d.ID))
	// The user deletes the failed deployment: nothing else happens.
	w.admin.del(fmt.Sprintf("/deployments/%d", d.ID)).want(t, 202)
	waitStatus(t, w.admin, d.ID, "deleted", time.Minute)
}

// --- helpers ------------------------------------------------------------------

// waitLink waits until host answers 200 through nullops-ingress with want
// in its body.
func (kw *kubeWorld) waitLink(t *testing.T, host, want string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		code, body := kw.ing.get(host)
		if code == 200 && strings.Contains(body, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s through the ingress: %d %q, want 200 with %q", host, code, body, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitEnv waits until the service behind host reports env[key] == value
// (GET /env of demo-web, through the ingress).
func (kw *kubeWorld) waitEnv(t *testing.T, host, key, value string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		req, _ := http.NewRequest(http.MethodGet, "http://"+kw.ing.app.Addr()+"/env", nil)
		req.Host = host
		var env map[string]string
		status := 0
		if res, err := ingressClient.Do(req); err == nil {
			b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<16))
			res.Body.Close()
			status = res.StatusCode
			_ = json.Unmarshal(b, &env)
		}
		if status == 200 && env[key] == value {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/env through the ingress: %d, %s is not the expected value", host, status, key)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkStepLog logs (does not fail) when the stored logs of step lack
// want: a plugin's stderr arrives over attach, and the test cluster may
// lose the output of a process that exits at once (docs/kubernetes.md).
func (kw *kubeWorld) checkStepLog(t *testing.T, id int64, step, want string) {
	t.Helper()
	var logs struct {
		Items []struct {
			Chunk string `json:"chunk"`
		} `json:"items"`
	}
	kw.admin.get(fmt.Sprintf("/deployments/%d/steps/%s/logs", id, step)).want(t, 200).decode(t, &logs)
	var all strings.Builder
	for _, l := range logs.Items {
		all.WriteString(l.Chunk)
	}
	if !strings.Contains(all.String(), want) {
		t.Logf("step %s logs %q lack %q (output of a short-lived process lost by the cluster's attach: docs/kubernetes.md)", step, all.String(), want)
	}
}

// wantOnlyInSecrets: the secret's value is in no pod, Deployment or
// ReplicaSet of the cluster, and among Secrets only in the deployment's
// own namespace.
func (kw *kubeWorld) wantOnlyInSecrets(t *testing.T, node string, id int64) {
	t.Helper()
	ctx := context.Background()
	nss := kubeNamespacesOf(t, kw.cs, node, id)
	if len(nss) != 1 {
		t.Fatalf("namespaces of deployment %d: %v", id, nss)
	}
	ns := nss[0]
	contains := func(v any) bool {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Contains(string(b), kw.secret)
	}
	pods, err := kw.cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if contains(p) {
			t.Fatalf("the secret's value is in pod %s/%s", p.Namespace, p.Name)
		}
	}
	deps, err := kw.cs.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range deps.Items {
		if contains(d) {
			t.Fatalf("the secret's value is in Deployment %s/%s", d.Namespace, d.Name)
		}
	}
	rss, err := kw.cs.AppsV1().ReplicaSets("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rss.Items {
		if contains(r) {
			t.Fatalf("the secret's value is in ReplicaSet %s/%s", r.Namespace, r.Name)
		}
	}
	secs, err := kw.cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var holders []string
	for _, s := range secs.Items {
		for _, v := range s.Data {
			if strings.Contains(string(v), kw.secret) {
				holders = append(holders, s.Name)
				break
			}
		}
	}
	if len(holders) != 1 || holders[0] != "env.web" {
		t.Fatalf("Secrets of %s holding the secret's value: %v, want [env.web]", ns, holders)
	}
}

// waitStepPodRunning watches the pods of deployment id until the plugin
// pod of step runs.
func (kw *kubeWorld) waitStepPodRunning(t *testing.T, node string, id int64, step string) *corev1.Pod {
	t.Helper()
	ctx := testutil.Context(t, 3*time.Minute)
	sel := fmt.Sprintf("nullops.node=%s,nullops.deployment=%d,nullops.step=%s", node, id, step)
	for {
		list, err := kw.cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			t.Fatalf("pods of step %s: %v", step, err)
		}
		for i := range list.Items {
			if p := &list.Items[i]; p.Status.Phase == corev1.PodRunning {
				return p
			}
		}
		wt, err := kw.cs.CoreV1().Pods("").Watch(ctx, metav1.ListOptions{LabelSelector: sel, ResourceVersion: list.ResourceVersion})
		if err != nil {
			t.Fatalf("watch pods of step %s: %v", step, err)
		}
		for ev := range wt.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok && ev.Type != watch.Deleted && p.Status.Phase == corev1.PodRunning {
				wt.Stop()
				return p
			}
		}
		wt.Stop()
		if ctx.Err() != nil {
			d := getDeployment(t, kw.admin, id)
			t.Fatalf("no running pod of step %s (deployment %s: %s)", step, d.Status, d.Reason)
		}
		// The watch ended (or was refused: see watchPodsOf): list again.
		time.Sleep(250 * time.Millisecond)
	}
}

// watchPodsOf records the names of the pods of node's deployments as the
// cluster creates them, from now on; the returned function lists those of
// one deployment. It lists, then watches from the list's version, and
// starts over whenever the watch ends (the test cluster's API server
// sometimes refuses a fresh watch with "Too large resource version" while
// its watch cache catches up).
func watchPodsOf(t *testing.T, cs kubernetes.Interface, node string) func(id int64) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	opts := metav1.ListOptions{LabelSelector: "nullops.node=" + node}
	var mu sync.Mutex
	seen := map[string]map[string]bool{}
	record := func(p *corev1.Pod) {
		mu.Lock()
		defer mu.Unlock()
		id := p.Labels["nullops.deployment"]
		if seen[id] == nil {
			seen[id] = map[string]bool{}
		}
		seen[id][p.Name] = true
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			list, err := cs.CoreV1().Pods("").List(ctx, opts)
			if err == nil {
				for i := range list.Items {
					record(&list.Items[i])
				}
				o := opts
				o.ResourceVersion = list.ResourceVersion
				if wt, err := cs.CoreV1().Pods("").Watch(ctx, o); err == nil {
					for ev := range wt.ResultChan() {
						if p, ok := ev.Object.(*corev1.Pod); ok {
							record(p)
						}
					}
					wt.Stop()
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return func(id int64) []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for n := range seen[fmt.Sprint(id)] {
			out = append(out, n)
		}
		sort.Strings(out)
		return out
	}
}

func hasPrefixIn(names []string, prefix string) bool {
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			return true
		}
	}
	return false
}

// objectCounts counts a deployment's objects by kind.
type objectCounts map[string]int

func (c objectCounts) total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

func (c objectCounts) String() string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d %s", c[k], k)
	}
	return b.String()
}

// waitKubeObjects waits (up to 30 s: a finished plugin pod is deleted
// without waiting for it to go) until the counts of deployment id satisfy
// ok, and returns them.
func waitKubeObjects(t *testing.T, cs kubernetes.Interface, node string, id int64, want string, ok func(objectCounts) bool) objectCounts {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c := kubeObjectsOf(t, cs, node, id)
		if ok(c) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("deployment %d has %s, want %s", id, c, want)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// kubeObjectsOf counts, cluster-wide, the objects labelled with node and
// deployment id: namespaces, pods, services, secrets, resource quotas,
// network policies, Deployments and role bindings, plus everything in its
// namespaces whatever their labels.
func kubeObjectsOf(t *testing.T, cs kubernetes.Interface, node string, id int64) objectCounts {
	t.Helper()
	ctx := context.Background()
	sel := metav1.ListOptions{LabelSelector: fmt.Sprintf("nullops.node=%s,nullops.deployment=%d", node, id)}
	c := objectCounts{}
	nss := kubeNamespacesOf(t, cs, node, id)
	c["namespaces"] = len(nss)
	seenIn := func(ns string) bool {
		for _, n := range nss {
			if n == ns {
				return true
			}
		}
		return false
	}
	count := func(kind string, list func(metav1.ListOptions) ([]metav1.Object, error)) {
		items, err := list(sel)
		if err != nil {
			t.Fatal(err)
		}
		c[kind] = len(items)
		// In its namespaces, unlabelled objects count too.
		for _, ns := range nss {
			all, err := list(metav1.ListOptions{FieldSelector: "metadata.namespace=" + ns})
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range all {
				if o.GetLabels()["nullops.deployment"] != fmt.Sprint(id) && seenIn(o.GetNamespace()) {
					c[kind]++
				}
			}
		}
	}
	count("pods", func(o metav1.ListOptions) ([]metav1.Object, error) {
		l, err := cs.CoreV1().Pods("").List(ctx, o)
		if err != nil {
			return nil, err
		}
		return ptrs(l.Items), nil
	})
	count("services", func(o metav1.ListOptions) ([]metav1.Object, error) {
		l, err := cs.CoreV1().Services("").List(ctx, o)
		if err != nil {
			return nil, err
		}
		return ptrs(l.Items), nil
	})
	count("secrets", func(o metav1.ListOptions) ([]metav1.Object, error) {
		l, err := cs.CoreV1().Secrets("").List(ctx, o)
		if err != nil {
			return nil, err
		}
		return ptrs(l.Items), nil
	})
	count("resourcequotas", func(o metav1.ListOptions) ([]metav1.Object, error) {
		l, err := cs.CoreV1().ResourceQuotas("").List(ctx, o)
		if err != nil {
			return nil, err
		}
		return ptrs(l.Items), nil
	})
	count("networkpolicies", func(o metav1.ListOptions) ([]metav1.Object, error) {
		l, err := cs.NetworkingV1().NetworkPolicies("").List(ctx, o)
		if err != nil {
			return nil, err
		}
		return ptrs(l.Items), nil
	})
	count("deployments", func(o metav1.ListOptions) ([]metav1.Object, error) {
		l, err := cs.AppsV1().Deployments("").List(ctx, o)
		if err != nil {
			return nil, err
		}
		return ptrs(l.Items), nil
	})
	count("rolebindings", func(o metav1.ListOptions) ([]metav1.Object, error) {
		l, err := cs.RbacV1().RoleBindings("").List(ctx, o)
		if err != nil {
			return nil, err
		}
		return ptrs(l.Items), nil
	})
	return c
}

// ptrs is a list's items as metav1.Objects.
func ptrs[T any, P interface {
	*T
	metav1.Object
}](items []T) []metav1.Object {
	out := make([]metav1.Object, len(items))
	for i := range items {
		out[i] = P(&items[i])
	}
	return out
}

func kubeNamespacesOf(t *testing.T, cs kubernetes.Interface, node string, id int64) []string {
	t.Helper()
	list, err := cs.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{
		LabelSelector: fmt.Sprintf("nullops.node=%s,nullops.deployment=%d", node, id)})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range list.Items {
		out = append(out, n.Name)
	}
	return out
}

// namespaces are the node's namespaces but the expiring deployment's.
func (kw *kubeWorld) namespaces(t *testing.T, node string) []string {
	t.Helper()
	var out []string
	for _, ns := range kubeNamespaces(t, kw.cs, node) {
		if kw.expiring == 0 || !slices.Contains(kubeNamespacesOf(t, kw.cs, node, kw.expiring), ns) {
			out = append(out, ns)
		}
	}
	return out
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

func removeKubeNamespaces(t *testing.T, cs kubernetes.Interface, node string) {
	for _, ns := range kubeNamespaces(t, cs, node) {
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	}
}
