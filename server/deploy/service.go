// Package deploy is the deployment lifecycle of docs/architecture.md, "Deployments":
// create (placement and reservation in one transaction), delete/cancel,
// retry, clone, extend, the state machine driven by the agents' journaled
// events, offline handling and reconciliation of nodes, the desired state
// sent on every (re)connect, the auto-cleanup job and live events.
//
// Permission checks happen in server/api before these methods are called;
// every method takes the acting user for history and audit.
package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/catalog"
	"github.com/nullops/nullops/server/changefeed"
	"github.com/nullops/nullops/server/errs"
	"github.com/nullops/nullops/server/store"
)

// Actor is who performs an action, as the audit log records it.
type Actor = store.Actor

// System is the actor of automatic actions (the cleanup job).
var System = store.SystemActor

// Agents sends requests to node agents (server/agents).
type Agents interface {
	// Node is the node's agent, for the typed calls of package protocol
	// (protocol.CallDeploy.Do(ctx, a.Node(id), req)).
	Node(nodeID int64) protocol.Requester
	// Connected reports whether the node's agent is connected now.
	Connected(nodeID int64) bool
}

// Resolver turns a pipeline version and chosen tags into a deployment's
// definition (recorded with it, without secret values), and a definition
// into the spec an agent runs, with secrets and registry credentials
// decrypted (server/catalog).
type Resolver interface {
	Define(ctx context.Context, projectID, pipelineVersionID int64, tags map[string]string) (catalog.Definition, error)
	Complete(ctx context.Context, projectID int64, def catalog.Definition) (protocol.DeploySpec, error)
}

// TagChecker checks that a selectable service's tag exists in its registry
// and matches its pattern, and fills in pinned tags (server/catalog +
// server/registry). It returns the complete service name → tag map.
type TagChecker interface {
	CheckTags(ctx context.Context, projectID, pipelineVersionID int64, tags map[string]string) (map[string]string, error)
}

// errorf is a lifecycle error: a kind and code of package errs.
func errorf(kind errs.Kind, code, format string, args ...any) *errs.Error {
	return errs.New(kind, code, format, args...)
}

// ErrNotFound is returned for a deployment that does not exist. It is the
// store's not-found, whose answer is word for word the API's answer for a
// deployment the caller may not see, so the two cannot be told apart.
var ErrNotFound = store.ErrNotFound

// Service runs the lifecycle.
type Service struct {
	Store    *store.Store
	Agents   Agents
	Resolver Resolver
	Tags     TagChecker
	Broker   *Broker
	Log      zerolog.Logger
	// RequestTimeout bounds one request to an agent.
	RequestTimeout time.Duration
	// Links shapes the ingress links of deployments (scheme, port).
	Links Links
	// OfflineGrace is how long the deployments of a node whose agent does
	// not answer stay running (and routed) before they are marked offline.
	OfflineGrace time.Duration
	// RetryInterval is the delay between delivery attempts to an agent
	// (default 5s).
	RetryInterval time.Duration
	// Withdraw, when set, is waited on before a deployment with routes is
	// removed from its node (server/ingresspub).
	Withdraw Withdrawer
	// Now is the clock of every time decision the lifecycle makes (expiry,
	// deploy timeouts, the offline grace, degradation, delivery retries);
	// time.Now when nil. Timestamps written by PostgreSQL use its clock.
	Now func() time.Time

	dl      *delivery
	stopped chan struct{} // closed when Run returns: streams end

	cleanupRuns atomic.Int64
	redeletes   atomic.Int64
}

// Config are the collaborators of a Service.
type Config struct {
	Store    *store.Store
	Agents   Agents
	Resolver Resolver
	Tags     TagChecker
	Log      zerolog.Logger
	Links    Links
	// OfflineGrace: see Service.OfflineGrace.
	OfflineGrace time.Duration
	Withdraw     Withdrawer
	// Now: see Service.Now.
	Now func() time.Time
}

// New builds a Service with its own broker.
func New(c Config) *Service {
	return &Service{Store: c.Store, Agents: c.Agents, Resolver: c.Resolver, Tags: c.Tags,
		Broker: NewBroker(), Log: c.Log, Links: c.Links, RequestTimeout: 30 * time.Second,
		OfflineGrace: c.OfflineGrace, Withdraw: c.Withdraw, Now: c.Now, dl: newDelivery(), stopped: make(chan struct{})}
}

// now is the lifecycle's clock (Service.Now).
func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Follow subscribes the live events (Broker) to the change feed: every
// committed event is published to the subscribers it concerns, and every
// (re)connection of the feed ends the open subscriptions (events committed
// while it was away were lost; clients reconnect and reload). Call it
// before the feed runs.
func (s *Service) Follow(f *changefeed.Feed) {
	f.Subscribe(store.DeploymentEventsChannel, changefeed.Handler{
		Notify: func(payload string) {
			var ev Event
			if err := json.Unmarshal([]byte(payload), &ev); err != nil {
				s.Log.Warn().Err(err).Msg("undecodable deployment event")
				return
			}
			s.Broker.Publish(ev)
			if ev.Type != EventStatus {
				return
			}
			switch ev.Status {
			case store.DeploymentFailed, store.DeploymentDeleted:
				s.forgetDeploy(ev.DeploymentID)
			case store.DeploymentDeleting:
				// Deleted through any replica: the one connected to the
				// node delivers it now, not at its next retry.
				s.forgetDeploy(ev.DeploymentID)
				s.wake()
			case store.DeploymentPending, store.DeploymentDeploying:
				// Created or retried through any replica: the one
				// connected to the node delivers the deploy.
				s.wake()
			}
		},
		Resync: s.Broker.Reset,
	})
}

// Run delivers deploys and deletes to the agents of the nodes this replica
// holds (retried until they are carried out) until ctx ends, then ends
// every live event subscription.
func (s *Service) Run(ctx context.Context) {
	defer close(s.stopped)
	defer s.Broker.CloseAll()
	s.runDelivery(ctx)
}

func (s *Service) tx(ctx context.Context, fn func(tx *store.Store) error) error {
	return s.Store.InTx(ctx, fn)
}

// audit records an action on d in the audit log, inside tx.
func (s *Service) audit(ctx context.Context, tx *store.Store, a Actor, action string, d store.Deployment, detail map[string]any) error {
	pid, eid := d.ProjectID, d.EnvironmentID
	detail = maps.Clone(detail)
	if detail == nil {
		detail = map[string]any{}
	}
	detail["name"], detail["project"], detail["environment"] = d.Name, d.ProjectName, d.EnvironmentName
	e := a.Entry(action, "deployment", d.ID, detail)
	e.ProjectID, e.EnvironmentID = &pid, &eid
	return tx.Audit(ctx, e)
}

// errNoManager is returned while no agent connection manager is attached.
var errNoManager = errors.New("no agent connection manager")

// connected reports whether the node's agent is reachable now.
func (s *Service) connected(nodeID int64) bool { return s.Agents != nil && s.Agents.Connected(nodeID) }

// connectedHere reports whether this server replica itself is connected to
// the node's agent (docs/architecture.md, "Replicas and node leases"): what
// work every replica does for its own nodes (delete delivery) checks, so
// several replicas never send the same request. Agents that do not know
// replicas answer with Connected.
func (s *Service) connectedHere(nodeID int64) bool {
	if h, ok := s.Agents.(interface{ Holds(int64) bool }); ok {
		return h.Holds(nodeID)
	}
	return s.connected(nodeID)
}

// deleteCall is protocol.CallDelete or protocol.CallCancel.
type deleteCall = protocol.Call[protocol.DeleteRequest, protocol.Empty]

// request runs call against the node's agent within RequestTimeout.
func (s *Service) request(ctx context.Context, nodeID int64, call func(ctx context.Context, r protocol.Requester) error) error {
	if s.Agents == nil {
		return errNoManager
	}
	ctx, cancel := context.WithTimeout(ctx, s.RequestTimeout)
	defer cancel()
	return call(ctx, s.Agents.Node(nodeID))
}

// isRemote reports whether err is the agent refusing the request (as
// opposed to the connection failing).
func isRemote(err error) bool {
	var re *protocol.RemoteError
	return errors.As(err, &re)
}
