package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentkube "github.com/nullops/nullops/agent/kube"
	"github.com/nullops/nullops/agent/runtime"
	"github.com/nullops/nullops/internal/confload"
	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/internal/testutil/kube"
)

// TestUninstallRemovesEverythingOfTheNode: `nullops-agent uninstall
// --nodeuid=X` removes every container (running with a restart policy, or
// stopped), network and volume labelled for node X — with no agent running
// and no data dir — and nothing of another node. (Without --nodeuid it
// takes every nullops.managed object of the daemon; on this shared test
// daemon that would be other tests' objects, so the test scopes it.)
func TestUninstallRemovesEverythingOfTheNode(t *testing.T) {
	img := testutil.ScratchImage(t, "./scripts/images/demo-web", "nullops-test/demo-web:uninstall")
	unique := fmt.Sprintf("un%x", time.Now().UnixNano()&0xffffffff)
	mine, other := unique+"a", unique+"b"
	lbl := func(uid string) []string {
		return []string{"--label", "nullops.managed=true", "--label", "nullops.node=old-instance", "--label", "nullops.node_uid=" + uid, "--label", "nullops.deployment=7"}
	}
	names := map[string]string{ // name → kind
		unique + "-run":  "container",
		unique + "-stop": "container",
		unique + "-net":  "network",
		unique + "-vol":  "volume",
	}
	t.Cleanup(func() {
		for n, kind := range names {
			if kind == "container" {
				_, _ = testutil.DockerErr("rm", "-f", n)
			}
		}
		_, _ = testutil.DockerErr("rm", "-f", unique+"-other")
		_, _ = testutil.DockerErr("network", "rm", unique+"-net")
		_, _ = testutil.DockerErr("volume", "rm", "-f", unique+"-vol")
	})
	testutil.Docker(t, append(append([]string{"network", "create"}, lbl(mine)...), unique+"-net")...)
	testutil.Docker(t, append(append([]string{"volume", "create"}, lbl(mine)...), unique+"-vol")...)
	testutil.Docker(t, append(append([]string{"run", "-d", "--restart", "unless-stopped", "--network", unique + "-net",
		"-v", unique + "-vol:/data", "--name", unique + "-run"}, lbl(mine)...), img)...)
	testutil.Docker(t, append(append([]string{"create", "--name", unique + "-stop"}, lbl(mine)...), img)...)
	testutil.Docker(t, append(append([]string{"run", "-d", "--name", unique + "-other"}, lbl(other)...), img)...)

	var out strings.Builder
	// A uid that is not one never reaches a label filter.
	if err := uninstall(&uninstallOptions{NodeUID: mine + ",x=y"}, &out); err == nil || out.Len() > 0 {
		t.Fatalf("uninstall with a malformed uid: %v, output %q", err, out.String())
	}
	if err := uninstall(&uninstallOptions{NodeUID: mine}, &out); err != nil {
		t.Fatalf("uninstall: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "4 objects removed; nothing labelled nullops.managed=true and nullops.node_uid="+mine+" is left") {
		t.Errorf("uninstall summary:\n%s", out.String())
	}
	for n := range names {
		if !strings.Contains(out.String(), "removed "+n+"\n") {
			t.Errorf("uninstall output does not name %s:\n%s", n, out.String())
		}
	}
	left := strings.Fields(testutil.Docker(t, "ps", "-a", "--filter", "label=nullops.node_uid="+mine, "--format", "{{.Names}}") + " " +
		testutil.Docker(t, "network", "ls", "--filter", "label=nullops.node_uid="+mine, "--format", "{{.Name}}") + " " +
		testutil.Docker(t, "volume", "ls", "--filter", "label=nullops.node_uid="+mine, "--format", "{{.Name}}"))
	if len(left) > 0 {
		t.Fatalf("left after uninstall: %v", left)
	}
	others := strings.Fields(testutil.Docker(t, "ps", "--filter", "label=nullops.node_uid="+other, "--format", "{{.Names}}"))
	if !slices.Equal(others, []string{unique + "-other"}) {
		t.Fatalf("another node's running containers after uninstall: %v", others)
	}

	// Nothing left: a second run removes nothing and succeeds.
	out.Reset()
	if err := uninstall(&uninstallOptions{NodeUID: mine}, &out); err != nil || !strings.Contains(out.String(), "0 objects removed") {
		t.Fatalf("second uninstall: %v\n%s", err, out.String())
	}
}

// TestUninstallTakesTheAgentsEnvironment: `docker-compose run --rm agent
// uninstall`, or the agent image run with the agent's own variables, hands
// uninstall the whole environment of the agent — docker.* options of the
// node, and in the Kubernetes manifest NULLOPS_RUNTIME and
// NULLOPS_KUBERNETES_*. Uninstall must accept every one of them (and use
// runtime and access options), not fail on an option it has no use for.
func TestUninstallTakesTheAgentsEnvironment(t *testing.T) {
	dockerEnv := []string{"AGENT_TOKEN=x", "NULLOPS_NODENAME=n", "NULLOPS_DATADIR=/data", "NULLOPS_DOCKER_HOST=unix:///run/d.sock",
		"NULLOPS_DOCKER_PUBLISHIP=10.0.0.5", "NULLOPS_DOCKER_PLUGINSOCKET=true", "NULLOPS_DOCKER_SUBNETPOOL=10.99.0.0/16", "NULLOPS_LOG_LEVEL=debug"}
	opts := &uninstallOptions{Runtime: runtime.Docker}
	if err := confload.Apply(opts, nil, dockerEnv, nil); err != nil {
		t.Fatalf("uninstall with a Docker agent's environment: %v", err)
	}
	if opts.Runtime != runtime.Docker || opts.Docker.Host != "unix:///run/d.sock" {
		t.Errorf("runtime %q, docker.host %q", opts.Runtime, opts.Docker.Host)
	}

	// The Deployment of deploy/kubernetes/agent.yaml, its literal values.
	raw, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "deploy", "kubernetes", "agent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var kubeEnv []string
	for _, m := range regexp.MustCompile(`\{name: (NULLOPS_[A-Z_]+), value: ([^}]+)\}`).FindAllStringSubmatch(string(raw), -1) {
		kubeEnv = append(kubeEnv, m[1]+"="+strings.TrimSpace(m[2]))
	}
	if !slices.Contains(kubeEnv, "NULLOPS_RUNTIME=kubernetes") {
		t.Fatalf("agent.yaml's environment %v has no NULLOPS_RUNTIME=kubernetes", kubeEnv)
	}
	kubeEnv = append(kubeEnv, "NULLOPS_KUBERNETES_KUBECONFIG=/k/config", "NULLOPS_KUBERNETES_CONTEXT=ctx")
	opts = &uninstallOptions{Runtime: runtime.Docker}
	if err := confload.Apply(opts, nil, kubeEnv, nil); err != nil {
		t.Fatalf("uninstall with the Kubernetes agent's environment %v: %v", kubeEnv, err)
	}
	if opts.Runtime != runtime.Kubernetes || opts.Kubernetes.Kubeconfig != "/k/config" || opts.Kubernetes.Context != "ctx" {
		t.Errorf("runtime %q, kubeconfig %q, context %q", opts.Runtime, opts.Kubernetes.Kubeconfig, opts.Kubernetes.Context)
	}
	var out strings.Builder
	if err := uninstall(&uninstallOptions{Runtime: "podman"}, &out); err == nil || !strings.Contains(err.Error(), "podman") {
		t.Errorf("uninstall with an unknown runtime: %v", err)
	}
}

// TestUninstallOnKubernetes: `nullops-agent uninstall --runtime=kubernetes
// --nodeuid=X` deletes every namespace labelled for node X — with what is
// in it — and no other namespace (NULLOPS_K8S=1: the test cluster).
func TestUninstallOnKubernetes(t *testing.T) {
	c := kube.Client(t)
	path := kube.Kubeconfig(t)
	ctx := testutil.Context(t, 3*time.Minute)
	unique := fmt.Sprintf("un%x", time.Now().UnixNano()&0xffffffff)
	mine, other := unique+"a", unique+"b"
	mkns := func(name, uid string) {
		t.Helper()
		_, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			kube.TestLabel: "true", agentkube.LabelManaged: "true", agentkube.LabelNode: "old-instance",
			agentkube.LabelNodeUID: uid, agentkube.LabelDeployment: "7"}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{}) })
		if _, err := c.CoreV1().ConfigMaps(name).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "data"},
			Data: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mkns(unique+"-one", mine)
	mkns(unique+"-two", mine)
	mkns(unique+"-other", other)

	var out strings.Builder
	opts := &uninstallOptions{Runtime: runtime.Kubernetes, NodeUID: mine}
	opts.Kubernetes.Kubeconfig = path
	if err := uninstall(opts, &out); err != nil {
		t.Fatalf("uninstall: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "2 objects removed; nothing labelled nullops.managed=true and nullops.node_uid="+mine+" is left on the cluster") ||
		!strings.Contains(out.String(), "removed "+unique+"-one\n") || !strings.Contains(out.String(), "removed "+unique+"-two\n") {
		t.Errorf("uninstall output:\n%s", out.String())
	}
	for _, ns := range []string{unique + "-one", unique + "-two"} {
		if _, err := c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("namespace %s after uninstall: %v", ns, err)
		}
	}
	if _, err := c.CoreV1().Namespaces().Get(ctx, unique+"-other", metav1.GetOptions{}); err != nil {
		t.Errorf("another node's namespace after uninstall: %v", err)
	}
	out.Reset()
	if err := uninstall(opts, &out); err != nil || !strings.Contains(out.String(), "0 objects removed") {
		t.Fatalf("second uninstall: %v\n%s", err, out.String())
	}
}
