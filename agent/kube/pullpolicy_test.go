package kube

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/nullops/nullops/protocol"
)

// TestPullPolicy: workloads with credentials always ask their registry; a
// workload without credentials does too once this agent started its image
// with credentials (the same image by any spelling of its reference), so
// the node's cached copy of a private image is not handed to it; other
// images without credentials start from the node's cache.
func TestPullPolicy(t *testing.T) {
	r := &Runtime{}
	ctx := context.Background()
	alice := &protocol.RegistryAuth{ServerAddress: "reg.test:5000", Username: "alice", Password: "pw"}
	if _, err := r.EnsureImage(ctx, "reg.test:5000/private/web:v1", alice, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r.EnsureImage(ctx, "busybox", alice, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r.EnsureImage(ctx, "reg.test:5000/public/web:v1", nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r.EnsureImage(ctx, "reg.test:5000/Bad Ref", alice, nil); err == nil {
		t.Fatal("an invalid reference was accepted")
	}
	for _, c := range []struct {
		image string
		auth  *protocol.RegistryAuth
		want  corev1.PullPolicy
	}{
		{"reg.test:5000/private/web:v1", alice, corev1.PullAlways},
		{"reg.test:5000/private/web:v1", &protocol.RegistryAuth{ServerAddress: "reg.test:5000", Username: "bob", Password: "x"}, corev1.PullAlways},
		{"reg.test:5000/private/web:v1", nil, corev1.PullAlways},
		{"reg.test:5000/private/web:v1", &protocol.RegistryAuth{ServerAddress: "reg.test:5000"}, corev1.PullAlways},
		{"docker.io/library/busybox:latest", nil, corev1.PullAlways},
		{"busybox:latest", nil, corev1.PullAlways},
		{"reg.test:5000/private/web:v2", nil, corev1.PullIfNotPresent},
		{"reg.test:5000/public/web:v1", nil, corev1.PullIfNotPresent},
		{"nullops-test/demo-web:kube", nil, corev1.PullIfNotPresent},
		{"not a reference", nil, corev1.PullIfNotPresent},
	} {
		if got := r.pullPolicy(c.image, c.auth); got != c.want {
			t.Errorf("pullPolicy(%q, %v) = %s, want %s", c.image, c.auth != nil, got, c.want)
		}
	}
}
