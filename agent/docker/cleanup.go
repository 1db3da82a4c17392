package docker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/nullops/nullops/agent/runtime"
)

// Object kinds: a container is the runtime's workload.
const (
	KindContainer = runtime.KindWorkload
	KindNetwork   = runtime.KindNetwork
	KindVolume    = runtime.KindVolume
)

// Object is one Docker object managed by this node (State is Docker's:
// created, running, restarting, exited, …).
type Object = runtime.Object

// ListManaged lists this node's containers, networks and volumes; with
// deploymentID > 0 only those of that deployment.
func (r *Runtime) ListManaged(ctx context.Context, deploymentID int64) ([]Object, error) {
	return r.list(ctx, r.filters(deploymentID), nil)
}

// Predecessors lists the objects labelled with node uid that another agent
// instance made (their nullops.node label is not this runtime's): what an
// agent of the same node left behind on this daemon when its data dir was
// lost. This runtime's own objects are not included.
func (r *Runtime) Predecessors(ctx context.Context, uid string) ([]Object, error) {
	f := client.Filters{}
	f.Add("label", LabelManaged+"=true", LabelNodeUID+"="+uid)
	return r.list(ctx, f, func(l map[string]string) bool { return l[LabelNode] != r.node })
}

// ListAll lists every object on the daemon labelled nullops.managed=true,
// whichever agent or node made it; with uid != "" only those of that node
// (LabelNodeUID).
func (r *Runtime) ListAll(ctx context.Context, uid string) ([]Object, error) {
	f := client.Filters{}
	f.Add("label", LabelManaged+"=true")
	if uid != "" {
		f.Add("label", LabelNodeUID+"="+uid)
	}
	return r.list(ctx, f, nil)
}

// Uninstall removes what ListAll(uid) lists — every container (running
// or not), network and volume NullOps created on this daemon — repeating
// until none is left, and returns the names it removed. Images are left:
// they are not labelled and may be shared with anything else on the host.
func (r *Runtime) Uninstall(ctx context.Context, uid string) ([]string, error) {
	return r.removeUntilGone(ctx, "uninstall", func() ([]Object, error) { return r.ListAll(ctx, uid) })
}

// list lists the containers, networks and volumes matching f and, when keep
// is not nil, whose labels it accepts.
func (r *Runtime) list(ctx context.Context, f client.Filters, keep func(map[string]string) bool) ([]Object, error) {
	if keep == nil {
		keep = func(map[string]string) bool { return true }
	}
	var out []Object
	cs, err := r.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	for _, c := range cs.Items {
		if !keep(c.Labels) {
			continue
		}
		name := ""
		if len(c.Names) > 0 {
			name = trimSlash(c.Names[0])
		}
		out = append(out, Object{
			Kind: KindContainer, ID: c.ID, Name: name,
			DeploymentID: labelID(c.Labels), Service: c.Labels[LabelService], Step: c.Labels[LabelStep],
			Running: c.State == "running", Restarting: c.State == "restarting", State: string(c.State),
		})
	}
	ns, err := r.cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	for _, n := range ns.Items {
		if !keep(n.Labels) {
			continue
		}
		out = append(out, Object{Kind: KindNetwork, ID: n.ID, Name: n.Name, DeploymentID: labelID(n.Labels)})
	}
	vs, err := r.cli.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	for _, v := range vs.Items {
		if !keep(v.Labels) {
			continue
		}
		out = append(out, Object{Kind: KindVolume, ID: v.Name, Name: v.Name, DeploymentID: labelID(v.Labels)})
	}
	return out, nil
}

func labelID(l map[string]string) int64 {
	id, _ := strconv.ParseInt(l[LabelDeployment], 10, 64)
	return id
}

// Remove deletes objs: containers first (forced, with anonymous volumes),
// then networks and volumes. It returns the names it removed and the
// errors it met (it keeps going past failures).
func (r *Runtime) Remove(ctx context.Context, objs []Object) ([]string, error) {
	var removed []string
	var errs []error
	for _, kind := range []string{KindContainer, KindNetwork, KindVolume} {
		for _, o := range objs {
			if o.Kind != kind {
				continue
			}
			var err error
			switch kind {
			case KindContainer:
				err = r.removeContainer(ctx, o.ID)
			case KindNetwork:
				err = r.removeNetwork(ctx, o.ID)
			case KindVolume:
				_, err = r.cli.VolumeRemove(ctx, o.ID, client.VolumeRemoveOptions{Force: true})
				if cerrdefs.IsNotFound(err) {
					err = nil
				}
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("remove %s %s: %w", kindWord(kind), o.Name, err))
				continue
			}
			removed = append(removed, o.Name)
		}
	}
	return removed, errors.Join(errs...)
}

func (r *Runtime) removeNetwork(ctx context.Context, id string) error {
	r.leaveNetwork(ctx, id)
	var err error
	// A container that was just force-removed can keep its endpoint for a
	// moment; retry briefly.
	for i := 0; i < 20; i++ {
		_, err = r.cli.NetworkRemove(ctx, id, client.NetworkRemoveOptions{})
		if err == nil || cerrdefs.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return err
}

// RemoveDeployment removes every container, network and volume of the
// deployment on this node, repeating until none is left (a container being
// created concurrently is caught by the second pass).
func (r *Runtime) RemoveDeployment(ctx context.Context, deploymentID int64) ([]string, error) {
	if deploymentID <= 0 {
		return nil, fmt.Errorf("remove deployment: invalid id %d", deploymentID)
	}
	return r.removeUntilGone(ctx, fmt.Sprintf("remove deployment %d", deploymentID),
		func() ([]Object, error) { return r.ListManaged(ctx, deploymentID) })
}

// removeUntilGone removes what list returns, repeating until it returns
// nothing (an object created concurrently is caught by a later pass), and
// returns the names it removed.
func (r *Runtime) removeUntilGone(ctx context.Context, what string, list func() ([]Object, error)) ([]string, error) {
	var all []string
	for pass := 0; pass < 5; pass++ {
		objs, err := list()
		if err != nil {
			return all, err
		}
		if len(objs) == 0 {
			return all, nil
		}
		removed, err := r.Remove(ctx, objs)
		all = append(all, removed...)
		if err != nil && pass == 4 {
			return all, err
		}
	}
	objs, err := list()
	if err != nil {
		return all, err
	}
	if len(objs) > 0 {
		return all, fmt.Errorf("%s: %d objects remain", what, len(objs))
	}
	return all, nil
}

// kindWord is the Docker word for an object kind.
func kindWord(kind string) string {
	if kind == KindContainer {
		return "container"
	}
	return kind
}
