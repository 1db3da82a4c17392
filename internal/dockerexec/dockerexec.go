// Package dockerexec runs a command inside a running container through the
// Docker Engine API and collects its exit code and combined output. The
// agent (health commands) and the exec plugin share it; it knows nothing
// of either.
package dockerexec

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// Run runs cmd in the container and returns its exit code and combined
// stdout and stderr, of which it keeps the first max bytes.
func Run(ctx context.Context, cli *client.Client, containerID string, cmd []string, max int) (int, string, error) {
	ex, err := cli.ExecCreate(ctx, containerID, client.ExecCreateOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return -1, "", fmt.Errorf("exec create in %s: %w", containerID, err)
	}
	att, err := cli.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		return -1, "", fmt.Errorf("exec attach in %s: %w", containerID, err)
	}
	defer att.Close()
	out := capBuffer{max: max}
	done := make(chan error, 1)
	go func() { _, err := stdcopy.StdCopy(&out, &out, att.Reader); done <- err }()
	select {
	case err = <-done:
	case <-ctx.Done():
		att.Close()
		<-done
		return -1, out.String(), ctx.Err()
	}
	if err != nil {
		return -1, out.String(), fmt.Errorf("exec read: %w", err)
	}
	// The output ends before the daemon records the exit code: ask until it
	// has (a bounded number of times).
	for i := 0; ; i++ {
		insp, err := cli.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
		if err != nil {
			return -1, out.String(), fmt.Errorf("exec inspect: %w", err)
		}
		if !insp.Running || i > 50 {
			return insp.ExitCode, out.String(), nil
		}
		select {
		case <-ctx.Done():
			return -1, out.String(), ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// capBuffer keeps at most max bytes (the first ones) and counts the rest.
type capBuffer struct {
	bytes.Buffer
	max     int
	dropped int
}

func (b *capBuffer) Write(p []byte) (int, error) {
	room := b.max - b.Len()
	if room <= 0 {
		b.dropped += len(p)
		return len(p), nil
	}
	if len(p) > room {
		b.dropped += len(p) - room
		b.Buffer.Write(p[:room])
		return len(p), nil
	}
	return b.Buffer.Write(p)
}
