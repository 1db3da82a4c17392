package kube

import (
	"context"
	"fmt"

	"github.com/distribution/reference"
	corev1 "k8s.io/api/core/v1"

	"github.com/nullops/nullops/agent/runtime"
	"github.com/nullops/nullops/protocol"
)

// Images on Kubernetes: the kubelet pulls each workload's image with the
// workload's credentials (an imagePullSecret, with imagePullPolicy Always
// when there are credentials, so a registry confirms them at every start),
// and this agent has no image cache of its own to keep or check. An image
// this agent started with credentials is also pulled with Always by a
// workload without any (pullPolicy), so the node's cached copy of a private
// image does not reach it unless its registry serves it anonymously. That
// record lives in memory: images pulled before the agent (re)started, or by
// other workloads of the cluster, are left to the kubelet (docs/security.md).

// ImageID is "" (no local cache the agent could hand out).
func (r *Runtime) ImageID(context.Context, string) (string, error) { return "", nil }

// HasImage is true: starting a workload never waits for an agent-side pull.
func (r *Runtime) HasImage(context.Context, string) (bool, error) { return true, nil }

// EnsureImage only checks the reference (pulled=false): the kubelet pulls.
// A reference with credentials is recorded as private (pullPolicy).
func (r *Runtime) EnsureImage(_ context.Context, ref string, auth *protocol.RegistryAuth, _ func(string)) (bool, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return false, fmt.Errorf("%w: %s: %v", runtime.ErrImageNotFound, ref, err)
	}
	if hasCredentials(auth) {
		r.privMu.Lock()
		if r.private == nil {
			r.private = map[string]bool{}
		}
		r.private[reference.TagNameOnly(named).String()] = true
		r.privMu.Unlock()
	}
	return false, nil
}

// pullPolicy is Always for a workload with credentials (its registry
// confirms them at every start) and for one without credentials whose
// image this agent started with credentials before (the anonymous pull
// then has to succeed); IfNotPresent otherwise, so images that are only on
// the node (imported, built there) still start.
func (r *Runtime) pullPolicy(image string, auth *protocol.RegistryAuth) corev1.PullPolicy {
	if hasCredentials(auth) {
		return corev1.PullAlways
	}
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return corev1.PullIfNotPresent
	}
	r.privMu.Lock()
	defer r.privMu.Unlock()
	if r.private[reference.TagNameOnly(named).String()] {
		return corev1.PullAlways
	}
	return corev1.PullIfNotPresent
}

// CheckAccess is nil: credentials are checked by the registry at every
// pull of a workload that has them or whose image was private
// (pullPolicy).
func (r *Runtime) CheckAccess(context.Context, string, *protocol.RegistryAuth) error { return nil }
