package deploy

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/errs"
	"github.com/nullops/nullops/server/store"
)

// Delivery: an action commits the desired state (a deployment deploying,
// deleting) and returns; getting it to the node's agent happens here, in
// the background, on the replica that holds the node, and is retried
// (deploys: delivery_deploy.go). The desired state lives in PostgreSQL,
// so it survives a server restart: on every start and every pass the loop
// reads the deployments being deleted again, and a node's (re)connect sends
// its full desired state (sync).

// Withdrawer withdraws routes before containers stop (server/ingresspub):
// Withdraw returns once every ingress serves a route table computed after
// it was called (confirmed by nullops-ingress, or after a grace period for
// ingresses that cannot confirm), or ctx ends.
type Withdrawer interface {
	Withdraw(ctx context.Context)
}

// Delivery defaults.
const (
	defaultRetryInterval = 5 * time.Second
	// resendAfter: a delete the agent accepted but never reported deleted
	// is sent again after this long (deletes are idempotent on the agent).
	resendAfter = time.Minute
)

// delivery is the state of the background delivery loop.
type delivery struct {
	kick chan struct{}

	mu       sync.Mutex
	inflight map[int64]bool
	next     map[int64]time.Time  // earliest next attempt
	typ      map[int64]deleteCall // delete or cancel, as requested
	deploys  deployState
	wg       sync.WaitGroup
	ctx      context.Context // of Run; nil before
}

func newDelivery() *delivery {
	return &delivery{kick: make(chan struct{}, 1), inflight: map[int64]bool{}, next: map[int64]time.Time{}, typ: map[int64]deleteCall{}, deploys: newDeployState()}
}

// wake makes the loop look at the desired state now.
func (s *Service) wake() {
	select {
	case s.dl.kick <- struct{}{}:
	default:
	}
}

// background runs fn on a goroutine that Run waits for; ctx is Run's (or,
// before Run, a context that is never cancelled).
func (s *Service) background(fn func(ctx context.Context)) {
	s.dl.mu.Lock()
	ctx := s.dl.ctx
	s.dl.mu.Unlock()
	if ctx == nil {
		ctx = context.Background()
	}
	s.dl.wg.Add(1)
	go func() {
		defer s.dl.wg.Done()
		fn(ctx)
	}()
}

func (s *Service) retryInterval() time.Duration {
	if s.RetryInterval > 0 {
		return s.RetryInterval
	}
	return defaultRetryInterval
}

// runDelivery is the delivery loop; it returns when ctx ends, after the
// deliveries it started.
func (s *Service) runDelivery(ctx context.Context) {
	s.dl.mu.Lock()
	s.dl.ctx = ctx
	s.dl.mu.Unlock()
	defer s.dl.wg.Wait()
	for {
		if err := s.deliverDeploys(ctx); err != nil && ctx.Err() == nil {
			s.Log.Warn().Err(err).Msg("deliver deploys; retrying")
		}
		if err := s.deliverDeletes(ctx); err != nil && ctx.Err() == nil {
			s.Log.Warn().Err(err).Msg("deliver deletes; retrying")
		}
		wait := s.retryInterval()
		if d, err := s.offlineUnreachable(ctx); err != nil && ctx.Err() == nil {
			s.Log.Warn().Err(err).Msg("mark deployments of unreachable nodes offline; retrying")
		} else if d > 0 && d < wait {
			wait = d
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.dl.kick:
		case <-t.C:
		}
		t.Stop()
	}
}

// deliverDeletes starts a delivery for every deployment being deleted on a
// connected node that is not being delivered now and is due.
func (s *Service) deliverDeletes(ctx context.Context) error {
	deps, err := s.Store.DeletingDeployments(ctx)
	if err != nil {
		return err
	}
	now := s.now()
	live := make(map[int64]bool, len(deps))
	s.dl.mu.Lock()
	defer s.dl.mu.Unlock()
	for _, d := range deps {
		live[d.ID] = true
		if s.dl.inflight[d.ID] || now.Before(s.dl.next[d.ID]) || !s.connectedHere(d.NodeID) {
			continue
		}
		s.dl.inflight[d.ID] = true
		typ, ok := s.dl.typ[d.ID]
		if !ok {
			typ = protocol.CallDelete
		}
		d := d
		s.dl.wg.Add(1)
		go func() {
			defer s.dl.wg.Done()
			again := s.deliverDelete(ctx, d, typ)
			s.dl.mu.Lock()
			delete(s.dl.inflight, d.ID)
			s.dl.next[d.ID] = s.now().Add(again)
			s.dl.mu.Unlock()
		}()
	}
	for id := range s.dl.next {
		if !live[id] && !s.dl.inflight[id] {
			delete(s.dl.next, id)
			delete(s.dl.typ, id)
		}
	}
	return nil
}

// deliverDelete withdraws the deployment's routes, then asks the agent to
// remove it. It returns when to try again if it is still deleting then.
func (s *Service) deliverDelete(ctx context.Context, d store.DeletingDeployment, typ deleteCall) time.Duration {
	if d.Routed && s.Withdraw != nil {
		s.Withdraw.Withdraw(ctx)
	}
	if ctx.Err() != nil {
		return 0
	}
	err := s.request(ctx, d.NodeID, func(ctx context.Context, r protocol.Requester) error {
		_, err := typ.Do(ctx, r, protocol.DeleteRequest{DeploymentID: d.ID})
		return err
	})
	if err == nil {
		if d.Pending {
			if err := s.clearPending(ctx, d.ID); err != nil && ctx.Err() == nil {
				s.Log.Warn().Err(err).Int64("deployment_id", d.ID).Msg("clear pending delete")
			}
		}
		return resendAfter
	}
	log := s.Log.Warn().Err(err).Int64("deployment_id", d.ID).Int64("node_id", d.NodeID).Str("request", typ.Type)
	if isRemote(err) || ctx.Err() != nil {
		log.Msg("delete refused by the agent; retrying")
		return s.retryInterval()
	}
	log.Msg("delete not delivered; retrying")
	if !d.Pending {
		if err := s.markPending(ctx, d.ID, err); err != nil && ctx.Err() == nil {
			s.Log.Error().Err(err).Int64("deployment_id", d.ID).Msg("remember pending delete")
		}
	}
	return s.retryInterval()
}

// markPending records that a delete did not reach the node yet.
func (s *Service) markPending(ctx context.Context, id int64, cause error) error {
	return s.tx(ctx, func(tx *store.Store) error {
		d, err := store.LockDeployment(ctx, tx, id)
		if err != nil || d.Status != store.DeploymentDeleting {
			return err
		}
		reason := fmt.Sprintf("node %s did not answer; the delete is retried until it does", d.NodeName)
		if e, ok := errs.As(cause); ok {
			reason = e.Message
		}
		if err := store.MarkDeploymentDeleting(ctx, tx, id, true, reason); err != nil {
			return err
		}
		ev := eventFor(d, EventStatus)
		ev.Status, ev.Reason, ev.DeletePending = d.Status, reason, true
		return publish(ctx, tx, ev)
	})
}

// clearPending records that a pending delete reached the node.
func (s *Service) clearPending(ctx context.Context, id int64) error {
	return s.tx(ctx, func(tx *store.Store) error {
		d, err := store.LockDeployment(ctx, tx, id)
		if err != nil || d.Status != store.DeploymentDeleting || !d.DeletePending {
			return err
		}
		if err := store.MarkDeploymentDeleting(ctx, tx, id, false, ""); err != nil {
			return err
		}
		ev := eventFor(d, EventStatus)
		ev.Status = d.Status
		return publish(ctx, tx, ev)
	})
}

// offlineUnreachable marks offline the deployments of nodes unreachable for
// longer than the grace; it returns how long until the next grace ends (0:
// none pending).
func (s *Service) offlineUnreachable(ctx context.Context) (time.Duration, error) {
	err := s.tx(ctx, func(tx *store.Store) error {
		ids, err := store.SetUnreachableDeploymentsOffline(ctx, tx, s.now(), s.OfflineGrace)
		if err != nil {
			return err
		}
		return s.publishStatuses(ctx, tx, ids)
	})
	if err != nil {
		return 0, err
	}
	at, ok, err := s.Store.NextUnreachableDeadline(ctx, s.OfflineGrace)
	if err != nil || !ok {
		return 0, err
	}
	return max(at.Sub(s.now()), 10*time.Millisecond), nil
}
