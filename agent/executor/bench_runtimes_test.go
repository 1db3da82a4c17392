package executor

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/nullops/nullops/agent/runtime"
	"github.com/nullops/nullops/internal/testutil"
	testkube "github.com/nullops/nullops/internal/testutil/kube"
	"github.com/nullops/nullops/protocol"
)

// BenchmarkRuntimes deploys the same small pipeline — one service (the
// demo web server) with an HTTP health check, then one plugin step (the
// test plugin, input on stdin, JSON result on stdout) — through the
// executor on Docker and on Kubernetes, and makes the bare API calls for
// the same workloads in the same run:
//
//   - bare Docker: network create, container create + start, HTTP probe of
//     /healthz on its address until 200, the plugin as a container
//     (attach, start, input, wait, remove); then container and network
//     remove;
//   - bare Kubernetes (client-go): namespace create, watch until its
//     default ServiceAccount exists (pods are refused before), Deployment
//     and Service create, watch until the pod is Ready (readiness probe on /healthz),
//     the plugin as a pod (wait running, attach, input, wait ended,
//     delete); then namespace delete and wait until it is gone.
//
// The four paths alternate within every iteration (the order rotates), so
// the machine's load is shared between them. Reported per path: create →
// running (the executor's deployment.status running; the bare paths:
// plugin ended) and delete → gone (deployment.status deleted; bare: the
// last object gone), in ms/op, and the executor's overhead over the bare
// API as a ratio. The load average (1 min) at the start and the end is
// reported too. Skipped without NULLOPS_K8S=1 (it needs the test cluster).
//
//	NULLOPS_K8S=1 KUBECONFIG=/tmp/k8s/admin.kubeconfig \
//	  go test ./agent/executor -run '^$' -bench Runtimes -benchtime 5x -count 3
func BenchmarkRuntimes(b *testing.B) {
	testkube.Kubeconfig(b) // skips without NULLOPS_K8S=1
	kcs := testkube.Client(b)
	krest := testkube.RESTConfig(b)
	ctx := testutil.Context(b, 60*time.Minute)

	ed := newEnvOn(b, testRuntimes[runtime.Docker], Config{}, benchJournal(b), nil)
	ek := newEnvOn(b, testRuntimes[runtime.Kubernetes], Config{}, benchJournal(b), nil)
	dcli := ed.docker().Client()

	base := int64(time.Now().UnixNano()%1e6+7000000) * 100
	round := 0
	paths := []benchPath{
		{name: "nullops-docker", run: func() (time.Duration, time.Duration) {
			round++
			return executorRound(b, ctx, ed, base+int64(round))
		}},
		{name: "bare-docker", run: func() (time.Duration, time.Duration) {
			round++
			return bareDockerRound(b, ctx, dcli, ed.node, round)
		}},
		{name: "nullops-kube", run: func() (time.Duration, time.Duration) {
			round++
			return executorRound(b, ctx, ek, base+int64(round))
		}},
		{name: "bare-kube", run: func() (time.Duration, time.Duration) {
			round++
			return bareKubeRound(b, ctx, kcs, krest, ek.node, round)
		}},
	}
	// One untimed round of each first (images, caches, the API server's
	// informers for new namespaces).
	for _, p := range paths {
		p.run()
	}
	load0 := loadAverage()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range paths {
			p := &paths[(i+j)%len(paths)]
			c, d := p.run()
			p.create += c
			p.delete += d
		}
	}
	b.StopTimer()
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / n }
	for _, p := range paths {
		b.ReportMetric(ms(p.create), p.name+"-create-ms/op")
		b.ReportMetric(ms(p.delete), p.name+"-delete-ms/op")
	}
	b.ReportMetric(float64(paths[0].create)/float64(paths[1].create), "docker-create-ratio")
	b.ReportMetric(float64(paths[0].delete)/float64(paths[1].delete), "docker-delete-ratio")
	b.ReportMetric(float64(paths[2].create)/float64(paths[3].create), "kube-create-ratio")
	b.ReportMetric(float64(paths[2].delete)/float64(paths[3].delete), "kube-delete-ratio")
	b.ReportMetric(load0, "load-start")
	b.ReportMetric(loadAverage(), "load-end")
}

type benchPath struct {
	name           string
	run            func() (create, delete time.Duration)
	create, delete time.Duration
}

// benchJournal is an emitter writing every event to a file and fsyncing
// it, as the agent's journal does.
func benchJournal(b *testing.B) Emitter {
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "journal.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return &fileEmitter{f: f}
}

// loadAverage is the 1-minute load average (/proc/loadavg), -1 when it
// cannot be read.
func loadAverage() float64 {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(raw))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// benchPipeline is the pipeline of BenchmarkRuntimes: service web (HTTP
// health check), then plugin step seed.
func benchPipeline(id int64) protocol.DeploySpec {
	nodes := []protocol.Node{
		webNode("web", func(n *protocol.Node) { n.Health.Interval = "1s" }),
		pluginNode("seed", nil),
	}
	return specOf(id, nodes, [][2]string{{"web", "seed"}}, demoWebImage, nil)
}

// executorRound deploys benchPipeline through e's executor and deletes it.
func executorRound(b *testing.B, ctx context.Context, e *env, id int64) (create, del time.Duration) {
	b.Helper()
	t0 := time.Now()
	if err := e.ex.Deploy(ctx, protocol.DeployRequest{Spec: benchPipeline(id)}); err != nil {
		b.Fatal(err)
	}
	if ds := e.rec.waitDeployment(b, ctx, id, protocol.StatusRunning, protocol.StatusFailed); ds.Status != protocol.StatusRunning {
		b.Fatalf("%s: deployment %d %s: %s", e.rt.Name(), id, ds.Status, ds.Reason)
	}
	create = time.Since(t0)
	t1 := time.Now()
	if err := e.ex.Delete(ctx, protocol.DeleteRequest{DeploymentID: id}); err != nil {
		b.Fatal(err)
	}
	e.rec.waitDeployment(b, ctx, id, protocol.StatusDeleted)
	del = time.Since(t1)
	if left := e.objects(id); len(left) > 0 {
		b.Fatalf("%s: deployment %d left %v", e.rt.Name(), id, left)
	}
	return create, del
}

// benchInput is the plugin's stdin on the bare paths.
var benchInput = []byte(`{"deployment":{"id":1},"params":{}}` + "\n")

// bareDockerRound makes the pipeline's workloads with bare Docker Engine
// API calls, the way the Docker runtime does (same container settings
// that matter for time: network, limits, restart policy, plugin sandbox),
// and removes them.
func bareDockerRound(b *testing.B, ctx context.Context, cli *client.Client, node string, round int) (create, del time.Duration) {
	b.Helper()
	name := fmt.Sprintf("nullops-benchrt-%s-r%d", node, round)
	labels := map[string]string{"nullops.managed": "true", "nullops.node": node + "-bare", "nullops.deployment": "999999998"}
	subnet := netip.MustParsePrefix(fmt.Sprintf("10.217.%d.0/24", round%250))
	t0 := time.Now()
	if _, err := cli.NetworkCreate(ctx, name, client.NetworkCreateOptions{
		Driver: "bridge", Labels: labels,
		IPAM: &network.IPAM{Driver: "default", Config: []network.IPAMConfig{{Subnet: subnet, Gateway: subnet.Addr().Next()}}},
	}); err != nil {
		b.Fatal(err)
	}
	port := network.MustParsePort("8080/tcp")
	svc, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name + "-web",
		Config: &container.Config{
			Image: demoWebImage, Env: []string{"SERVICE_NAME=web"},
			ExposedPorts: network.PortSet{port: {}}, Labels: labels,
		},
		HostConfig: &container.HostConfig{
			NetworkMode:   container.NetworkMode(name),
			RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
			Resources:     container.Resources{NanoCPUs: 5e8, Memory: 64 << 20},
		},
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{name: {Aliases: []string{"web"}}}},
	})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := cli.ContainerStart(ctx, svc.ID, client.ContainerStartOptions{}); err != nil {
		b.Fatal(err)
	}
	ins, err := cli.ContainerInspect(ctx, svc.ID, client.ContainerInspectOptions{})
	if err != nil {
		b.Fatal(err)
	}
	var ip netip.Addr
	if ins.Container.NetworkSettings != nil {
		if ep := ins.Container.NetworkSettings.Networks[name]; ep != nil {
			ip = ep.IPAddress
		}
	}
	if !ip.IsValid() {
		b.Fatalf("bare docker: container %s has no address in %s", svc.ID, name)
	}
	waitHTTP(b, ctx, fmt.Sprintf("http://%s/healthz", netip.AddrPortFrom(ip, 8080)), time.Second)

	plug, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name + "-seed",
		Config: &container.Config{
			Image: testPluginImage, OpenStdin: true, StdinOnce: true,
			AttachStdin: true, AttachStdout: true, AttachStderr: true, Labels: labels,
		},
		HostConfig: &container.HostConfig{
			NetworkMode: container.NetworkMode(name),
			Resources:   container.Resources{NanoCPUs: 2.5e8, Memory: 32 << 20},
			LogConfig:   container.LogConfig{Type: "none"},
			CapDrop:     []string{"ALL"}, SecurityOpt: []string{"no-new-privileges:true"}, ReadonlyRootfs: true,
			Tmpfs: map[string]string{"/tmp": "rw,nosuid,nodev,size=64m"},
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	att, err := cli.ContainerAttach(ctx, plug.ID, client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := cli.ContainerStart(ctx, plug.ID, client.ContainerStartOptions{}); err != nil {
		b.Fatal(err)
	}
	_, _ = att.Conn.Write(benchInput)
	_ = att.CloseWrite()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, io.Discard, att.Reader); err != nil {
		b.Fatal(err)
	}
	att.Close()
	w := cli.ContainerWait(ctx, plug.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case r := <-w.Result:
		if r.StatusCode != 0 {
			b.Fatalf("bare docker: plugin exited %d: %s", r.StatusCode, out.String())
		}
	case err := <-w.Error:
		b.Fatal(err)
	}
	if _, err := cli.ContainerRemove(ctx, plug.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
		b.Fatal(err)
	}
	if !strings.Contains(out.String(), "test-plugin done") {
		b.Fatalf("bare docker: plugin output %q", out.String())
	}
	create = time.Since(t0)

	t1 := time.Now()
	if _, err := cli.ContainerRemove(ctx, svc.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
		b.Fatal(err)
	}
	if _, err := cli.NetworkRemove(ctx, name, client.NetworkRemoveOptions{}); err != nil {
		b.Fatal(err)
	}
	return create, time.Since(t1)
}

// waitHTTP asks url every interval until it answers 2xx (the executor's
// HTTP health check).
func waitHTTP(b *testing.B, ctx context.Context, url string, interval time.Duration) {
	b.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := c.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return
			}
		}
		select {
		case <-ctx.Done():
			b.Fatalf("%s never answered: %v", url, err)
		case <-time.After(interval):
		}
	}
}

// bareKubeRound makes the pipeline's workloads with bare client-go calls
// (the same pod settings that matter for time: readiness probe with a 1 s
// period, limits, grace period; the plugin pod with stdin) and deletes the
// namespace. It watches instead of polling wherever it waits.
func bareKubeRound(b *testing.B, ctx context.Context, cs kubernetes.Interface, rc *rest.Config, node string, round int) (create, del time.Duration) {
	b.Helper()
	ns := fmt.Sprintf("nullops-benchrt-%s-r%d", strings.ToLower(node), round)
	labels := map[string]string{"nullops.io/test": "true", "nullops.service": "web"}
	one, grace, zero := int32(1), int64(2), int64(0)
	no, yes := false, true
	lim := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("64Mi")}
	plim := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("32Mi")}
	b.Cleanup(func() { // a failed round leaves nothing behind
		dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = cs.CoreV1().Namespaces().Delete(dctx, ns, metav1.DeleteOptions{})
	})

	t0 := time.Now()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"nullops.io/test": "true"}}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	// Pods are refused until the namespace's default ServiceAccount exists
	// (its controller makes it just after the namespace); a Deployment
	// created before would retry with back-off.
	waitServiceAccount(b, ctx, cs, ns)
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"nullops.service": "web"}},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken: &no, EnableServiceLinks: &no, TerminationGracePeriodSeconds: &grace,
					Containers: []corev1.Container{{
						Name: "main", Image: demoWebImage, ImagePullPolicy: corev1.PullIfNotPresent,
						Env:       []corev1.EnvVar{{Name: "SERVICE_NAME", Value: "web"}},
						Ports:     []corev1.ContainerPort{{Name: "p8080", ContainerPort: 8080}},
						Resources: corev1.ResourceRequirements{Requests: lim, Limits: lim},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}},
							PeriodSeconds: 1, TimeoutSeconds: 2, FailureThreshold: 1, SuccessThreshold: 1,
						},
					}},
				},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: labels},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"nullops.service": "web"},
			Ports:    []corev1.ServicePort{{Name: "p8080", Port: 8080, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	if _, err := cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	watchPods(b, ctx, cs, ns, metav1.ListOptions{LabelSelector: "nullops.service=web"}, func(p *corev1.Pod) bool {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return true
			}
		}
		return false
	})

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "seed", Labels: map[string]string{"nullops.io/test": "true"}},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, AutomountServiceAccountToken: &no, EnableServiceLinks: &no,
			TerminationGracePeriodSeconds: &zero,
			Containers: []corev1.Container{{
				Name: "main", Image: testPluginImage, ImagePullPolicy: corev1.PullIfNotPresent,
				Stdin: true, StdinOnce: true,
				Resources:    corev1.ResourceRequirements{Requests: plim, Limits: plim},
				VolumeMounts: []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: &no, ReadOnlyRootFilesystem: &yes,
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
			Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}}},
		},
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	byName := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", "seed").String()}
	ended := func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
	}
	p := watchPods(b, ctx, cs, ns, byName, func(p *corev1.Pod) bool {
		for _, c := range p.Status.ContainerStatuses {
			if c.State.Running != nil || c.State.Terminated != nil {
				return true
			}
		}
		return ended(p)
	})
	var out bytes.Buffer
	if !ended(p) {
		u := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name("seed").SubResource("attach").
			VersionedParams(&corev1.PodAttachOptions{Container: "main", Stdin: true, Stdout: true, Stderr: true}, scheme.ParameterCodec).URL()
		ex, err := remotecommand.NewWebSocketExecutor(rc, "GET", u.String())
		if err != nil {
			b.Fatal(err)
		}
		if err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: bytes.NewReader(benchInput), Stdout: &out, Stderr: io.Discard}); err != nil {
			b.Fatalf("bare kube: attach: %v", err)
		}
	}
	p = watchPods(b, ctx, cs, ns, byName, ended)
	if p.Status.Phase != corev1.PodSucceeded {
		b.Fatalf("bare kube: plugin pod %s: %s", p.Status.Phase, out.String())
	}
	if err := cs.CoreV1().Pods(ns).Delete(ctx, "seed", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		b.Fatal(err)
	}
	create = time.Since(t0)

	t1 := time.Now()
	if err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		b.Fatal(err)
	}
	waitNamespaceGone(b, ctx, cs, ns)
	return create, time.Since(t1)
}

// watchPods watches the pods of ns that opts select until cond holds for
// one of them and returns it.
func watchPods(b *testing.B, ctx context.Context, cs kubernetes.Interface, ns string, opts metav1.ListOptions, cond func(*corev1.Pod) bool) *corev1.Pod {
	b.Helper()
	for {
		list, err := cs.CoreV1().Pods(ns).List(ctx, opts)
		if err != nil {
			b.Fatal(err)
		}
		for i := range list.Items {
			if cond(&list.Items[i]) {
				return &list.Items[i]
			}
		}
		wo := opts
		wo.ResourceVersion = list.ResourceVersion
		w, err := cs.CoreV1().Pods(ns).Watch(ctx, wo)
		if err != nil {
			b.Fatal(err)
		}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				break
			}
			if p, ok := ev.Object.(*corev1.Pod); ok && ev.Type != watch.Deleted && cond(p) {
				w.Stop()
				return p
			}
		}
		w.Stop()
		if ctx.Err() != nil {
			b.Fatalf("pods of %s: %v", ns, ctx.Err())
		}
	}
}

// waitServiceAccount watches ns until its default ServiceAccount exists.
func waitServiceAccount(b *testing.B, ctx context.Context, cs kubernetes.Interface, ns string) {
	b.Helper()
	opts := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", "default").String()}
	for {
		list, err := cs.CoreV1().ServiceAccounts(ns).List(ctx, opts)
		if err != nil {
			b.Fatal(err)
		}
		if len(list.Items) > 0 {
			return
		}
		wo := opts
		wo.ResourceVersion = list.ResourceVersion
		w, err := cs.CoreV1().ServiceAccounts(ns).Watch(ctx, wo)
		if err != nil {
			b.Fatal(err)
		}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Added {
				w.Stop()
				return
			}
			if ev.Type == watch.Error {
				break
			}
		}
		w.Stop()
		if ctx.Err() != nil {
			b.Fatalf("default ServiceAccount of %s: %v", ns, ctx.Err())
		}
	}
}

// waitNamespaceGone watches namespace ns until it is deleted.
func waitNamespaceGone(b *testing.B, ctx context.Context, cs kubernetes.Interface, ns string) {
	b.Helper()
	opts := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", ns).String()}
	for {
		list, err := cs.CoreV1().Namespaces().List(ctx, opts)
		if err != nil {
			b.Fatal(err)
		}
		if len(list.Items) == 0 {
			return
		}
		opts.ResourceVersion = list.ResourceVersion
		w, err := cs.CoreV1().Namespaces().Watch(ctx, opts)
		if err != nil {
			b.Fatal(err)
		}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Deleted {
				w.Stop()
				return
			}
			if ev.Type == watch.Error {
				break
			}
		}
		w.Stop()
		opts.ResourceVersion = ""
		if ctx.Err() != nil {
			b.Fatalf("namespace %s not gone: %v", ns, ctx.Err())
		}
		if _, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return
		}
	}
}
