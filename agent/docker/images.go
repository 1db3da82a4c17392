package docker

import (
	"context"
	"errors"
	"fmt"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/authconfig"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"

	"github.com/nullops/nullops/agent/runtime"
	"github.com/nullops/nullops/protocol"
)

// ErrImageNotFound means the registry does not have the image (or the tag).
var ErrImageNotFound = runtime.ErrImageNotFound

// ErrPull means pulling failed for another reason (auth, registry down, …).
var ErrPull = runtime.ErrPull

// HasImage reports whether ref is present locally.
func (r *Runtime) HasImage(ctx context.Context, ref string) (bool, error) {
	if _, err := r.cli.ImageInspect(ctx, ref); err == nil {
		return true, nil
	} else if !cerrdefs.IsNotFound(err) {
		return false, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	return false, nil
}

// EnsureImage makes ref available locally: when it is already present it
// returns at once (pulled=false); otherwise it pulls it with auth (which is
// used in memory only). progress, if set, receives one line per pull status.
//
// EnsureImage does not re-check a cached image with its registry; callers
// that hand images to steps with their own credentials do (CheckAccess).
func (r *Runtime) EnsureImage(ctx context.Context, ref string, auth *protocol.RegistryAuth, progress func(string)) (pulled bool, err error) {
	if _, err := r.cli.ImageInspect(ctx, ref); err == nil {
		return false, nil
	} else if !cerrdefs.IsNotFound(err) {
		return false, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	opts := client.ImagePullOptions{}
	if opts.RegistryAuth, err = encodeAuth(auth); err != nil {
		return false, err
	}
	resp, err := r.cli.ImagePull(ctx, ref, opts)
	if err != nil {
		return false, classifyPull(ref, err)
	}
	defer resp.Close()
	for msg, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return false, classifyPull(ref, err)
		}
		if msg.Error != nil {
			return false, classifyPull(ref, errors.New(msg.Error.Message))
		}
		if progress != nil && msg.Status != "" && msg.Progress == nil {
			line := msg.Status
			if msg.ID != "" {
				line = msg.ID + ": " + line
			}
			progress(line)
		}
	}
	if _, err := r.cli.ImageInspect(ctx, ref); err != nil {
		return false, fmt.Errorf("%w: %s: image absent after pull: %v", ErrPull, ref, err)
	}
	return true, nil
}

// ErrAccessDenied means the registry refused the given credentials (or no
// credentials) for an image that is cached on this node.
var ErrAccessDenied = runtime.ErrAccessDenied

// HasCredentials reports whether auth carries credentials.
func HasCredentials(auth *protocol.RegistryAuth) bool { return runtime.HasCredentials(auth) }

func encodeAuth(auth *protocol.RegistryAuth) (string, error) {
	if !HasCredentials(auth) {
		return "", nil
	}
	enc, err := authconfig.Encode(registry.AuthConfig{
		Username:      auth.Username,
		Password:      auth.Password,
		ServerAddress: auth.ServerAddress,
	})
	if err != nil {
		return "", fmt.Errorf("encode registry auth: %w", err)
	}
	return enc, nil
}

// ImageID is the local id of image ref, "" when it is not on this node.
func (r *Runtime) ImageID(ctx context.Context, ref string) (string, error) {
	ins, err := r.cli.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("inspect image %s: %w", ref, err)
	}
	return ins.ID, nil
}

// CheckAccess asks ref's registry, through the daemon, for ref's manifest
// with auth (nil = anonymously): nil when the registry serves it to these
// credentials, ErrAccessDenied otherwise (also when the registry cannot be
// reached: access is then not confirmed).
func (r *Runtime) CheckAccess(ctx context.Context, ref string, auth *protocol.RegistryAuth) error {
	enc, err := encodeAuth(auth)
	if err != nil {
		return err
	}
	if _, err := r.cli.DistributionInspect(ctx, ref, client.DistributionInspectOptions{EncodedRegistryAuth: enc}); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrAccessDenied, ref, err)
	}
	return nil
}

func classifyPull(ref string, err error) error {
	msg := err.Error()
	low := strings.ToLower(msg)
	if cerrdefs.IsNotFound(err) || strings.Contains(low, "manifest unknown") || strings.Contains(low, "not found") {
		return fmt.Errorf("%w: %s: %s", ErrImageNotFound, ref, msg)
	}
	return fmt.Errorf("%w: %s: %s", ErrPull, ref, msg)
}
