package kube

import (
	"context"
	"fmt"

	"github.com/distribution/reference"

	"github.com/nullops/nullops/agent/runtime"
	"github.com/nullops/nullops/protocol"
)

// Images on Kubernetes: the kubelet pulls each workload's image with the
// workload's credentials (an imagePullSecret, with imagePullPolicy Always
// when there are credentials, so a registry confirms them at every start),
// and this agent has no image cache of its own to keep or check.

// ImageID is "" (no local cache the agent could hand out).
func (r *Runtime) ImageID(context.Context, string) (string, error) { return "", nil }

// HasImage is true: starting a workload never waits for an agent-side pull.
func (r *Runtime) HasImage(context.Context, string) (bool, error) { return true, nil }

// EnsureImage only checks the reference (pulled=false): the kubelet pulls.
func (r *Runtime) EnsureImage(_ context.Context, ref string, _ *protocol.RegistryAuth, _ func(string)) (bool, error) {
	if _, err := reference.ParseNormalizedNamed(ref); err != nil {
		return false, fmt.Errorf("%w: %s: %v", runtime.ErrImageNotFound, ref, err)
	}
	return false, nil
}

// CheckAccess is nil: credentials are checked by the registry at every
// pull of a workload that has them (imagePullPolicy Always).
func (r *Runtime) CheckAccess(context.Context, string, *protocol.RegistryAuth) error { return nil }
