package deploy

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/catalog"
	"github.com/nullops/nullops/server/store"
)

// desiredStatuses are the deployments a node should run.
var desiredStatuses = []string{store.DeploymentPending, store.DeploymentDeploying, store.DeploymentRunning, store.DeploymentOffline}

// DesiredState is the node's full desired state for `sync`: every
// deployment placed on it that is not failed, deleting or deleted, with its
// recorded definition completed (secrets included). A deployment that can no
// longer be completed (e.g. a secret it uses was removed) is marked failed
// with the reason and left out.
func (s *Service) DesiredState(ctx context.Context, nodeID int64) ([]protocol.DeploySpec, error) {
	deps, err := s.Store.NodeDeployments(ctx, nodeID, desiredStatuses...)
	if err != nil {
		return nil, err
	}
	specs := make([]protocol.DeploySpec, 0, len(deps))
	for _, d := range deps {
		spec, err := s.specOf(ctx, d)
		if err != nil {
			s.Log.Error().Err(err).Int64("deployment_id", d.ID).Msg("deployment cannot be resolved; marked failed")
			if ferr := s.fail(ctx, d.ID, "cannot be resolved: "+err.Error()); ferr != nil {
				return nil, ferr
			}
			continue
		}
		specs = append(specs, spec)
	}
	ids := make([]int64, len(specs))
	for i, sp := range specs {
		ids[i] = sp.DeploymentID
	}
	s.markSynced(ids)
	return specs, nil
}

// specOf is the spec of an existing deployment: its recorded definition
// completed with current credentials and secret values, so catalog changes
// after its creation do not reach it. Deployments created before
// definitions were recorded are resolved from their own pipeline version
// and tags, and that definition is recorded.
func (s *Service) specOf(ctx context.Context, d store.Deployment) (protocol.DeploySpec, error) {
	raw, err := store.DeploymentDefinition(ctx, s.Store, d.ID)
	if err != nil {
		return protocol.DeploySpec{}, err
	}
	var def catalog.Definition
	if raw != nil {
		if err := json.Unmarshal(raw, &def); err != nil {
			return protocol.DeploySpec{}, fmt.Errorf("deployment %d: stored definition: %w", d.ID, err)
		}
	} else {
		// Created before definitions were recorded: resolve its own version
		// and tags once more, and keep the result from now on.
		if def, err = s.Resolver.Define(ctx, d.ProjectID, d.PipelineVersionID, d.Tags); err != nil {
			return protocol.DeploySpec{}, fmt.Errorf("resolve deployment %d: %w", d.ID, err)
		}
		def.Spec.Resources = protocol.Resources{CPU: d.CPU, MemoryMB: d.MemoryMB}
		if err := s.backfillDefinition(ctx, d.ID, def); err != nil {
			return protocol.DeploySpec{}, err
		}
	}
	spec, err := s.Resolver.Complete(ctx, d.ProjectID, def)
	if err != nil {
		return spec, fmt.Errorf("complete deployment %d: %w", d.ID, err)
	}
	spec.DeploymentID, spec.Name, spec.Project, spec.Environment, spec.PipelineVersion =
		d.ID, d.Name, d.ProjectName, d.EnvironmentName, d.PipelineVersion
	spec.Resources = protocol.Resources{CPU: d.CPU, MemoryMB: d.MemoryMB}
	return spec, nil
}

// NodeOffline runs when a node's agent stopped answering. Its running and
// deploying deployments stay as they are (and routed) for OfflineGrace: a
// short agent restart or network blip is no outage. Their viewers are told
// the node is unreachable; the delivery loop marks them offline once the
// grace has passed without the node coming back.
func (s *Service) NodeOffline(ctx context.Context, nodeID int64, why string) error {
	defer s.wake()
	if s.OfflineGrace <= 0 {
		_, err := s.offlineUnreachable(ctx)
		return err
	}
	deps, err := s.Store.NodeDeployments(ctx, nodeID, store.DeploymentRunning, store.DeploymentDeploying)
	if err != nil {
		return err
	}
	ids := make([]int64, len(deps))
	for i, d := range deps {
		ids[i] = d.ID
	}
	s.Log.Warn().Int64("node_id", nodeID).Str("reason", why).Int("deployments", len(ids)).Dur("grace", s.OfflineGrace).
		Msg("node unreachable; its deployments stay routed during the grace")
	return s.tx(ctx, func(tx *store.Store) error { return s.publishStatuses(ctx, tx, ids) })
}

// NodeSynced runs after a node (re)connected and accepted its desired
// state: deletes that waited for the node are finished (the agent removed
// everything not in the desired state) and its offline deployments are
// running again (or still deploying, when their pipeline had not finished).
func (s *Service) NodeSynced(ctx context.Context, nodeID int64) error {
	return s.tx(ctx, func(tx *store.Store) error {
		pending, err := store.DeletePendingOnNode(ctx, tx, nodeID)
		if err != nil {
			return err
		}
		for _, id := range pending {
			ok, err := store.SetDeploymentStatus(ctx, tx, id, []string{store.DeploymentDeleting}, store.DeploymentDeleted, "", "")
			if err != nil {
				return err
			}
			if ok {
				if err := store.AddDeploymentHistory(ctx, tx, id, nil, System.Name, "removed", map[string]any{"on_reconnect": true}); err != nil {
					return err
				}
			}
		}
		restored, err := store.RestoreNodeDeployments(ctx, tx, nodeID)
		if err != nil {
			return err
		}
		return s.publishStatuses(ctx, tx, append(pending, restored...))
	})
}

func (s *Service) publishStatuses(ctx context.Context, tx *store.Store, ids []int64) error {
	for _, id := range ids {
		d, err := store.LockDeployment(ctx, tx, id)
		if err != nil {
			return err
		}
		ev := eventFor(d, EventStatus)
		ev.Status, ev.Reason, ev.DeletePending = d.Status, d.StatusReason, d.DeletePending
		if err := publish(ctx, tx, ev); err != nil {
			return err
		}
	}
	return nil
}
