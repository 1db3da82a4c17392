package kube

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nullops/nullops/agent/runtime"
	"github.com/nullops/nullops/internal/testutil"
	testkube "github.com/nullops/nullops/internal/testutil/kube"
	"github.com/nullops/nullops/plugins/sdk"
	"github.com/nullops/nullops/protocol"
)

func TestNames(t *testing.T) {
	if got := NamespaceName("node-1", 42); got != "nullops-node-1-d42" {
		t.Fatalf("namespace name %q", got)
	}
	a, b := NamespaceName("Node_A", 1), NamespaceName("node-a", 1)
	if a == b || len(a) > 63 {
		t.Fatalf("names must differ and fit: %q %q", a, b)
	}
	long := NamespaceName(strings.Repeat("x", 200), 9223372036854775807)
	if len(long) > 63 {
		t.Fatalf("namespace name too long: %d %q", len(long), long)
	}
	for _, s := range []string{"ok", "with space", strings.Repeat("v", 100), "-edge-", "é"} {
		v := labelValue(s)
		if len(v) > 63 || v == "" || strings.ContainsAny(v, " é") {
			t.Fatalf("label value of %q: %q", s, v)
		}
	}
	if err := CheckServiceName("1db"); err == nil {
		t.Fatal("a node id starting with a digit cannot name a Service")
	}
	if err := CheckServiceName("db-1"); err != nil {
		t.Fatal(err)
	}
	if q := quotaHard(protocol.Resources{CPU: 0.5, MemoryMB: 256}); q.Name(corev1.ResourceLimitsCPU, resource.DecimalSI).String() != "500m" ||
		q.Name(corev1.ResourceRequestsMemory, resource.BinarySI).String() != "256Mi" {
		t.Fatalf("quota %v", q)
	}
	if len(quotaHard(protocol.Resources{})) != 0 {
		t.Fatal("no budget, no quota")
	}
}

// TestNamespaceQuotaPolicies: a deployment's namespace is labelled like
// the Docker objects, holds a quota equal to the budget (in force) and the
// NetworkPolicy set, is listed as this node's and is gone after delete.
func TestNamespaceQuotaPolicies(t *testing.T) {
	t.Parallel()
	rt := testRuntime(t)
	ctx := testutil.Context(t, 3*time.Minute)
	rt.SetNodeUID("uid-ns-test")
	ns, err := rt.EnsureNamespace(ctx, 7, protocol.Resources{CPU: 0.5, MemoryMB: 256})
	if err != nil {
		t.Fatal(err)
	}
	if again, err := rt.EnsureNamespace(ctx, 7, protocol.Resources{CPU: 0.5, MemoryMB: 256}); err != nil || again != ns {
		t.Fatalf("ensure again: %v %v", again, err)
	}
	got, err := rt.cs.CoreV1().Namespaces().Get(ctx, ns.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{LabelManaged: "true", LabelNode: rt.nodeLabel, LabelDeployment: "7", LabelNodeUID: "uid-ns-test"}
	for k, v := range want {
		if got.Labels[k] != v {
			t.Fatalf("label %s = %q, want %q (labels %v)", k, got.Labels[k], v, got.Labels)
		}
	}
	q, err := rt.cs.CoreV1().ResourceQuotas(ns.Name).Get(ctx, QuotaName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := q.Status.Hard[corev1.ResourceLimitsCPU]; c.MilliValue() != 500 {
		t.Fatalf("quota limits.cpu %v", c.String())
	}
	if m := q.Status.Hard[corev1.ResourceRequestsMemory]; m.Value() != 256<<20 {
		t.Fatalf("quota requests.memory %v", m.String())
	}
	pols, err := rt.cs.NetworkingV1().NetworkPolicies(ns.Name).List(ctx, metav1.ListOptions{})
	if err != nil || len(pols.Items) != 3 {
		t.Fatalf("network policies: %v %v", pols, err)
	}
	objs, err := rt.ListManaged(ctx, 0)
	if err != nil || len(objs) != 1 || objs[0].Kind != KindNamespace || objs[0].DeploymentID != 7 {
		t.Fatalf("list managed: %+v %v", objs, err)
	}
	// Another agent instance of the same node (same uid, other name) sees
	// it as its predecessor's; this one does not.
	other, err := New(Config{Node: rt.node + "-next", REST: rt.rest})
	if err != nil {
		t.Fatal(err)
	}
	if prev, err := other.Predecessors(ctx, "uid-ns-test"); err != nil || len(prev) != 1 || prev[0].Name != ns.Name {
		t.Fatalf("predecessors seen by the next instance: %+v %v", prev, err)
	}
	if prev, err := rt.Predecessors(ctx, "uid-ns-test"); err != nil || len(prev) != 0 {
		t.Fatalf("own namespaces are not predecessors: %+v %v", prev, err)
	}
	removed, err := rt.RemoveDeployment(ctx, 7)
	if err != nil || len(removed) != 1 {
		t.Fatalf("remove: %v %v", removed, err)
	}
	if !namespaceGone(t, rt, ns.Name) {
		t.Fatal("RemoveDeployment returned before the namespace was gone")
	}
}

func httpGet(url string) (int, string, error) {
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), nil
}

// TestRouteHost: with Config.RouteHost, an exposed service's published port
// is reported with that address (what the control plane routes the ingress
// to), and its NodePort answers there; without it no address is reported
// (the node's host is used).
func TestRouteHost(t *testing.T) {
	t.Parallel()
	base := testRuntime(t)
	nodeIP := testkube.NodeIP(t, base.cs)
	rt, err := New(Config{Node: base.node, REST: base.rest, RouteHost: nodeIP})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Node: base.node, REST: base.rest, RouteHost: nodeIP + ":30080"}); err == nil {
		t.Fatal("a route host with a port was accepted")
	}
	img := webImg(t)
	ctx := testutil.Context(t, 3*time.Minute)
	ns, err := rt.EnsureNamespace(ctx, 12, protocol.Resources{})
	if err != nil {
		t.Fatal(err)
	}
	web, err := rt.StartService(ctx, ServiceSpec{
		DeploymentID: 12, Service: "web", Image: img, Network: ns.Name,
		Env: map[string]string{"MESSAGE": "via-route-host", "SERVICE_NAME": "web"}, Ports: []int{8080}, PublishPort: 8080,
	})
	if err != nil {
		t.Fatal(err)
	}
	if web.HostPort < 30000 || web.RouteHost != nodeIP {
		t.Fatalf("exposed service: host port %d, route host %q; want a NodePort on %s", web.HostPort, web.RouteHost, nodeIP)
	}
	if i, err := rt.InspectService(ctx, web.ID); err != nil || i.RouteHost != nodeIP || i.HostPort != web.HostPort {
		t.Fatalf("inspect: %+v, %v", i, err)
	}
	waitFor(t, ctx, "the NodePort answers on the route host", func() (bool, string) {
		code, body, err := httpGet(fmt.Sprintf("http://%s/", net.JoinHostPort(nodeIP, strconv.Itoa(web.HostPort))))
		if err != nil {
			return false, err.Error()
		}
		return code == 200 && strings.Contains(body, "via-route-host"), body
	})
	// Not exposed: no port, no route host.
	db, err := rt.StartService(ctx, ServiceSpec{DeploymentID: 12, Service: "db", Image: img, Network: ns.Name, Ports: []int{8080}})
	if err != nil {
		t.Fatal(err)
	}
	if db.HostPort != 0 || db.RouteHost != "" {
		t.Fatalf("unexposed service: %+v", db)
	}
	// The default: no route host reported.
	if i, err := base.InspectService(ctx, web.ID); err != nil || i.RouteHost != "" || i.HostPort != web.HostPort {
		t.Fatalf("inspect without a route host: %+v, %v", i, err)
	}
}

// TestServiceLifecycle: a service is a Deployment + a Service named after
// the node id, env values reach it through a Secret (never the pod spec),
// its requests/limits are its share, the health check is its readiness
// probe, a published port is a NodePort that answers, another service
// reaches it by name, logs, stats and delete work.
func TestServiceLifecycle(t *testing.T) {
	t.Parallel()
	rt := testRuntime(t)
	img := webImg(t)
	ctx := testutil.Context(t, 4*time.Minute)
	ns, err := rt.EnsureNamespace(ctx, 11, protocol.Resources{CPU: 0.4, MemoryMB: 256})
	if err != nil {
		t.Fatal(err)
	}
	const secret = "s3cr3t-value-kube"
	web, err := rt.StartService(ctx, ServiceSpec{
		DeploymentID: 11, Service: "web", Image: img, Network: ns.Name,
		Env:   map[string]string{"MESSAGE": "hello-kube", "API_KEY": secret, "SERVICE_NAME": "web", "HEALTHY_AFTER_READY": "1"},
		Ports: []int{8080}, PublishPort: 8080, Resources: protocol.Resources{CPU: 0.2, MemoryMB: 128},
		Health: &protocol.Health{HTTP: "/healthz"}, HealthPort: 8080,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !web.Running || web.HostPort < 30000 || web.ID != ns.Name+"/web" || web.Health != "starting" {
		t.Fatalf("web after start: %+v", web)
	}
	// Not ready until /ready is posted: the readiness probe gates it.
	code, _, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/healthz", web.HostPort))
	if err == nil && code == 200 {
		t.Fatal("healthz answered 200 before /ready")
	}
	// Through the NodePort: the namespace's policies admit nothing else
	// from outside (the process may not listen yet: retried).
	waitFor(t, ctx, "POST /ready", func() (bool, string) {
		resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/ready", web.HostPort), "text/plain", nil)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})
	waitFor(t, ctx, "web ready", func() (bool, string) {
		i, err := rt.InspectService(ctx, web.ID)
		if err != nil {
			return false, err.Error()
		}
		return i.Health == "healthy", fmt.Sprintf("%+v", i)
	})
	// Through the NodePort (what the ingress uses).
	waitFor(t, ctx, "NodePort answers", func() (bool, string) {
		code, body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/", web.HostPort))
		if err != nil {
			return false, err.Error()
		}
		return code == 200 && strings.Contains(body, "hello-kube"), body
	})

	dep, err := rt.cs.AppsV1().Deployments(ns.Name).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(dep)
	if bytes.Contains(raw, []byte(secret)) {
		t.Fatal("a secret value is in the Deployment object")
	}
	c := dep.Spec.Template.Spec.Containers[0]
	if c.Resources.Limits.Cpu().MilliValue() != 200 || c.Resources.Requests.Memory().Value() != 128<<20 {
		t.Fatalf("resources %+v", c.Resources)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/healthz" {
		t.Fatalf("readiness probe %+v", c.ReadinessProbe)
	}
	sec, err := rt.cs.CoreV1().Secrets(ns.Name).Get(ctx, envSecretPfx+"web", metav1.GetOptions{})
	if err != nil || string(sec.Data["API_KEY"]) != secret {
		t.Fatalf("env secret: %v", err)
	}
	svc, err := rt.cs.CoreV1().Services(ns.Name).Get(ctx, "web", metav1.GetOptions{})
	if err != nil || svc.Spec.Type != corev1.ServiceTypeNodePort || int(svc.Spec.Ports[0].NodePort) != web.HostPort {
		t.Fatalf("service: %+v %v", svc, err)
	}

	// A second service reaches the first by its node id.
	cli, err := rt.StartService(ctx, ServiceSpec{
		DeploymentID: 11, Service: "client", Image: img, Network: ns.Name,
		Env: map[string]string{"SERVICE_NAME": "client"}, Ports: []int{8080}, PublishPort: 8080,
		Resources: protocol.Resources{CPU: 0.2, MemoryMB: 128},
	})
	if err != nil {
		t.Fatal(err)
	}
	if cli.HostPort == 0 || cli.HostPort == web.HostPort || cli.Health != "" {
		t.Fatalf("client: %+v", cli)
	}
	waitFor(t, ctx, "client dials web:8080 by name", func() (bool, string) {
		code, body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/dial?addr=web:8080", cli.HostPort))
		if err != nil {
			return false, err.Error()
		}
		return code == 200, body
	})

	// The budget is full: a third service does not fit the quota.
	_, err = rt.StartService(testutil.Context(t, 20*time.Second), ServiceSpec{
		DeploymentID: 11, Service: "extra", Image: img, Network: ns.Name, Ports: []int{8080},
		Resources: protocol.Resources{CPU: 0.2, MemoryMB: 128},
	})
	if err == nil || !strings.Contains(err.Error(), "exceeded quota") {
		t.Fatalf("a service beyond the budget: %v", err)
	}

	// Logs: the tail and a follow that sees a new line.
	var logs strings.Builder
	if err := rt.Logs(ctx, web.ID, 50, false, true, func(stream, data string) error {
		logs.WriteString(data)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "Z ") {
		t.Fatalf("timestamps missing: %q", logs.String())
	}
	fctx, stopFollow := context.WithCancel(ctx)
	lines := make(chan string, 100)
	done := make(chan error, 1)
	go func() {
		done <- rt.Logs(fctx, web.ID, 1, true, false, func(_, data string) error {
			lines <- data
			return nil
		})
	}()
	// The last line comes first, then the stream stays open (a plain
	// tail ends at once) until it is cancelled.
	select {
	case l := <-lines:
		if !strings.Contains(l, "listening") {
			t.Fatalf("followed logs start with %q", l)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no line on the followed stream")
	}
	select {
	case err := <-done:
		t.Fatalf("the followed stream ended by itself: %v", err)
	case <-time.After(1500 * time.Millisecond):
	}
	stopFollow()
	if err := <-done; err != nil {
		t.Fatalf("follow ended with %v", err)
	}

	// Stats from the kubelet's summary API (it has figures after its
	// first housekeeping round).
	waitFor(t, ctx, "stats", func() (bool, string) {
		u, err := rt.Stats(ctx, web.ID)
		if err != nil {
			return false, err.Error()
		}
		return u.MemoryBytes > 0, fmt.Sprintf("%+v", u)
	})

	objs, err := rt.ListManaged(ctx, 11)
	if err != nil {
		t.Fatal(err)
	}
	services := map[string]bool{}
	for _, o := range objs {
		if o.Kind == KindWorkload {
			services[o.Service] = true
		}
	}
	if !services["web"] || !services["client"] || len(objs) != 4 {
		t.Fatalf("managed objects: %+v", objs)
	}

	if _, err := rt.RemoveDeployment(ctx, 11); err != nil {
		t.Fatal(err)
	}
	if !namespaceGone(t, rt, ns.Name) {
		t.Fatal("namespace left")
	}
	if objs, err := rt.ListManaged(ctx, 0); err != nil || len(objs) != 0 {
		t.Fatalf("objects left after delete: %+v %v", objs, err)
	}
}

// TestOneShot: a plugin pod gets its JSON input on stdin through attach,
// its stdout is the output document and its stderr the step log; a
// failing plugin reports its exit code, a slow one times out; the pods
// are gone afterwards.
func TestOneShot(t *testing.T) {
	t.Parallel()
	rt := testRuntime(t)
	img := pluginImg(t)
	ctx := testutil.Context(t, 4*time.Minute)
	ns, err := rt.EnsureNamespace(ctx, 21, protocol.Resources{CPU: 0.2, MemoryMB: 64})
	if err != nil {
		t.Fatal(err)
	}
	input := func(params map[string]any) []byte {
		b, err := json.Marshal(sdk.Input{
			Deployment: sdk.Deployment{ID: 21, Name: "d"}, Step: "mk", Attempt: 1, Params: params,
			Secrets: map[string]string{"token": "x"},
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	run := func(params map[string]any, timeout time.Duration) (OneShotResult, string, string, error) {
		var stdout, stderr bytes.Buffer
		res, err := rt.RunOneShot(ctx, OneShotSpec{
			DeploymentID: 21, Step: "mk", Attempt: 1, Image: img, Input: input(params), Network: ns.Name,
			Resources: protocol.Resources{CPU: 0.5, MemoryMB: 64}, Timeout: timeout, Stdout: &stdout, Stderr: &stderr,
		})
		return res, stdout.String(), stderr.String(), err
	}

	res, out, errOut, err := run(map[string]any{"outputs": map[string]any{"url": "postgres://db/app"}, "stderr": "hello from stderr", "probe": "true"}, time.Minute)
	if err != nil || res.ExitCode != 0 || res.TimedOut {
		t.Fatalf("run: %+v %v (stderr %q)", res, err, errOut)
	}
	var doc sdk.Output
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("stdout %q: %v", out, err)
	}
	if doc.Outputs["url"] != "postgres://db/app" || doc.Outputs["secret_names"] != "token" {
		t.Fatalf("outputs %v", doc.Outputs)
	}
	if doc.Outputs["rootfs_writable"] != "false" || doc.Outputs["tmp_writable"] != "true" ||
		doc.Outputs["no_new_privs"] != "1" || doc.Outputs["cap_eff"] != "0000000000000000" {
		t.Fatalf("sandbox: %v", doc.Outputs)
	}
	if !strings.Contains(errOut, "hello from stderr") {
		t.Fatalf("stderr %q", errOut)
	}

	res, _, errOut, err = run(map[string]any{"mode": "exit", "code": 7}, time.Minute)
	if err != nil || res.ExitCode != 7 || !strings.Contains(errOut, "failing on purpose") {
		t.Fatalf("exit: %+v %v %q", res, err, errOut)
	}

	start := time.Now()
	res, _, _, err = run(map[string]any{"mode": "sleep", "sleep": "5m"}, 5*time.Second)
	if err != nil || !res.TimedOut {
		t.Fatalf("timeout: %+v %v", res, err)
	}
	if d := time.Since(start); d > 90*time.Second {
		t.Fatalf("timeout took %s", d)
	}

	_, err = rt.RunOneShot(ctx, OneShotSpec{DeploymentID: 21, Step: "bad", Attempt: 1, Image: "127.0.0.1:1/nullops-test/absent:never", Network: ns.Name, Input: []byte("{}"), Timeout: time.Minute})
	if !errors.Is(err, runtime.ErrPull) && !errors.Is(err, runtime.ErrImageNotFound) {
		t.Fatalf("absent image: %v", err)
	}

	waitFor(t, ctx, "plugin pods removed", func() (bool, string) {
		pods, err := rt.cs.CoreV1().Pods(ns.Name).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		return len(pods.Items) == 0, fmt.Sprintf("%d pods", len(pods.Items))
	})
}

// TestCapacity: allocatable minus the requests of other workloads; this
// node's own pods do not count (the control plane counts its
// reservations).
func TestCapacity(t *testing.T) {
	t.Parallel()
	rt := testRuntime(t)
	img := webImg(t)
	ctx := testutil.Context(t, 3*time.Minute)
	base, err := rt.Capacity(ctx)
	if err != nil || base.CPUs <= 0 || base.MemoryMB <= 0 {
		t.Fatalf("capacity %+v %v", base, err)
	}
	ns, err := rt.EnsureNamespace(ctx, 31, protocol.Resources{CPU: 0.3, MemoryMB: 100})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.StartService(ctx, ServiceSpec{DeploymentID: 31, Service: "own", Image: img, Network: ns.Name,
		Ports: []int{8080}, Resources: protocol.Resources{CPU: 0.3, MemoryMB: 100}}); err != nil {
		t.Fatal(err)
	}
	// Another workload (not this node's) requesting 250m and 64 MiB.
	otherNS := ns.Name + "-other"
	if _, err := rt.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: otherNS}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.cs.CoreV1().Namespaces().Delete(context.Background(), otherNS, metav1.DeleteOptions{}) })
	req := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("64Mi")}
	zero := int64(0)
	if _, err := rt.cs.CoreV1().Pods(otherNS).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "other"},
		Spec: corev1.PodSpec{TerminationGracePeriodSeconds: &zero, Containers: []corev1.Container{{
			Name: "main", Image: img, ImagePullPolicy: corev1.PullIfNotPresent,
			Resources: corev1.ResourceRequirements{Requests: req, Limits: req},
		}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := rt.Capacity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Other tests may run pods meanwhile: compare with this runtime's own
	// view of the other pods, which is what the figure claims to be.
	if d := base.CPUs - got.CPUs; d < 0.249 || d > 0.251 && !otherActivity(t, rt) {
		t.Fatalf("capacity CPUs %v → %v: want 0.25 less", base.CPUs, got.CPUs)
	}
	if d := base.MemoryMB - got.MemoryMB; d != 64 && !otherActivity(t, rt) {
		t.Fatalf("capacity memory %v → %v: want 64 MB less", base.MemoryMB, got.MemoryMB)
	}
	h := rt.Host()
	if c := h.Capacity(); c.CPUs <= 0 {
		t.Fatalf("host capacity %+v", c)
	}
	waitFor(t, ctx, "usage from the kubelet summary", func() (bool, string) {
		u := h.Usage()
		return u.MemoryUsedMB > 0 && u.CPUPercent >= 0, fmt.Sprintf("%+v", u)
	})
}

// otherActivity says whether pods other than this test's exist that are
// not system pods (another test may be running on the shared cluster).
func otherActivity(t *testing.T, rt *Runtime) bool {
	pods, err := rt.cs.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return false
	}
	for _, p := range pods.Items {
		if p.Namespace != "kube-system" && !strings.HasPrefix(p.Namespace, NamespaceName(rt.node, 31)) {
			return true
		}
	}
	return false
}

// TestWatchServices: a service container that exits is reported as a die
// with its exit code, and its restart as a start.
func TestWatchServices(t *testing.T) {
	t.Parallel()
	rt := testRuntime(t)
	img := webImg(t)
	ctx := testutil.Context(t, 3*time.Minute)
	ns, err := rt.EnsureNamespace(ctx, 41, protocol.Resources{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []ServiceEvent
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go rt.WatchServices(wctx, time.Second, nil, func(ev ServiceEvent) {
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	})
	info, err := rt.StartService(ctx, ServiceSpec{DeploymentID: 41, Service: "crashy", Image: img, Network: ns.Name,
		Env: map[string]string{"EXIT_AFTER": "2s", "EXIT_CODE": "5"}, Ports: []int{8080}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "die event with exit code 5", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		for _, ev := range events {
			if ev.Action == runtime.EventExit && ev.Exit != nil && ev.Exit.ExitCode == 5 && ev.ID == info.ID && ev.DeploymentID == 41 {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", events)
	})
	waitFor(t, ctx, "restart counted", func() (bool, string) {
		i, err := rt.InspectService(ctx, info.ID)
		if err != nil {
			return false, err.Error()
		}
		return i.RestartCount > 0 && i.ExitCode == 5, fmt.Sprintf("%+v", i)
	})
}

// TestWatchServicesIgnoresDeletedPods: the pods of a service removed with
// its namespace end too, but that is no crash: no die event, so a service
// of the same name started again in a namespace of the same name (a
// deployment rebuilt, retried) is not failed by its predecessor's end. A
// crash after the removal is the marker that the watch got that far.
func TestWatchServicesIgnoresDeletedPods(t *testing.T) {
	t.Parallel()
	rt := testRuntime(t)
	img := webImg(t)
	ctx := testutil.Context(t, 3*time.Minute)
	var mu sync.Mutex
	var events []ServiceEvent
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go rt.WatchServices(wctx, time.Second, nil, func(ev ServiceEvent) {
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	})
	seen := func(what string, match func(ServiceEvent) bool) {
		t.Helper()
		waitFor(t, ctx, what, func() (bool, string) {
			mu.Lock()
			defer mu.Unlock()
			for _, ev := range events {
				if match(ev) {
					return true, ""
				}
			}
			return false, fmt.Sprintf("%+v", events)
		})
	}
	ns, err := rt.EnsureNamespace(ctx, 43, protocol.Resources{})
	if err != nil {
		t.Fatal(err)
	}
	calm, err := rt.StartService(ctx, ServiceSpec{DeploymentID: 43, Service: "calm", Image: img, Network: ns.Name, Ports: []int{8080}})
	if err != nil {
		t.Fatal(err)
	}
	seen("calm started", func(ev ServiceEvent) bool { return ev.ID == calm.ID && ev.Action == runtime.EventStart })
	if _, err := rt.RemoveDeployment(ctx, 43); err != nil {
		t.Fatal(err)
	}
	ns2, err := rt.EnsureNamespace(ctx, 44, protocol.Resources{})
	if err != nil {
		t.Fatal(err)
	}
	crashy, err := rt.StartService(ctx, ServiceSpec{DeploymentID: 44, Service: "crashy", Image: img, Network: ns2.Name,
		Env: map[string]string{"EXIT_AFTER": "1s", "EXIT_CODE": "5"}, Ports: []int{8080}})
	if err != nil {
		t.Fatal(err)
	}
	seen("the marker's crash", func(ev ServiceEvent) bool { return ev.ID == crashy.ID && ev.Action == runtime.EventExit })
	mu.Lock()
	defer mu.Unlock()
	for _, ev := range events {
		if ev.ID == calm.ID && ev.Action == runtime.EventExit {
			t.Fatalf("the removal of %s was reported as a crash: %+v", calm.ID, ev.Exit)
		}
	}
}
