package kube

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/util/exec"
)

// stream opens a pod's attach or exec subresource: WebSocket first (the
// API server's default since 1.31), SPDY when the server or a proxy in
// between does not upgrade to it.
func (r *Runtime) stream(ctx context.Context, ns, pod, sub string, params runtime.Object, opts remotecommand.StreamOptions) error {
	u := r.cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource(sub).
		VersionedParams(params, scheme.ParameterCodec).URL()
	ws, err := remotecommand.NewWebSocketExecutor(r.rest, "GET", u.String())
	if err != nil {
		return fmt.Errorf("%s %s/%s: %w", sub, ns, pod, err)
	}
	spdy, err := remotecommand.NewSPDYExecutor(r.rest, "POST", u)
	if err != nil {
		return fmt.Errorf("%s %s/%s: %w", sub, ns, pod, err)
	}
	ex, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return fmt.Errorf("%s %s/%s: %w", sub, ns, pod, err)
	}
	return ex.StreamWithContext(ctx, opts)
}

// Exec runs cmd in a service's pod and returns its exit code and combined
// output (capped at 64 KiB).
func (r *Runtime) Exec(ctx context.Context, id string, cmd []string) (int, string, error) {
	info, err := r.inspect(ctx, id)
	if err != nil {
		return 0, "", err
	}
	if info.pod == "" {
		return 0, "", fmt.Errorf("exec in %s: no pod", id)
	}
	ns, _, _ := splitID(id)
	out := &capped{max: 64 << 10}
	err = r.stream(ctx, ns, info.pod, "exec", &corev1.PodExecOptions{
		Container: containerName, Command: cmd, Stdout: true, Stderr: true,
	}, remotecommand.StreamOptions{Stdout: out, Stderr: out})
	var code exec.CodeExitError
	if errors.As(err, &code) {
		return code.Code, out.String(), nil
	}
	if err != nil {
		return 0, out.String(), fmt.Errorf("exec in %s: %w", id, err)
	}
	return 0, out.String(), nil
}

// capped keeps the first max bytes written to it; stdout and stderr are
// copied into it from two goroutines.
type capped struct {
	mu sync.Mutex
	bytes.Buffer
	max int
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Buffer.String()
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - c.Len(); room > 0 {
		if len(p) > room {
			c.Buffer.Write(p[:room])
		} else {
			c.Buffer.Write(p)
		}
	}
	return len(p), nil
}

var _ io.Writer = (*capped)(nil)
