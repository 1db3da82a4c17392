package docker

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// An agent started as a container (the documented `docker run … nullops/agent`)
// sits on Docker's default bridge and cannot reach the deployment networks it
// creates: HTTP health probes to a service's address would time out. So when
// the agent finds its own container on the daemon it manages, it joins every
// deployment network it creates (and leaves it before removing the network).
// An agent running directly on the host reaches bridge addresses already and
// does nothing here.

// containerIDInMountinfo matches the bind mounts Docker gives every container
// (/etc/hostname, /etc/hosts, /etc/resolv.conf) from its containers directory.
var containerIDInMountinfo = regexp.MustCompile(`/containers/([0-9a-f]{64})/(?:hostname|hosts|resolv\.conf)`)

// ownContainerID returns the id of the container this process runs in, or ""
// when it does not run in a Docker container.
func ownContainerID(mountinfo string) string {
	f, err := os.Open(mountinfo)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if m := containerIDInMountinfo.FindStringSubmatch(sc.Text()); m != nil {
			return m[1]
		}
	}
	return ""
}

// selfContainer returns this agent's container id when that container is on
// the managed daemon ("" otherwise); it asks the daemon once.
func (r *Runtime) selfContainer(ctx context.Context) string {
	r.selfMu.Lock()
	defer r.selfMu.Unlock()
	if r.selfChecked {
		return r.self
	}
	id := ownContainerID("/proc/self/mountinfo")
	if id != "" {
		if _, err := r.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{}); err != nil {
			if !cerrdefs.IsNotFound(err) {
				return "" // daemon trouble: decide on the next call
			}
			id = "" // a container of another daemon
		}
	}
	r.self, r.selfChecked = id, true
	return id
}

// joinNetwork connects the agent's own container to a deployment network.
func (r *Runtime) joinNetwork(ctx context.Context, networkID string) error {
	self := r.selfContainer(ctx)
	if self == "" {
		return nil
	}
	cctx, cancelCreate := createCtx(ctx)
	defer cancelCreate()
	_, err := r.cli.NetworkConnect(cctx, networkID, client.NetworkConnectOptions{Container: self})
	if err != nil && !cerrdefs.IsConflict(err) && !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("connect the agent container to network %s: %w", networkID, err)
	}
	return nil
}

// leaveNetwork disconnects the agent's own container so the network can go.
func (r *Runtime) leaveNetwork(ctx context.Context, networkID string) {
	if self := r.selfContainer(ctx); self != "" {
		_, _ = r.cli.NetworkDisconnect(ctx, networkID, client.NetworkDisconnectOptions{Container: self, Force: true})
	}
}
