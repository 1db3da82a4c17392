package executor

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/nullops/nullops/agent/runtime"
	"github.com/nullops/nullops/agent/state"
	"github.com/nullops/nullops/protocol"
)

// Sync reconciles this node with the control plane's desired state:
//   - Docker objects of this node whose deployment is not desired (orphans)
//     are removed, and local deployments that are not desired are deleted;
//   - desired deployments unknown here are deployed;
//   - services of running deployments that are missing or stopped are
//     started again (recreated from the spec the sync carries, with the
//     outputs recorded when the pipeline ran);
//
// and it reports the actual state of every desired deployment. Objects of
// other nodes are never looked at; objects of this node (by the node uid the
// sync carries) made by another agent instance — one whose data dir was
// lost — are removed first, so their desired deployments are re-created
// once rather than run twice.
func (e *Executor) Sync(ctx context.Context, req protocol.SyncRequest) (protocol.SyncReply, error) {
	var reply protocol.SyncReply
	if req.NodeUID != "" {
		// What a previous agent of this node left on this daemon (its data
		// dir, hence its instance label, is gone): remove all of it; the
		// desired deployments among it are unknown here and are deployed
		// again below, exactly once.
		e.rt.SetNodeUID(req.NodeUID)
		prev, err := e.rt.Predecessors(ctx, req.NodeUID)
		if err != nil {
			return reply, fmt.Errorf("sync: %w", err)
		}
		if len(prev) > 0 {
			removed, err := e.rt.Remove(ctx, prev)
			reply.RemovedOrphans = append(reply.RemovedOrphans, removed...)
			if err != nil {
				return reply, fmt.Errorf("sync: remove a previous agent's objects: %w", err)
			}
			e.log.Info().Strs("removed", removed).Msg("sync: removed the objects a previous agent of this node left")
		}
	}
	desired := map[int64]protocol.DeploySpec{}
	for _, d := range req.Deployments {
		desired[d.DeploymentID] = d
		e.mon.setSecrets(d.DeploymentID, d.Secrets)
	}

	// Local deployments that should not exist: stop and delete them.
	local, err := e.st.List()
	if err != nil {
		return reply, fmt.Errorf("sync: %w", err)
	}
	known := map[int64]*state.Deployment{}
	for _, d := range local {
		if _, ok := desired[d.ID]; !ok {
			if d.Status == state.StatusFailed {
				// Already rolled back and reported; just forget it.
				if _, err := e.rt.RemoveDeployment(ctx, d.ID); err == nil {
					_ = e.st.Delete(d.ID)
				}
				continue
			}
			e.log.Info().Int64("deployment", d.ID).Str("status", d.Status).Msg("sync: deployment not desired; deleting")
			e.deleteDeployment(d.ID)
			continue
		}
		known[d.ID] = d
	}

	// Orphans: this node's objects whose deployment is not desired.
	objs, err := e.rt.ListManaged(ctx, 0)
	if err != nil {
		return reply, fmt.Errorf("sync: %w", err)
	}
	var orphans []runtime.Object
	for _, o := range objs {
		if _, ok := desired[o.DeploymentID]; !ok && o.DeploymentID > 0 {
			orphans = append(orphans, o)
		}
	}
	if len(orphans) > 0 {
		removed, err := e.rt.Remove(ctx, orphans)
		reply.RemovedOrphans = removed
		if err != nil {
			e.log.Error().Err(err).Msg("sync: remove orphans")
		}
		e.log.Info().Strs("removed", removed).Msg("sync: orphans removed")
	}

	ids := make([]int64, 0, len(desired))
	for id := range desired {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		spec := desired[id]
		d := known[id]
		e.mu.Lock()
		_, busy := e.runs[id]
		e.mu.Unlock()
		switch {
		case busy:
			reply.Deployments = append(reply.Deployments, protocol.DeploymentState{DeploymentID: id, Status: protocol.StatusDeploying})
		case d == nil:
			// Desired but unknown here (e.g. the data dir was lost, or a new
			// agent pod with an empty one): build it. What this node still
			// has of it (a pipeline cut short by the agent's death, plugin
			// workloads that outlived it) is removed first, so it is built
			// from zero once, never beside a half-made copy.
			if err := e.st.Undelete(id); err != nil {
				e.log.Error().Err(err).Int64("deployment", id).Msg("sync: forget a delete")
			}
			if err := e.deploy(ctx, protocol.DeployRequest{Spec: spec}, hasObjects(objs, id)); err != nil {
				e.log.Error().Err(err).Int64("deployment", id).Msg("sync: deploy")
				reply.Deployments = append(reply.Deployments, protocol.DeploymentState{DeploymentID: id, Status: protocol.StatusFailed})
				continue
			}
			reply.Deployments = append(reply.Deployments, protocol.DeploymentState{DeploymentID: id, Status: protocol.StatusDeploying})
		case d.Status == state.StatusRunning:
			l := e.lockFor(id)
			if !l.TryLock() {
				// A repair of this deployment is under way (see below):
				// it reports through service.state when done.
				reply.Deployments = append(reply.Deployments, protocol.DeploymentState{DeploymentID: id, Status: protocol.StatusRunning})
				continue
			}
			services, needPull, err := e.ensureServices(ctx, spec, d, false)
			l.Unlock()
			if err != nil {
				e.log.Error().Err(err).Int64("deployment", id).Msg("sync: ensure services")
			}
			if needPull {
				// Recreating a service needs an image pull, which may take
				// longer than the control plane waits for this answer (a
				// dropped sync would start the pull over at every redial).
				// It continues in the background, on the executor's
				// lifetime, not the connection's.
				e.go_(func() { e.repairServices(spec, d) })
			}
			reply.Deployments = append(reply.Deployments, protocol.DeploymentState{DeploymentID: id, Status: protocol.StatusRunning, Services: services})
		default:
			reply.Deployments = append(reply.Deployments, protocol.DeploymentState{DeploymentID: id, Status: d.Status})
		}
	}
	return reply, nil
}

// repairServices finishes what sync left for later: recreating services
// whose image must be pulled first.
func (e *Executor) repairServices(spec protocol.DeploySpec, d *state.Deployment) {
	l := e.lockFor(d.ID)
	l.Lock()
	defer l.Unlock()
	ctx, cancel := context.WithTimeout(e.ctx, time.Hour)
	defer cancel()
	cur, err := e.st.Get(d.ID)
	if err != nil || cur.Status != state.StatusRunning {
		return // deleted (or failed) meanwhile
	}
	e.log.Info().Int64("deployment", d.ID).Msg("sync: pulling images to recreate services in the background")
	if _, _, err := e.ensureServices(ctx, spec, cur, true); err != nil && ctx.Err() == nil {
		e.log.Error().Err(err).Int64("deployment", d.ID).Msg("sync: background repair")
	}
}

// ensureServices starts stopped and recreates missing service containers
// of a running deployment and returns their state. The caller holds the
// deployment's lock. Without pull, a missing service whose image is not
// on the node is left for later and needPull is reported.
func (e *Executor) ensureServices(ctx context.Context, spec protocol.DeploySpec, d *state.Deployment, pull bool) (_ []protocol.ServiceState, needPull bool, _ error) {
	objs, err := e.rt.ListManaged(ctx, d.ID)
	if err != nil {
		return nil, false, err
	}
	byService := map[string]runtime.Object{}
	for _, o := range objs {
		if o.Kind == runtime.KindWorkload && o.Service != "" {
			byService[o.Service] = o
		}
	}
	// Outputs as recorded (secret values were stored as placeholders).
	outputs := map[string]map[string]string{}
	sc := scope{secrets: spec.Secrets}
	for id, s := range d.Steps {
		if s.Outputs != nil {
			o, err := sc.expandMap(s.Outputs)
			if err != nil {
				o = s.Outputs
			}
			outputs[id] = o
		}
	}
	var out []protocol.ServiceState
	var firstErr error
	var net runtime.Network
	for _, n := range spec.Graph.Nodes {
		if n.Kind != protocol.KindService {
			continue
		}
		var info runtime.ServiceInfo
		o, ok := byService[n.ID]
		switch {
		case ok && (o.Running || o.Restarting):
			// A restarting workload is the runtime's to bring back; its
			// state is reported as it is.
			info, err = e.rt.InspectService(ctx, o.ID)
		case ok:
			e.log.Info().Int64("deployment", d.ID).Str("service", n.ID).Msg("sync: starting stopped service")
			if err = e.rt.StartWorkload(ctx, o.ID); err == nil {
				info, err = e.rt.InspectService(ctx, o.ID)
			}
		default:
			if !pull {
				var have bool
				if have, err = e.rt.HasImage(ctx, spec.Services[n.ID].Image); err == nil && !have {
					needPull = true
					out = append(out, protocol.ServiceState{DeploymentID: d.ID, Service: n.ID, Running: false, Health: "unknown"})
					continue
				}
				if err != nil {
					break
				}
			}
			e.log.Info().Int64("deployment", d.ID).Str("service", n.ID).Msg("sync: recreating missing service")
			if net.Name == "" {
				if net, err = e.rt.EnsureNetwork(ctx, runtime.NetworkSpec{DeploymentID: d.ID, Resources: spec.Resources}); err != nil {
					break
				}
			}
			if _, err = e.ensureImage(ctx, spec.Services[n.ID].Image, spec.Services[n.ID].Auth, nil); err != nil {
				break
			}
			var ss runtime.ServiceSpec
			ss, err = serviceSpec(spec, n, net.Name, scope{secrets: spec.Secrets, outputs: outputs})
			if err == nil {
				info, err = e.rt.StartService(ctx, ss)
			}
		}
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("service %s: %w", n.ID, err)
			}
			out = append(out, protocol.ServiceState{DeploymentID: d.ID, Service: n.ID, Running: false, Health: "unknown"})
			continue
		}
		st := serviceState(d.ID, n, spec, info)
		if s := d.Steps[n.ID]; s != nil && (s.ContainerID != info.ID || s.HostPort != info.HostPort) {
			s.ContainerID, s.HostPort = info.ID, info.HostPort
			if err := e.st.Put(d); err != nil {
				e.log.Error().Err(err).Int64("deployment", d.ID).Msg("sync: save service")
			}
			e.emit(st)
		}
		out = append(out, st)
	}
	return out, needPull, firstErr
}

// hasObjects reports whether objs holds an object of deployment id.
func hasObjects(objs []runtime.Object, id int64) bool {
	for _, o := range objs {
		if o.DeploymentID == id {
			return true
		}
	}
	return false
}
