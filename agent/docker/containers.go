package docker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/nullops/nullops/agent/runtime"
	"github.com/nullops/nullops/internal/dockerexec"
	"github.com/nullops/nullops/protocol"
)

// ServiceSpec describes one long-running service container.
type ServiceSpec = runtime.ServiceSpec

// ServiceInfo is the observed state of a service container (ID is the
// container id; Health the image's HEALTHCHECK status).
type ServiceInfo = runtime.ServiceInfo

// Service states as reported to the control plane.
const (
	StateRunning    = runtime.StateRunning
	StateRestarting = runtime.StateRestarting
	StateExited     = runtime.StateExited
	StateOOMKilled  = runtime.StateOOMKilled
)

// LogConfig caps container logs on disk.
var logConfig = container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "3"}}

// Process limits (threads count): a fork bomb in one container cannot
// exhaust the node's process table.
const (
	ServicePidsLimit = 4096
	PluginPidsLimit  = 512
)

// noNewPrivileges keeps setuid binaries and file capabilities from
// raising a container process's privileges.
var noNewPrivileges = []string{"no-new-privileges:true"}

func limits(res protocol.Resources, pids int64) container.Resources {
	r := container.Resources{PidsLimit: &pids}
	if res.CPU > 0 {
		r.NanoCPUs = int64(res.CPU * 1e9)
	}
	if res.MemoryMB > 0 {
		r.Memory = res.MemoryMB << 20
	}
	return r
}

func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// StartService (re)creates and starts the service container: an existing
// container of the same name is removed first, so this is also how a
// missing or broken service is recreated.
func (r *Runtime) StartService(ctx context.Context, s ServiceSpec) (ServiceInfo, error) {
	name := ServiceContainerName(r.node, s.DeploymentID, s.Service)
	if err := r.removeContainer(ctx, name); err != nil {
		return ServiceInfo{}, err
	}
	exposed := network.PortSet{}
	for _, p := range s.Ports {
		exposed[network.MustParsePort(strconv.Itoa(p)+"/tcp")] = struct{}{}
	}
	hc := &container.HostConfig{
		NetworkMode:   container.NetworkMode(s.Network),
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
		Resources:     limits(s.Resources, ServicePidsLimit),
		LogConfig:     logConfig,
		SecurityOpt:   noNewPrivileges,
	}
	if s.PublishPort > 0 {
		p, err := network.ParsePort(strconv.Itoa(s.PublishPort) + "/tcp")
		if err != nil {
			return ServiceInfo{}, fmt.Errorf("publish port %d: %w", s.PublishPort, err)
		}
		exposed[p] = struct{}{}
		hc.PortBindings = network.PortMap{p: {{HostIP: r.publishIP, HostPort: ""}}}
	}
	cctx, cancelCreate := createCtx(ctx)
	defer cancelCreate()
	res, err := r.cli.ContainerCreate(cctx, client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{
			Image:        s.Image,
			Env:          envList(s.Env),
			ExposedPorts: exposed,
			Labels:       r.labels(s.DeploymentID, LabelService, s.Service),
		},
		HostConfig: hc,
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			s.Network: {Aliases: []string{s.Service}},
		}},
	})
	if err != nil {
		return ServiceInfo{}, fmt.Errorf("create container %s: %w", name, err)
	}
	if err := r.startPublished(ctx, res.ID); err != nil {
		return ServiceInfo{}, fmt.Errorf("start container %s: %w", name, err)
	}
	return r.InspectService(ctx, res.ID)
}

// publishTries bounds the starts of a container whose published port
// Docker picked while another process of the host held it.
const publishTries = 10

// startPublished starts a created container. Docker picks a published
// port from the host's ephemeral range and knows only its own
// allocations: a port a program outside Docker listens on, or a client
// socket uses, makes the start fail with "address already in use". The
// next start gets the next port, so that failure is tried again.
func (r *Runtime) startPublished(ctx context.Context, id string) error {
	for try := 1; ; try++ {
		_, err := r.cli.ContainerStart(ctx, id, client.ContainerStartOptions{})
		if err == nil || try == publishTries || !strings.Contains(err.Error(), "address already in use") {
			return err
		}
		r.portRetries.Add(1)
	}
}

// InspectService reads a container's state, address and published port.
func (r *Runtime) InspectService(ctx context.Context, id string) (ServiceInfo, error) {
	ins, err := r.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return ServiceInfo{}, fmt.Errorf("inspect container %s: %w", id, notFound(err))
	}
	c := ins.Container
	info := ServiceInfo{ID: c.ID, Name: trimSlash(c.Name), RestartCount: c.RestartCount}
	if c.Config != nil {
		info.Labels = c.Config.Labels
	}
	if c.State != nil {
		info.Running = c.State.Running
		info.Restarting = c.State.Restarting
		info.Status = string(c.State.Status)
		info.ExitCode = c.State.ExitCode
		info.OOMKilled = c.State.OOMKilled
		if t, err := time.Parse(time.RFC3339Nano, c.State.FinishedAt); err == nil && t.Year() > 1 {
			info.FinishedAt = t
		}
		if c.State.Health != nil {
			info.Health = string(c.State.Health.Status)
		}
	}
	if c.NetworkSettings != nil {
		for _, ep := range c.NetworkSettings.Networks {
			if ep != nil && ep.IPAddress.IsValid() {
				info.IP = ep.IPAddress
				break
			}
		}
		for _, bs := range c.NetworkSettings.Ports {
			for _, b := range bs {
				if p, err := strconv.Atoi(b.HostPort); err == nil && p > 0 {
					info.HostPort = p
					break
				}
			}
		}
	}
	return info, nil
}

// StartWorkload starts an existing (stopped) container.
func (r *Runtime) StartWorkload(ctx context.Context, id string) error {
	if _, err := r.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("start container %s: %w", id, notFound(err))
	}
	return nil
}

// removeContainer force-removes a container (and its anonymous volumes);
// a missing container is not an error.
func (r *Runtime) removeContainer(ctx context.Context, id string) error {
	_, err := r.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	return nil
}

// Exec runs cmd inside a running container and returns its exit code and
// combined output (capped at 64 KiB).
func (r *Runtime) Exec(ctx context.Context, containerID string, cmd []string) (int, string, error) {
	code, out, err := dockerexec.Run(ctx, r.cli, containerID, cmd, 64<<10)
	return code, out, notFound(err)
}

// notFound marks a daemon's "no such object" error as runtime.ErrNotFound
// (keeping the daemon's error in the chain); other errors pass unchanged.
func notFound(err error) error {
	if err != nil && cerrdefs.IsNotFound(err) && !errors.Is(err, runtime.ErrNotFound) {
		return fmt.Errorf("%w: %w", runtime.ErrNotFound, err)
	}
	return err
}

func trimSlash(s string) string {
	if len(s) > 0 && s[0] == '/' {
		return s[1:]
	}
	return s
}
