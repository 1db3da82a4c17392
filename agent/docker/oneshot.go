package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/nullops/nullops/agent/runtime"
)

// OneShotSpec describes a run-to-completion container (a plugin step);
// Network "" is Docker's default bridge.
type OneShotSpec = runtime.OneShotSpec

// OneShotResult is how a one-shot container ended.
type OneShotResult = runtime.OneShotResult

// RunOneShot creates the container, feeds Input on stdin, streams stdout and
// stderr to the writers, waits for it to exit (killing it after Timeout or
// when ctx ends) and always removes it.
func (r *Runtime) RunOneShot(ctx context.Context, s OneShotSpec) (res OneShotResult, err error) {
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := fmt.Sprintf("nullops-%s-d%d-%s-a%d-%s", nameSafe(r.node), s.DeploymentID, nameSafe(s.Step), s.Attempt, hex.EncodeToString(rnd[:]))
	// Plugins run locked down: no capabilities, no privilege gain, a
	// read-only root filesystem with a small writable /tmp, bounded
	// processes.
	var binds []string
	if s.DockerSocket != "" {
		binds = []string{s.DockerSocket + ":/var/run/docker.sock"}
	}
	hc := &container.HostConfig{
		Resources: limits(s.Resources, PluginPidsLimit), Binds: binds, LogConfig: container.LogConfig{Type: "none"},
		CapDrop: []string{"ALL"}, SecurityOpt: noNewPrivileges, ReadonlyRootfs: true,
		Tmpfs: map[string]string{"/tmp": "rw,nosuid,nodev,size=64m"},
	}
	var nc *network.NetworkingConfig
	if s.Network != "" {
		hc.NetworkMode = container.NetworkMode(s.Network)
		nc = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{s.Network: {}}}
	}
	cctx, cancelCreate := createCtx(ctx)
	defer cancelCreate()
	created, err := r.cli.ContainerCreate(cctx, client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{
			Image:        s.Image,
			OpenStdin:    true,
			StdinOnce:    true,
			AttachStdin:  true,
			AttachStdout: true,
			AttachStderr: true,
			Labels:       r.labels(s.DeploymentID, LabelStep, s.Step),
		},
		HostConfig:       hc,
		NetworkingConfig: nc,
	})
	if err != nil {
		return res, fmt.Errorf("create container: %w", err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if rerr := r.removeContainer(rctx, created.ID); rerr != nil && err == nil {
			err = rerr
		}
	}()
	att, err := r.cli.ContainerAttach(ctx, created.ID, client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		return res, fmt.Errorf("attach: %w", err)
	}
	defer att.Close()
	if _, err := r.cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		return res, fmt.Errorf("start container: %w", err)
	}
	go func() {
		_, _ = att.Conn.Write(s.Input)
		_ = att.CloseWrite()
	}()
	stdout, stderr := s.Stdout, s.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	copied := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(stdout, stderr, att.Reader)
		copied <- err
	}()
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	kill := func() {
		kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_, _ = r.cli.ContainerKill(kctx, created.ID, client.ContainerKillOptions{Signal: "KILL"})
	}
	select {
	case <-copied:
	case <-timer.C:
		res.TimedOut = true
		kill()
		waitOrClose(copied, att.Close)
		return res, nil
	case <-ctx.Done():
		kill()
		waitOrClose(copied, att.Close)
		return res, ctx.Err()
	}
	// The stream ended: the process exited. Read the exit code.
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	w := r.cli.ContainerWait(wctx, created.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case st := <-w.Result:
		res.ExitCode = int(st.StatusCode)
	case err := <-w.Error:
		return res, fmt.Errorf("wait container: %w", err)
	}
	if ins, err := r.cli.ContainerInspect(wctx, created.ID, client.ContainerInspectOptions{}); err == nil && ins.Container.State != nil {
		res.OOMKilled = ins.Container.State.OOMKilled
	}
	return res, nil
}

func waitOrClose(done <-chan error, closeFn func()) {
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		closeFn()
		<-done
	}
}
