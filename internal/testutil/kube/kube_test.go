package kube_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/internal/testutil/kube"
)

func TestSkippedUnlessEnabled(t *testing.T) {
	if kube.Enabled() {
		t.Skip("NULLOPS_K8S=1: this test checks the skip without it")
	}
	ran := false
	t.Run("needs-cluster", func(t *testing.T) {
		kube.Client(t)
		ran = true
	})
	if ran {
		t.Fatal("Client did not skip the test without NULLOPS_K8S=1")
	}
}

// TestNetworkPolicyEnforced proves the test cluster runs pods of an image
// built here (imported, not pulled) and that NetworkPolicy is really enforced
// (kube-router), which the agent's per-deployment isolation relies on:
// deny-all ingress blocks pod-to-pod traffic inside the namespace and from
// another one; allow-same-namespace lets the namespace in and keeps the other
// out.
func TestNetworkPolicyEnforced(t *testing.T) {
	c := kube.Client(t)
	ctx := testutil.Context(t, 5*time.Minute)
	img := kube.ScratchImage(t, "./internal/testutil/kube/probe", fmt.Sprintf("nullops-test/kube-probe:%d", os.Getpid()))
	nsA := kube.Namespace(t, c, "netpol-a")
	nsB := kube.Namespace(t, c, "netpol-b")

	server := pod("server", img, corev1.RestartPolicyAlways)
	server.Labels = map[string]string{"app": "server"}
	server.Spec.Containers[0].ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(8080)}},
		PeriodSeconds: 1,
	}
	if _, err := c.CoreV1().Pods(nsA).Create(ctx, server, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ready := kube.WaitPod(t, ctx, c, nsA, "server", kube.PodReady)
	url := "http://" + ready.Status.PodIP + ":8080/"

	// A probe pod in ns GETs url, retrying for wait: did it get through? A
	// new pod's traffic passes only once kube-router has seen its address
	// (within about a second), so "reachable" probes wait up to 15 s, and
	// "blocked" ones are blocked for 5 s, well past that.
	n := 0
	probe := func(ns string, wait time.Duration) bool {
		t.Helper()
		n++
		name := fmt.Sprintf("probe-%d", n)
		p := pod(name, img, corev1.RestartPolicyNever)
		p.Spec.Containers[0].Args = []string{"get", url, wait.String()}
		if _, err := c.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		ended := kube.WaitPod(t, ctx, c, ns, name, kube.PodEnded)
		_ = c.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{})
		return ended.Status.Phase == corev1.PodSucceeded
	}
	// eventually: kube-router applies a policy change about a second after
	// the API accepts it; poll with fresh probe pods until the expected
	// result shows, bounded by ctx.
	wait := func(reachable bool) time.Duration {
		if reachable {
			return 15 * time.Second
		}
		return 5 * time.Second
	}
	// eventually: a policy change takes effect about a second after the API
	// accepted it; probe again until the expected result shows (at most 10).
	eventually := func(ns string, want bool, what string) {
		t.Helper()
		for i := 0; i < 10; i++ {
			if probe(ns, wait(want)) == want {
				return
			}
		}
		t.Fatalf("%s: 10 probes from %s never gave reachable=%v", what, ns, want)
	}
	expect := func(ns string, want bool, what string) {
		t.Helper()
		if got := probe(ns, wait(want)); got != want {
			t.Fatalf("%s: probe from %s reachable=%v, want %v", what, ns, got, want)
		}
	}

	eventually(nsB, true, "no policy: other namespace -> server")
	expect(nsA, true, "no policy: same namespace -> server")

	createPolicy(t, ctx, c, nsA, "deny-all-ingress", nil)
	eventually(nsA, false, "deny-all ingress: same namespace -> server")
	expect(nsB, false, "deny-all ingress: other namespace -> server")

	createPolicy(t, ctx, c, nsA, "allow-same-namespace", []networkingv1.NetworkPolicyIngressRule{
		{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}},
	})
	eventually(nsA, true, "allow-same-namespace: same namespace -> server")
	expect(nsB, false, "allow-same-namespace: other namespace -> server")
}

func pod(name, image string, restart corev1.RestartPolicy) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			RestartPolicy:                 restart,
			TerminationGracePeriodSeconds: new(int64),
			AutomountServiceAccountToken:  new(bool),
			Containers: []corev1.Container{{
				Name:            "c",
				Image:           image,
				ImagePullPolicy: corev1.PullNever,
			}},
		},
	}
}

func createPolicy(t *testing.T, ctx context.Context, c kubernetes.Interface, ns, name string, ingress []networkingv1.NetworkPolicyIngressRule) {
	t.Helper()
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress:     ingress,
		},
	}
	if _, err := c.NetworkingV1().NetworkPolicies(ns).Create(ctx, np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}
