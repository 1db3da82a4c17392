package kubernetes_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/nullops/nullops/agent/certs"
	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/internal/testutil/kube"
)

// TestAgentPodKeepsItsIdentity: nullops-agent, installed with agent.yaml
// (its image: the agent binary FROM scratch), starts in the cluster with
// runtime kubernetes and the in-cluster configuration, answers TLS on the
// NodePort the control plane dials, and keeps its certificate in the state
// Secret: the pod that replaces a deleted one presents the same thumbprint,
// so the control plane's pin still holds.
func TestAgentPodKeepsItsIdentity(t *testing.T) {
	cfg := kube.RESTConfig(t)
	admin := kube.Client(t)
	ctx := testutil.Context(t, 5*time.Minute)
	inst := kube.AgentInstallation(t)
	agentNS := inst.NS
	img := kube.ScratchImage(t, "./cmd/nullops-agent", fmt.Sprintf("nullops-test/agent:pod-%d", os.Getpid()))
	manifest := inst.WithImage(t, img)
	workload := func(u *unstructured.Unstructured) bool {
		return u.GetKind() == "Deployment" || u.GetKind() == "Service"
	}
	kube.Apply(t, cfg, manifest, func(u *unstructured.Unstructured) bool { return !workload(u) })
	if _, err := admin.CoreV1().Secrets(agentNS).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: inst.TokenSecret},
		StringData: map[string]string{"token": "pod-identity-test-token-0123456789"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, s := range []string{inst.TokenSecret, inst.StateSecret} {
			_ = admin.CoreV1().Secrets(agentNS).Delete(context.Background(), s, metav1.DeleteOptions{})
		}
	})
	kube.Apply(t, cfg, manifest, workload)

	readyPod := func(not string) *corev1.Pod {
		t.Helper()
		return kube.WaitReadyPod(t, ctx, admin, agentNS, "app.kubernetes.io/name="+inst.SA, not)
	}
	svc, err := admin.CoreV1().Services(agentNS).Get(ctx, inst.SA, metav1.GetOptions{})
	if err != nil || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].NodePort == 0 {
		t.Fatalf("the agent's NodePort Service: %v", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", svc.Spec.Ports[0].NodePort)
	thumbprint := func() string {
		t.Helper()
		var tp string
		testutil.WaitFor(t, ctx, 500*time.Millisecond, "TLS on the NodePort", func() bool {
			d := &net.Dialer{Timeout: 3 * time.Second}
			c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true}) // the thumbprint is what is checked
			if err != nil {
				return false
			}
			defer c.Close()
			tp = certs.Thumbprint(c.ConnectionState().PeerCertificates[0].Raw)
			return true
		})
		return tp
	}

	first := readyPod("")
	tp1 := thumbprint()
	sec, err := admin.CoreV1().Secrets(agentNS).Get(ctx, inst.StateSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the agent wrote no state secret: %v", err)
	}
	block, _ := pem.Decode(sec.Data[certs.CertFile])
	if block == nil {
		t.Fatal("no certificate in the state secret")
	}
	if c, err := x509.ParseCertificate(block.Bytes); err != nil || certs.Thumbprint(c.Raw) != tp1 {
		t.Fatalf("state secret's certificate is not the one served (%v)", err)
	}

	zero := int64(0)
	if err := admin.CoreV1().Pods(agentNS).Delete(ctx, first.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	second := readyPod(first.Name)
	var tp2 string
	// The old pod's endpoint may answer until it is gone: ask until the
	// new pod is the one that answers.
	testutil.WaitFor(t, ctx, time.Second, "the new pod answering", func() bool {
		_, err := admin.CoreV1().Pods(agentNS).Get(ctx, first.Name, metav1.GetOptions{})
		if err == nil {
			return false
		}
		tp2 = thumbprint()
		return true
	})
	if tp2 != tp1 {
		for _, p := range []string{second.Name} {
			b, _ := admin.CoreV1().Pods(agentNS).GetLogs(p, &corev1.PodLogOptions{}).DoRaw(ctx)
			t.Logf("log of %s:\n%s", p, b)
		}
		t.Fatalf("the agent pod %s presents thumbprint %s, its predecessor %s: the pin breaks", second.Name, tp2, tp1)
	}
}
