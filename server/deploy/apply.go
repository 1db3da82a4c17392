package deploy

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/store"
)

// Appliers of the agents' journaled events. The agent connection manager
// calls each inside the transaction that records the event's seq, so an
// event is applied exactly once. An event that names an unknown deployment,
// a deployment of another node, or that is malformed is logged and skipped
// (returning nil) so it cannot block the node's journal.

// Appliers returns the applier of each journaled event type.
func (s *Service) Appliers() map[string]func(ctx context.Context, tx *store.Store, nodeID int64, e protocol.Envelope) error {
	return map[string]func(ctx context.Context, tx *store.Store, nodeID int64, e protocol.Envelope) error{
		protocol.TypeDeploymentStatus: s.ApplyDeploymentStatus,
		protocol.TypeStepStatus:       s.ApplyStepStatus,
		protocol.TypeStepLog:          s.ApplyStepLog,
		protocol.TypeServiceState:     s.ApplyServiceState,
	}
}

// transitions lists, per status reported by an agent, the statuses it may
// replace (docs/architecture.md, "Deployments"). A deployment being deleted only moves on
// to deleted; a deleted one never changes.
var transitions = map[string][]string{
	protocol.StatusDeploying: {store.DeploymentPending, store.DeploymentDeploying, store.DeploymentOffline, store.DeploymentRunning},
	protocol.StatusRunning:   {store.DeploymentPending, store.DeploymentDeploying, store.DeploymentOffline},
	protocol.StatusFailed:    {store.DeploymentPending, store.DeploymentDeploying, store.DeploymentOffline, store.DeploymentRunning},
	protocol.StatusDeleted: {store.DeploymentPending, store.DeploymentDeploying, store.DeploymentOffline, store.DeploymentRunning,
		store.DeploymentFailed, store.DeploymentDeleting},
}

// lockOwned locks the deployment when it exists and runs on nodeID.
func (s *Service) lockOwned(ctx context.Context, tx *store.Store, nodeID, id int64, typ string) (store.Deployment, bool, error) {
	d, err := store.LockDeployment(ctx, tx, id)
	if errors.Is(err, store.ErrNotFound) {
		s.Log.Warn().Int64("node_id", nodeID).Int64("deployment_id", id).Str("event", typ).Msg("event for an unknown deployment skipped")
		return d, false, nil
	}
	if err != nil {
		return d, false, err
	}
	if d.NodeID == nil || *d.NodeID != nodeID {
		s.Log.Warn().Int64("node_id", nodeID).Int64("deployment_id", id).Str("event", typ).Msg("event for a deployment of another node skipped")
		return d, false, nil
	}
	return d, true, nil
}

// ApplyDeploymentStatus applies deployment.status.
func (s *Service) ApplyDeploymentStatus(ctx context.Context, tx *store.Store, nodeID int64, e protocol.Envelope) error {
	ev, err := protocol.DecodeBody[protocol.DeploymentStatus](e)
	if err != nil {
		s.Log.Warn().Err(err).Int64("node_id", nodeID).Msg("malformed deployment.status skipped")
		return nil
	}
	d, ok, err := s.lockOwned(ctx, tx, nodeID, ev.DeploymentID, e.Type)
	if err != nil || !ok {
		return err
	}
	from := transitions[ev.Status]
	if !slices.Contains(from, d.Status) {
		if d.Status != ev.Status {
			s.Log.Info().Int64("deployment_id", d.ID).Str("status", d.Status).Str("reported", ev.Status).Msg("status report does not apply in the current state")
		}
		if d.Status == store.DeploymentDeleted && (ev.Status == store.DeploymentDeploying || ev.Status == store.DeploymentRunning) {
			s.redeleteStray(nodeID, d.ID)
		}
		return nil
	}
	reason, failedStep := ev.Reason, ev.FailedStep
	if ev.Status != protocol.StatusFailed {
		failedStep = ""
	}
	if _, err := store.SetDeploymentStatus(ctx, tx, d.ID, from, ev.Status, reason, failedStep); err != nil {
		return err
	}
	switch ev.Status {
	case protocol.StatusFailed:
		if err := store.AddDeploymentHistory(ctx, tx, d.ID, nil, System.Name, "failed",
			map[string]any{"step": failedStep, "reason": reason}); err != nil {
			return err
		}
	case protocol.StatusDeleted:
		if err := store.AddDeploymentHistory(ctx, tx, d.ID, nil, System.Name, "removed",
			map[string]any{"node": d.NodeName}); err != nil {
			return err
		}
	}
	out := eventFor(d, EventStatus)
	out.Status, out.Reason, out.FailedStep, out.At = ev.Status, reason, failedStep, ev.At
	return publish(ctx, tx, out)
}

// ApplyStepStatus applies step.status.
func (s *Service) ApplyStepStatus(ctx context.Context, tx *store.Store, nodeID int64, e protocol.Envelope) error {
	ev, err := protocol.DecodeBody[protocol.StepStatus](e)
	if err != nil {
		s.Log.Warn().Err(err).Int64("node_id", nodeID).Msg("malformed step.status skipped")
		return nil
	}
	d, ok, err := s.lockOwned(ctx, tx, nodeID, ev.DeploymentID, e.Type)
	if err != nil || !ok || d.Status == store.DeploymentDeleted {
		return err
	}
	if err := store.ApplyStepStatus(ctx, tx, d.ID, store.StepUpdate{
		Step: ev.Step, Kind: ev.Kind, Status: ev.Status, Attempt: ev.Attempt, Message: ev.Message, Outputs: ev.Outputs, At: ev.At,
	}); err != nil {
		return err
	}
	out := eventFor(d, EventStep)
	out.Status, out.At = d.Status, ev.At
	out.Step = &StepEvent{ID: ev.Step, Status: ev.Status, Attempt: ev.Attempt, Message: ev.Message}
	return publish(ctx, tx, out)
}

// ApplyStepLog applies step.log: the chunk is stored in step_logs.
func (s *Service) ApplyStepLog(ctx context.Context, tx *store.Store, nodeID int64, e protocol.Envelope) error {
	ev, err := protocol.DecodeBody[protocol.StepLog](e)
	if err != nil {
		s.Log.Warn().Err(err).Int64("node_id", nodeID).Msg("malformed step.log skipped")
		return nil
	}
	d, ok, err := s.lockOwned(ctx, tx, nodeID, ev.DeploymentID, e.Type)
	if err != nil || !ok || d.Status == store.DeploymentDeleted {
		return err
	}
	if err := store.AppendStepLog(ctx, tx, d.ID, ev.Step, ev.Attempt, ev.Chunk, ev.At); err != nil {
		return err
	}
	out := eventFor(d, EventLog)
	out.At = ev.At
	out.Step = &StepEvent{ID: ev.Step, Attempt: ev.Attempt, Chunk: ev.Chunk}
	return publish(ctx, tx, out)
}

// ApplyServiceState applies service.state: published port and health.
func (s *Service) ApplyServiceState(ctx context.Context, tx *store.Store, nodeID int64, e protocol.Envelope) error {
	ev, err := protocol.DecodeBody[protocol.ServiceState](e)
	if err != nil {
		s.Log.Warn().Err(err).Int64("node_id", nodeID).Msg("malformed service.state skipped")
		return nil
	}
	d, ok, err := s.lockOwned(ctx, tx, nodeID, ev.DeploymentID, e.Type)
	if err != nil || !ok || d.Status == store.DeploymentDeleted {
		return err
	}
	u := store.ServiceUpdate{
		Service: ev.Service, ContainerPort: ev.ContainerPort, HostPort: ev.HostPort, RouteHost: ev.RouteHost, Running: ev.Running, Health: ev.Health,
		State: ev.State, RestartCount: ev.RestartCount, ExitCode: ev.ExitCode, LastExitOOM: ev.LastExitOOM, LastLines: ev.LastLines,
	}
	if !ev.LastExitAt.IsZero() {
		at := ev.LastExitAt
		u.LastExitAt = &at
	}
	found, err := store.ApplyServiceState(ctx, tx, d.ID, u)
	if err != nil || !found {
		return err
	}
	out := eventFor(d, EventService)
	out.Status = d.Status
	out.Service = &SvcEvent{ID: ev.Service, HostPort: ev.HostPort, Health: ev.Health, Running: ev.Running,
		State: ev.State, RestartCount: ev.RestartCount, ExitCode: ev.ExitCode, LastExitOOM: ev.LastExitOOM}
	return publish(ctx, tx, out)
}

// redeleteStray asks the node again to delete a deployment that is deleted
// but that its agent reports deploying or running: the deploy reached the
// agent after the delete (with several server replicas the deploy may be
// forwarded to the node's owner while the delete is delivered by the owner
// itself; a client deleting at once can make them cross), and nothing else
// would remove it before the node's next sync. Deletes are idempotent on
// the agent; a few attempts, then the next sync.
func (s *Service) redeleteStray(nodeID, id int64) {
	s.redeletes.Add(1)
	s.background(func(ctx context.Context) {
		for attempt := 1; attempt <= 5; attempt++ {
			err := s.request(ctx, nodeID, func(ctx context.Context, r protocol.Requester) error {
				_, err := protocol.CallDelete.Do(ctx, r, protocol.DeleteRequest{DeploymentID: id})
				return err
			})
			if err == nil {
				s.Log.Info().Int64("deployment_id", id).Int64("node_id", nodeID).Msg("stray deployment of a deleted one removed")
				return
			}
			t := time.NewTimer(s.retryInterval())
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		s.Log.Warn().Int64("deployment_id", id).Int64("node_id", nodeID).Msg("stray deployment of a deleted one not removed; the node's next sync does")
	})
}

// Redeletes is how many stray deployments of deleted ones this process
// asked agents to remove (redeleteStray).
func (s *Service) Redeletes() int64 { return s.redeletes.Load() }
