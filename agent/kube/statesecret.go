package kube

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/nullops/nullops/agent/certs"
	"github.com/nullops/nullops/agent/trust"
)

// StateFiles are the data dir files a StateSecret keeps: the agent's
// identity (certificate and key, which the control plane pins) and its
// trust record (the token verifier, which a rotation changes). The event
// journal and the deployment state are not kept: a fresh agent is
// reconciled by the control plane's sync.
var StateFiles = []string{certs.CertFile, certs.KeyFile, trust.FileName}

// serviceAccountNamespace is where a pod finds its own namespace.
const serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// PodNamespace is the namespace of the pod the agent runs in.
func PodNamespace() (string, error) {
	b, err := os.ReadFile(serviceAccountNamespace)
	if err != nil {
		return "", fmt.Errorf("the agent's own namespace is unknown: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// StateSecret keeps StateFiles of a data dir in a Secret, so an agent
// running as a pod without a persistent volume keeps its identity across
// restarts (RBAC: get, create and update of that Secret).
type StateSecret struct {
	cs        kubernetes.Interface
	namespace string
	name      string
	dir       string
}

// NewStateSecret returns the store of Secret namespace/name for data dir
// dir, through the API server of kubeconfig (context kubeContext; "" =
// in-cluster); namespace "" is the agent pod's own namespace.
func NewStateSecret(kubeconfig, kubeContext, namespace, name, dir string) (*StateSecret, error) {
	rc, err := RESTConfig(kubeconfig, kubeContext)
	if err != nil {
		return nil, err
	}
	return NewStateSecretFor(rc, namespace, name, dir)
}

// NewStateSecretFor is NewStateSecret with a client configuration.
func NewStateSecretFor(rc *rest.Config, namespace, name, dir string) (*StateSecret, error) {
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	if namespace == "" {
		if namespace, err = PodNamespace(); err != nil {
			return nil, fmt.Errorf("state secret: set kubernetes.statenamespace outside a pod: %w", err)
		}
	}
	return &StateSecret{cs: cs, namespace: namespace, name: name, dir: dir}, nil
}

// Restore writes the files the Secret holds into the data dir where the
// data dir has none of the certificate and key (a new pod); a data dir
// that has them is left as it is. The trust record is restored with them.
func (s *StateSecret) Restore(ctx context.Context) (restored []string, err error) {
	sec, err := s.cs.CoreV1().Secrets(s.namespace).Get(ctx, s.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state secret %s/%s: %w", s.namespace, s.name, err)
	}
	for _, f := range []string{certs.CertFile, certs.KeyFile} {
		if _, err := os.Stat(filepath.Join(s.dir, f)); !errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
	}
	if len(sec.Data[certs.CertFile]) == 0 || len(sec.Data[certs.KeyFile]) == 0 {
		return nil, nil
	}
	for _, f := range StateFiles {
		b, ok := sec.Data[f]
		if !ok {
			continue
		}
		if err := os.WriteFile(filepath.Join(s.dir, f), b, 0o600); err != nil {
			return restored, fmt.Errorf("restore %s: %w", f, err)
		}
		restored = append(restored, f)
	}
	return restored, nil
}

// Save copies the data dir's StateFiles into the Secret (creating it)
// when they differ from what it holds.
func (s *StateSecret) Save(ctx context.Context) error {
	data := map[string][]byte{}
	for _, f := range StateFiles {
		b, err := os.ReadFile(filepath.Join(s.dir, f))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("state secret: %w", err)
		}
		data[f] = b
	}
	c := s.cs.CoreV1().Secrets(s.namespace)
	cur, err := c.Get(ctx, s.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = c.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: s.namespace, Labels: map[string]string{LabelManaged: "true"}},
			Type:       corev1.SecretTypeOpaque, Data: data,
		}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("state secret %s/%s: %w", s.namespace, s.name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("state secret %s/%s: %w", s.namespace, s.name, err)
	}
	same := len(cur.Data) == len(data)
	for k, v := range data {
		if !bytes.Equal(cur.Data[k], v) {
			same = false
		}
	}
	if same {
		return nil
	}
	cur.Data = data
	if _, err := c.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("state secret %s/%s: %w", s.namespace, s.name, err)
	}
	return nil
}

// Mirror saves every interval until ctx ends (the trust record changes
// when the control plane rotates or revokes the token); errors go to
// report.
func (s *StateSecret) Mirror(ctx context.Context, interval time.Duration, report func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			if err := s.Save(sctx); err != nil && report != nil {
				report(err)
			}
			cancel()
		}
	}
}
