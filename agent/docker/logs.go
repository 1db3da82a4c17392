package docker

import (
	"context"
	"fmt"
	"strconv"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// streamWriter forwards each write as one chunk of stream.
type streamWriter struct {
	stream string
	fn     func(stream, data string) error
}

func (w streamWriter) Write(p []byte) (int, error) {
	if err := w.fn(w.stream, string(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Logs streams a container's logs to fn (tail = lines from the end, 0 =
// all; follow keeps streaming until ctx ends or the container stops;
// timestamps starts each line with Docker's RFC 3339 receive time).
func (r *Runtime) Logs(ctx context.Context, containerID string, tail int, follow, timestamps bool, fn func(stream, data string) error) error {
	t := "all"
	if tail > 0 {
		t = strconv.Itoa(tail)
	}
	rc, err := r.cli.ContainerLogs(ctx, containerID, client.ContainerLogsOptions{
		ShowStdout: true, ShowStderr: true, Follow: follow, Tail: t, Timestamps: timestamps,
	})
	if err != nil {
		return fmt.Errorf("container logs %s: %w", containerID, notFound(err))
	}
	defer rc.Close()
	_, err = stdcopy.StdCopy(streamWriter{"stdout", fn}, streamWriter{"stderr", fn}, rc)
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("read logs %s: %w", containerID, err)
	}
	return nil
}
