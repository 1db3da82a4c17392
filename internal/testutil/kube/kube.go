// Package kube gives tests the project's Kubernetes test cluster: a real
// single-node Kubernetes built and run by scripts/k8s (docs/kubernetes.md).
// `make test` starts it where it can run (as root) and exports NULLOPS_K8S=1
// and KUBECONFIG for the whole suite.
//
// Tests that need the cluster call Client or Kubeconfig first: without
// NULLOPS_K8S=1 they are skipped; with it, a cluster that does not answer
// fails them (a broken cluster must not look like a skipped test).
//
// The cluster pulls nothing from public registries: images built here are
// loaded into its containerd with ImportImage (docker save | ctr import), and
// pods refer to them with imagePullPolicy IfNotPresent or Never.
package kube

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/nullops/nullops/internal/testutil"
)

const (
	// EnvEnable set to "1" turns the Kubernetes tests on.
	EnvEnable = "NULLOPS_K8S"
	// EnvContainerd overrides the cluster containerd's socket.
	EnvContainerd = "NULLOPS_K8S_CONTAINERD"
	// DefaultKubeconfig is the admin kubeconfig scripts/k8s/start.sh writes.
	DefaultKubeconfig = "/tmp/k8s/admin.kubeconfig"
	// DefaultContainerd is the socket of the cluster's own containerd.
	DefaultContainerd = "/tmp/k8s/containerd.sock"
	// TestLabel marks the namespaces Namespace creates.
	TestLabel = "nullops.io/test"
)

// Enabled reports whether the Kubernetes tests are on (NULLOPS_K8S=1).
func Enabled() bool { return os.Getenv(EnvEnable) == "1" }

// Kubeconfig returns the path of the cluster's kubeconfig (KUBECONFIG, else
// the one start.sh writes). It skips the test unless NULLOPS_K8S=1.
func Kubeconfig(t testing.TB) string {
	t.Helper()
	if !Enabled() {
		t.Skipf("Kubernetes test cluster not enabled: %s=1 (set by `make test` as root; or run scripts/k8s/start.sh and export %s=1 KUBECONFIG=%s)", EnvEnable, EnvEnable, DefaultKubeconfig)
	}
	path := os.Getenv("KUBECONFIG")
	if path == "" {
		path = DefaultKubeconfig
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s=1 but the kubeconfig is missing: %v (is the cluster up? scripts/k8s/status.sh)", EnvEnable, err)
	}
	return path
}

// RESTConfig returns the client configuration of the test cluster.
func RESTConfig(t testing.TB) *rest.Config {
	t.Helper()
	path := Kubeconfig(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	return cfg
}

var reachable sync.Map // kubeconfig path -> struct{}: the API answered once in this process

// Client returns a clientset for the test cluster (cluster-admin). It skips
// the test unless NULLOPS_K8S=1 and fails it if the API server does not
// answer.
func Client(t testing.TB) *kubernetes.Clientset {
	t.Helper()
	cfg := RESTConfig(t)
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := reachable.Load(cfg.Host); !ok {
		if _, err := c.Discovery().ServerVersion(); err != nil {
			t.Fatalf("%s=1 but the Kubernetes API at %s does not answer: %v (scripts/k8s/status.sh)", EnvEnable, cfg.Host, err)
		}
		reachable.Store(cfg.Host, struct{}{})
	}
	return c
}

// Namespace creates a fresh namespace named after prefix (lowercase, at most
// ~40 characters) and labelled TestLabel=true; it is deleted when the test
// ends, without waiting for its pods to go.
func Namespace(t testing.TB, c kubernetes.Interface, prefix string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: "nullops-test-" + prefix + "-",
		Labels:       map[string]string{TestLabel: "true"},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := c.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", ns.Name, err)
		}
	})
	return ns.Name
}

var (
	importMu sync.Mutex
	imported = map[string]bool{} // image ID -> loaded into the cluster by this process
)

// ImportImage loads the local Docker image ref into the cluster's containerd
// (docker save | ctr images import), once per image ID per test process.
// Pods then use ref as their image with imagePullPolicy IfNotPresent or
// Never; "name:tag" is found as "docker.io/name:tag", as the kubelet
// resolves it. Needs root (the containerd socket).
func ImportImage(t testing.TB, ref string) {
	t.Helper()
	Kubeconfig(t) // skip unless enabled
	id := testutil.Docker(t, "image", "inspect", "-f", "{{.Id}}", ref)
	importMu.Lock()
	defer importMu.Unlock()
	if imported[id+" "+ref] {
		return
	}
	sock := os.Getenv(EnvContainerd)
	if sock == "" {
		sock = DefaultContainerd
	}
	save := exec.Command("docker", "save", ref)
	load := exec.Command("ctr", "-a", sock, "-n", "k8s.io", "images", "import", "-")
	var saveErr, loadOut bytes.Buffer
	save.Stderr = &saveErr
	load.Stdout, load.Stderr = &loadOut, &loadOut
	pipe, err := save.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	load.Stdin = pipe
	if err := save.Start(); err != nil {
		t.Fatalf("docker save %s: %v", ref, err)
	}
	loadErr := load.Run()
	if err := save.Wait(); err != nil {
		t.Fatalf("docker save %s: %v: %s", ref, err, saveErr.String())
	}
	if loadErr != nil {
		t.Fatalf("ctr -a %s images import (image %s): %v: %s", sock, ref, loadErr, loadOut.String())
	}
	imported[id+" "+ref] = true
}

// ScratchImage builds a FROM-scratch image of the Go package pkg of this
// repository (testutil.ScratchImage) and loads it into the cluster.
func ScratchImage(t testing.TB, pkg, ref string, args ...string) string {
	t.Helper()
	Kubeconfig(t) // skip before building anything
	testutil.ScratchImage(t, pkg, ref, args...)
	ImportImage(t, ref)
	return ref
}

// WaitPod watches the pod ns/name until cond returns true (or an error),
// and returns the pod as cond saw it. It fails the test when ctx ends first.
func WaitPod(t testing.TB, ctx context.Context, c kubernetes.Interface, ns, name string, cond func(*corev1.Pod) (bool, error)) *corev1.Pod {
	t.Helper()
	pods := c.CoreV1().Pods(ns)
	var last *corev1.Pod
	for {
		p, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatalf("get pod %s/%s: %v (last seen: %s)", ns, name, err, describe(last))
		}
		rv := ""
		if err == nil {
			last, rv = p, p.ResourceVersion
			done, cerr := cond(p)
			if cerr != nil {
				t.Fatalf("pod %s/%s: %v (%s)", ns, name, cerr, describe(p))
			}
			if done {
				return p
			}
		}
		w, err := pods.Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String(), ResourceVersion: rv})
		if err != nil {
			t.Fatalf("watch pod %s/%s: %v (last seen: %s)", ns, name, err, describe(last))
		}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				break // e.g. resource version too old: get again
			}
			p, ok := ev.Object.(*corev1.Pod)
			if !ok || ev.Type == watch.Deleted {
				continue
			}
			last = p
			done, cerr := cond(p)
			if cerr != nil {
				w.Stop()
				t.Fatalf("pod %s/%s: %v (%s)", ns, name, cerr, describe(p))
			}
			if done {
				w.Stop()
				return p
			}
		}
		w.Stop()
		if ctx.Err() != nil {
			t.Fatalf("timed out waiting for pod %s/%s (last seen: %s)", ns, name, describe(last))
		}
	}
}

// WaitReadyPod waits for a Ready pod in ns matching selector, other than
// not and not being deleted (a replacement after a pod was deleted).
func WaitReadyPod(t testing.TB, ctx context.Context, cs kubernetes.Interface, ns, selector, not string) *corev1.Pod {
	t.Helper()
	var ready *corev1.Pod
	testutil.WaitFor(t, ctx, 250*time.Millisecond, "a ready pod "+selector+" in "+ns, func() bool {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			if ok, _ := PodReady(p); ok && p.Name != not && p.DeletionTimestamp == nil {
				ready = p
				return true
			}
		}
		return false
	})
	return ready
}

// PodReady is a WaitPod condition: the pod is Ready; a pod that ended
// (Succeeded/Failed) is an error.
func PodReady(p *corev1.Pod) (bool, error) {
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return false, fmt.Errorf("pod ended (%s) instead of becoming ready", p.Status.Phase)
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return true, nil
		}
	}
	return false, nil
}

// PodEnded is a WaitPod condition: the pod is Succeeded or Failed.
func PodEnded(p *corev1.Pod) (bool, error) {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed, nil
}

func describe(p *corev1.Pod) string {
	if p == nil {
		return "no pod"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "phase %s", p.Status.Phase)
	for _, cs := range p.Status.ContainerStatuses {
		switch {
		case cs.State.Waiting != nil:
			fmt.Fprintf(&b, ", %s waiting: %s %s", cs.Name, cs.State.Waiting.Reason, cs.State.Waiting.Message)
		case cs.State.Terminated != nil:
			fmt.Fprintf(&b, ", %s terminated: %s exit %d", cs.Name, cs.State.Terminated.Reason, cs.State.Terminated.ExitCode)
		case cs.State.Running != nil:
			fmt.Fprintf(&b, ", %s running", cs.Name)
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Status != corev1.ConditionTrue && c.Message != "" {
			fmt.Fprintf(&b, ", %s: %s", c.Type, c.Message)
		}
	}
	return b.String()
}

// NodeIP is the InternalIP of the cluster's (first) node: an address other
// than loopback where its NodePorts answer (scripts/k8s/start.sh's
// nodePortAddresses), as a load balancer or an ingress on another machine
// would reach them.
func NodeIP(t testing.TB, c kubernetes.Interface) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list nodes: %v", err)
	}
	for _, n := range nodes.Items {
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP && a.Address != "" {
				return a.Address
			}
		}
	}
	t.Fatalf("no node of the cluster has an InternalIP")
	return ""
}
