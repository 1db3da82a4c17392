package kube

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nullops/nullops/internal/testutil"
)

const (
	webImage    = "nullops-test/demo-web:kube"
	pluginImage = "nullops-test/test-plugin:kube"
)

// testRuntime returns a runtime on the test cluster scoped to a fresh node
// name, whose objects are removed when the test ends. The Kubernetes tests
// run with NULLOPS_K8S=1 (and KUBECONFIG); with it set, a cluster that does
// not answer fails them. Tests on the cluster run in parallel: each has its
// own node name, so its own namespaces, and none counts objects it did not
// create.
func testRuntime(t *testing.T) *Runtime {
	t.Helper()
	if os.Getenv("NULLOPS_K8S") != "1" {
		t.Skip("Kubernetes tests run with NULLOPS_K8S=1 and KUBECONFIG (make test-k8s)")
	}
	kc := os.Getenv("KUBECONFIG")
	if kc == "" {
		t.Fatal("NULLOPS_K8S=1 but KUBECONFIG is not set")
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	rt, err := New(Config{Node: "kt-" + hex.EncodeToString(b[:]), Kubeconfig: kc})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := rt.Ping(ctx); err != nil {
		t.Fatalf("the test cluster does not answer: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		objs, err := rt.ListManaged(ctx, 0)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		if _, err := rt.Remove(ctx, objs); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return rt
}

var (
	importMu sync.Mutex
	imported = map[string]bool{}
)

// containerdSocket is the test cluster's containerd (scripts of the test
// cluster; K8S_DIR moves it).
func containerdSocket() string {
	dir := os.Getenv("K8S_DIR")
	if dir == "" {
		dir = "/tmp/k8s"
	}
	return dir + "/containerd.sock"
}

// testImage builds the FROM-scratch image of a Go package of this
// repository with Docker and imports it into the cluster's containerd
// (nothing is pulled; pods use IfNotPresent).
func testImage(t *testing.T, pkg, ref string) string {
	t.Helper()
	importMu.Lock()
	defer importMu.Unlock()
	if imported[ref] {
		return ref
	}
	testutil.ScratchImage(t, pkg, ref)
	cmd := exec.Command("sh", "-c", "docker save \"$1\" | ctr -a \"$2\" -n k8s.io images import -", "sh", ref, containerdSocket())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("import %s into the cluster: %v\n%s", ref, err, out)
	}
	imported[ref] = true
	return ref
}

func webImg(t *testing.T) string { return testImage(t, "./scripts/images/demo-web", webImage) }
func pluginImg(t *testing.T) string {
	return testImage(t, "./scripts/images/test-plugin", pluginImage)
}

// waitFor polls cond every 200 ms until it holds, failing the test at the
// context's deadline.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() (bool, string)) {
	t.Helper()
	last := ""
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if detail != "" {
			last = detail
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not reached: %s", what, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// namespaceGone says whether a namespace no longer exists.
func namespaceGone(t *testing.T, rt *Runtime, name string) bool {
	t.Helper()
	_, err := rt.cs.CoreV1().Namespaces().Get(context.Background(), name, metav1.GetOptions{})
	return err != nil && strings.Contains(err.Error(), "not found")
}
