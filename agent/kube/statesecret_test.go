package kube

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nullops/nullops/agent/certs"
	"github.com/nullops/nullops/agent/trust"
	"github.com/nullops/nullops/internal/testutil"
)

// TestStateSecretKeepsTheIdentity: the certificate a first pod generated
// (and its trust record) come back in a second pod's empty data dir, so
// the thumbprint the control plane pinned does not change; a rotation's
// new trust record is mirrored.
func TestStateSecretKeepsTheIdentity(t *testing.T) {
	t.Parallel()
	rt := testRuntime(t)
	ctx := testutil.Context(t, 2*time.Minute)
	ns := "nullops-state-" + rt.nodeLabel
	if _, err := rt.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.deleteNamespace(testutil.Context(t, time.Minute), ns) })

	first := t.TempDir()
	ss, err := NewStateSecret(os.Getenv("KUBECONFIG"), "", ns, "nullops-agent-state", first)
	if err != nil {
		t.Fatal(err)
	}
	if restored, err := ss.Restore(ctx); err != nil || len(restored) != 0 {
		t.Fatalf("restore from no secret: %v %v", restored, err)
	}
	id1, err := certs.Ensure(first, "agent")
	if err != nil || !id1.Generated {
		t.Fatal(err)
	}
	tr, err := trust.Open(filepath.Join(first, trust.FileName), "token-0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	_ = tr
	if err := ss.Save(ctx); err != nil {
		t.Fatal(err)
	}

	second := t.TempDir()
	ss2, err := NewStateSecret(os.Getenv("KUBECONFIG"), "", ns, "nullops-agent-state", second)
	if err != nil {
		t.Fatal(err)
	}
	restored, err := ss2.Restore(ctx)
	if err != nil || len(restored) != 3 {
		t.Fatalf("restore: %v %v", restored, err)
	}
	id2, err := certs.Ensure(second, "agent")
	if err != nil {
		t.Fatal(err)
	}
	if id2.Generated || id2.Thumbprint != id1.Thumbprint {
		t.Fatalf("thumbprint changed across pods: %s → %s (generated %v)", id1.Thumbprint, id2.Thumbprint, id2.Generated)
	}
	a, _ := os.ReadFile(filepath.Join(first, trust.FileName))
	b, _ := os.ReadFile(filepath.Join(second, trust.FileName))
	if string(a) != string(b) || len(a) == 0 {
		t.Fatal("trust record not restored")
	}

	// A data dir with its own certificate is left alone.
	if restored, err := ss.Restore(ctx); err != nil || len(restored) != 0 {
		t.Fatalf("restore over an existing identity: %v %v", restored, err)
	}

	// A changed trust record reaches the Secret.
	if err := os.WriteFile(filepath.Join(second, trust.FileName), []byte(`{"changed":true}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ss2.Save(ctx); err != nil {
		t.Fatal(err)
	}
	sec, err := rt.cs.CoreV1().Secrets(ns).Get(ctx, "nullops-agent-state", metav1.GetOptions{})
	if err != nil || string(sec.Data[trust.FileName]) != `{"changed":true}` {
		t.Fatalf("mirrored trust record: %v", err)
	}
}
