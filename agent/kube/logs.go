package kube

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
)

// Logs streams a service's log (its newest pod's) to fn, one line per
// call: tail = lines from the end (0 = all); follow keeps streaming until
// ctx ends or the container stops; timestamps starts each line with the
// kubelet's RFC 3339 time. Kubernetes keeps one log per container, so
// everything arrives as "stdout".
func (r *Runtime) Logs(ctx context.Context, id string, tail int, follow, timestamps bool, fn func(stream, data string) error) error {
	info, err := r.inspect(ctx, id)
	if err != nil {
		return err
	}
	if info.pod == "" {
		return fmt.Errorf("logs of %s: no pod", id)
	}
	ns, _, _ := splitID(id)
	opts := &corev1.PodLogOptions{Container: containerName, Follow: follow, Timestamps: timestamps}
	if tail > 0 {
		t := int64(tail)
		opts.TailLines = &t
	}
	if info.RestartCount > 0 && !follow {
		// The lines before the last crash are the previous container's
		// (crash reports want them): those first, then the current one's,
		// if it has started.
		prev := *opts
		prev.Previous = true
		if rc, err := r.cs.CoreV1().Pods(ns).GetLogs(info.pod, &prev).Stream(ctx); err == nil {
			err = copyLines(ctx, rc, fn)
			rc.Close()
			if err != nil || ctx.Err() != nil {
				return err
			}
		}
		if !info.Running {
			return nil
		}
	}
	rc, err := r.cs.CoreV1().Pods(ns).GetLogs(info.pod, opts).Stream(ctx)
	if err != nil {
		return fmt.Errorf("logs of %s: %w", id, err)
	}
	defer rc.Close()
	if err := copyLines(ctx, rc, fn); err != nil {
		return fmt.Errorf("read logs of %s: %w", id, err)
	}
	return nil
}

// copyLines hands r to fn line by line (a line longer than 64 KiB in
// pieces); fn's error ends it without error.
func copyLines(ctx context.Context, rc io.Reader, fn func(stream, data string) error) error {
	br := bufio.NewReaderSize(rc, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if ferr := fn("stdout", string(line)); ferr != nil {
				return nil
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == io.EOF || ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// podLogs copies a pod's whole log to w.
func (r *Runtime) podLogs(ctx context.Context, ns, pod string, w io.Writer) error {
	rc, err := r.cs.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: containerName}).Stream(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(w, rc)
	return err
}
