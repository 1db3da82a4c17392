package executor

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/nullops/nullops/agent/kube"
	"github.com/nullops/nullops/agent/runtime"
)

// The executor's common tests on a Kubernetes cluster:
// NULLOPS_RUNTIME=kubernetes with KUBECONFIG of a cluster whose containerd
// this machine can import images into (the project's test cluster).
func init() {
	testRuntimes[runtime.Kubernetes] = &testRuntime{
		new: func(t testing.TB, node string) runtime.Runtime {
			rt, err := kube.New(kube.Config{Node: node, Kubeconfig: kubeconfig(t)})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := rt.Ping(ctx); err != nil {
				t.Fatalf("the test cluster does not answer: %v", err)
			}
			return rt
		},
		image:       kubeImportImage,
		objects:     kubeObjects,
		publishHost: "127.0.0.1", // NodePorts answer on the node's loopback
	}
}

func kubeconfig(t testing.TB) string {
	t.Helper()
	kc := os.Getenv("KUBECONFIG")
	if kc == "" {
		t.Fatal("NULLOPS_RUNTIME=kubernetes needs KUBECONFIG (the test cluster's)")
	}
	return kc
}

var (
	kubeImportMu sync.Mutex
	kubeImported = map[string]bool{}
)

// kubeImportImage puts a locally built image into the test cluster's
// containerd (nothing is pulled there).
func kubeImportImage(t testing.TB, ref string) {
	t.Helper()
	kubeImportMu.Lock()
	defer kubeImportMu.Unlock()
	if kubeImported[ref] {
		return
	}
	dir := os.Getenv("K8S_DIR")
	if dir == "" {
		dir = "/tmp/k8s"
	}
	cmd := exec.Command("sh", "-c", `docker save "$1" | ctr -a "$2" -n k8s.io images import -`, "sh", ref, dir+"/containerd.sock")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("import %s into the test cluster: %v\n%s", ref, err, out)
	}
	kubeImported[ref] = true
}

// kubeObjects lists deployment id's namespace of node and what is in it,
// with client-go directly.
func kubeObjects(t testing.TB, node string, id int64) []string {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig(t))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nss, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{
		LabelSelector: runtime.LabelDeployment + "=" + strconv.FormatInt(id, 10) + "," + runtime.LabelNode + "=" + node,
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ns := range nss.Items {
		out = append(out, "namespace "+ns.Name)
		pods, err := cs.CoreV1().Pods(ns.Name).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			out = append(out, "pod "+p.Name)
		}
		deps, err := cs.AppsV1().Deployments(ns.Name).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range deps.Items {
			out = append(out, "deployment "+d.Name)
		}
		svcs, err := cs.CoreV1().Services(ns.Name).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range svcs.Items {
			out = append(out, "service "+s.Name)
		}
	}
	return out
}
