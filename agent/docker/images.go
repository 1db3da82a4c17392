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

	"github.com/nullops/nullops/agent/protocol"
)

// ErrImageNotFound means the registry does not have the image (or the tag).
var ErrImageNotFound = errors.New("image not found")

// ErrPull means pulling failed for another reason (auth, registry down, …).
var ErrPull = errors.New("pull failed")

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
func (r *Runtime) EnsureImage(ctx context.Context, ref string, auth *protocol.RegistryAuth, progress func(string)) (pulled bool, err error) {
	if _, err := r.cli.ImageInspect(ctx, ref); err == nil {
		return false, nil
	} else if !cerrdefs.IsNotFound(err) {
		return false, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	opts := client.ImagePullOptions{}
	if auth != nil && (auth.Username != "" || auth.Password != "") {
		enc, err := authconfig.Encode(registry.AuthConfig{
			Username:      auth.Username,
			Password:      auth.Password,
			ServerAddress: auth.ServerAddress,
		})
		if err != nil {
			return false, fmt.Errorf("encode registry auth: %w", err)
		}
		opts.RegistryAuth = enc
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

func classifyPull(ref string, err error) error {
	msg := err.Error()
	low := strings.ToLower(msg)
	if cerrdefs.IsNotFound(err) || strings.Contains(low, "manifest unknown") || strings.Contains(low, "not found") {
		return fmt.Errorf("%w: %s: %s", ErrImageNotFound, ref, msg)
	}
	return fmt.Errorf("%w: %s: %s", ErrPull, ref, msg)
}
