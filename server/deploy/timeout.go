package deploy

import (
	"context"
	"errors"
	"fmt"

	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/store"
)

// FailOverdue gives up on deployments deploying for longer than their
// project's deploy timeout: their agent stops the pipeline, rolls it back
// and reports them failed with the reason. A deployment whose agent has no
// pipeline for it (it answers, but knows nothing to stop) is failed here.
// Deployments of nodes that are not connected are left for a later round
// (they are offline, not deploying, once the node is seen gone). It
// returns how many it gave up on.
func (s *Service) FailOverdue(ctx context.Context) (int, error) {
	overdue, err := s.Store.OverdueDeployments(ctx, s.now())
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, o := range overdue {
		reason := fmt.Sprintf("deploying for more than %s (the project's deploy timeout); stopped and rolled back", o.Timeout)
		if o.NodeID == nil {
			if err := s.failHere(ctx, o.ID, reason); err != nil {
				errs = append(errs, err)
			} else {
				n++
			}
			continue
		}
		if !s.connected(*o.NodeID) {
			continue
		}
		err := s.request(ctx, *o.NodeID, func(ctx context.Context, r protocol.Requester) error {
			_, err := protocol.CallCancel.Do(ctx, r, protocol.DeleteRequest{DeploymentID: o.ID, FailReason: reason})
			return err
		})
		switch {
		case err == nil:
			n++
			s.Log.Warn().Int64("deployment_id", o.ID).Dur("timeout", o.Timeout).Msg("deployment over its deploy timeout: failing it")
		case isRemote(err):
			if err := s.failHere(ctx, o.ID, reason); err != nil {
				errs = append(errs, err)
			} else {
				n++
			}
		default:
			errs = append(errs, fmt.Errorf("fail overdue deployment %d: %w", o.ID, err))
		}
	}
	return n, errors.Join(errs...)
}

// failHere marks a deploying deployment failed with reason (nothing runs
// for it on a node).
func (s *Service) failHere(ctx context.Context, id int64, reason string) error {
	return s.failFrom(ctx, id, reason, store.DeploymentDeploying)
}
