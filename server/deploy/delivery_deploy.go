package deploy

import (
	"context"
	"errors"
	"time"

	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/store"
)

// Deploy delivery. Creating or retrying a deployment commits it as
// deploying and returns; the replica that holds the node's connection
// hands it to the agent, woken by the deployment's status event on the
// change feed (every replica sees every commit), by its own commit, by the
// node coming online, or by the delivery loop's periodic pass. The replica
// that served the request never sends the deploy itself, so stopping or
// losing that replica right after the commit loses nothing: the deploy is
// the committed row, not a goroutine (docs/high-availability.md).
//
// Each replica remembers what it handed to agents (sentDeploys): a deploy
// is sent once per entry into the deploying status. A node's sync carries
// its whole desired state, so a sync counts as having sent every
// deployment it carried. Deploys are idempotent on the agent: a deploy that
// also arrived by a sync, or once more from a new owner, does no harm.

// sentDeploy records one deploy handed to the node's agent.
type sentDeploy struct {
	// since is the status_since of the deploying status it was sent for;
	// zero when it was carried by a sync, whose rows do not say (the next
	// pass adopts the current value).
	since time.Time
}

// deployState is the deploy side of the delivery loop's state (under
// delivery.mu).
type deployState struct {
	sent     map[int64]sentDeploy
	inflight map[int64]bool
	next     map[int64]time.Time
}

func newDeployState() deployState {
	return deployState{sent: map[int64]sentDeploy{}, inflight: map[int64]bool{}, next: map[int64]time.Time{}}
}

// markSynced records that a sync carried these deployments to their node.
func (s *Service) markSynced(ids []int64) {
	s.dl.mu.Lock()
	defer s.dl.mu.Unlock()
	for _, id := range ids {
		s.dl.deploys.sent[id] = sentDeploy{}
	}
}

// forgetDeploy drops what this replica knows of a deployment's deploy: it
// failed or is being removed, so a later deploying status is a new deploy.
func (s *Service) forgetDeploy(id int64) {
	s.dl.mu.Lock()
	defer s.dl.mu.Unlock()
	delete(s.dl.deploys.sent, id)
	delete(s.dl.deploys.next, id)
}

// deliverDeploys starts a delivery for every pending or deploying
// deployment on a node this replica holds that was not handed to its agent
// since it entered that status, is not being delivered and is due.
func (s *Service) deliverDeploys(ctx context.Context) error {
	deps, err := s.Store.DeployingDeployments(ctx)
	if err != nil {
		return err
	}
	now := s.now()
	st := &s.dl.deploys
	s.dl.mu.Lock()
	defer s.dl.mu.Unlock()
	for _, d := range deps {
		if sent, ok := st.sent[d.ID]; ok {
			if sent.since.IsZero() {
				st.sent[d.ID] = sentDeploy{since: d.Since}
				continue
			}
			if sent.since.Equal(d.Since) {
				continue
			}
		}
		if st.inflight[d.ID] || now.Before(st.next[d.ID]) || !s.connectedHere(d.NodeID) {
			continue
		}
		st.inflight[d.ID] = true
		d := d
		s.dl.wg.Add(1)
		go func() {
			defer s.dl.wg.Done()
			sent, again := s.deliverDeploy(ctx, d)
			s.dl.mu.Lock()
			delete(st.inflight, d.ID)
			if sent {
				st.sent[d.ID] = sentDeploy{since: d.Since}
				delete(st.next, d.ID)
			} else {
				st.next[d.ID] = s.now().Add(again)
			}
			s.dl.mu.Unlock()
		}()
	}
	return nil
}

// deliverDeploy hands one deployment to its node's agent. It reports
// whether the deploy is done with (delivered, refused, or no longer
// wanted), else when to try again. When the agent refuses the spec the
// deployment fails with its reason.
func (s *Service) deliverDeploy(ctx context.Context, dd store.DeployingDeployment) (done bool, again time.Duration) {
	log := s.Log.With().Int64("deployment_id", dd.ID).Int64("node_id", dd.NodeID).Logger()
	d, err := s.get(ctx, dd.ID)
	if err != nil {
		if ctx.Err() != nil {
			return false, 0
		}
		if errors.Is(err, ErrNotFound) {
			return true, 0
		}
		log.Warn().Err(err).Msg("read deployment to deliver; retrying")
		return false, s.retryInterval()
	}
	if d.NodeID == nil || *d.NodeID != dd.NodeID || (d.Status != store.DeploymentPending && d.Status != store.DeploymentDeploying) {
		return true, 0 // moved, reported or removed meanwhile
	}
	spec, err := s.specOf(ctx, d)
	if err != nil {
		if ctx.Err() != nil {
			return false, 0
		}
		log.Error().Err(err).Msg("deployment cannot be resolved; marked failed")
		if ferr := s.fail(ctx, d.ID, "cannot be resolved: "+err.Error()); ferr != nil {
			log.Error().Err(ferr).Msg("record unresolvable deployment")
			return false, s.retryInterval()
		}
		return true, 0
	}
	err = s.request(ctx, dd.NodeID, func(ctx context.Context, r protocol.Requester) error {
		_, err := protocol.CallDeploy.Do(ctx, r, protocol.DeployRequest{Spec: spec})
		return err
	})
	switch {
	case err == nil:
		return true, 0
	case isRemote(err):
		log.Warn().Err(err).Msg("agent refused the deployment")
		if err := s.fail(ctx, d.ID, "agent refused the deployment: "+err.Error()); err != nil {
			log.Error().Err(err).Msg("record refused deployment")
			return false, s.retryInterval()
		}
		return true, 0
	case ctx.Err() != nil:
		return false, 0
	default:
		log.Warn().Err(err).Msg("deploy not delivered; retrying")
		return false, s.retryInterval()
	}
}
