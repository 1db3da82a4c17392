package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/nullops/nullops/server/store"
)

// Live event types pushed to UIs.
const (
	EventStatus  = "deployment.status" // Status, Reason, FailedStep
	EventStep    = "step.status"       // Step
	EventLog     = "step.log"          // Log
	EventService = "service.state"     // Service
	EventTTL     = "deployment.ttl"    // ExpiresAt
)

// Event is one live change of a deployment. It is committed with the change
// (PostgreSQL NOTIFY inside the same transaction) and fanned out to
// subscribers after the commit, so a subscriber never sees a change that
// was rolled back.
type Event struct {
	Type          string `json:"type"`
	DeploymentID  int64  `json:"deployment_id"`
	ProjectID     int64  `json:"project_id"`
	EnvironmentID int64  `json:"environment_id"`
	Name          string `json:"name,omitempty"`
	Status        string `json:"status,omitempty"`
	Reason        string `json:"reason,omitempty"`
	FailedStep    string `json:"failed_step,omitempty"`
	DeletePending bool   `json:"delete_pending,omitempty"`
	// NodeStatus and NodeUnreachableSince tell viewers when the node's
	// agent stopped answering (the deployment stays routed for a grace).
	NodeStatus           string     `json:"node_status,omitempty"`
	NodeUnreachableSince *time.Time `json:"node_unreachable_since,omitempty"`
	ExpiresAt            *time.Time `json:"expires_at,omitempty"`
	Step                 *StepEvent `json:"step,omitempty"`
	Service              *SvcEvent  `json:"service,omitempty"`
	At                   time.Time  `json:"at"`
}

// StepEvent is a step change or log chunk.
type StepEvent struct {
	ID      string `json:"id"`
	Status  string `json:"status,omitempty"`
	Attempt int    `json:"attempt,omitempty"`
	Message string `json:"message,omitempty"`
	Chunk   string `json:"chunk,omitempty"`
}

// SvcEvent is a service container change.
type SvcEvent struct {
	ID       string `json:"id"`
	HostPort int    `json:"host_port,omitempty"`
	Health   string `json:"health,omitempty"`
	Running  bool   `json:"running"`
	// State, RestartCount, ExitCode, LastExitOOM: as in the deployment's
	// services (the last lines are fetched with the deployment).
	State        string `json:"state,omitempty"`
	RestartCount int    `json:"restart_count,omitempty"`
	ExitCode     *int   `json:"exit_code,omitempty"`
	LastExitOOM  bool   `json:"last_exit_oom,omitempty"`
}

// maxNotifyBytes keeps payloads under PostgreSQL's 8000-byte NOTIFY limit.
const maxNotifyBytes = 7000

// publish queues ev for delivery after tx commits.
func publish(ctx context.Context, tx *store.Store, ev Event) error {
	if ev.At.IsZero() {
		ev.At = time.Now().UTC()
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	if len(b) > maxNotifyBytes && ev.Step != nil {
		// Log chunks are the only big part; the stored log keeps all of it.
		over := len(b) - maxNotifyBytes + 32
		if over < len(ev.Step.Chunk) {
			ev.Step.Chunk = ev.Step.Chunk[:len(ev.Step.Chunk)-over] + "…"
		} else {
			ev.Step.Chunk = "…"
		}
		if b, err = json.Marshal(ev); err != nil {
			return fmt.Errorf("encode event: %w", err)
		}
	}
	return store.NotifyDeploymentEvent(ctx, tx, b)
}

func eventFor(d store.Deployment, typ string) Event {
	return Event{Type: typ, DeploymentID: d.ID, ProjectID: d.ProjectID, EnvironmentID: d.EnvironmentID, Name: d.Name,
		NodeStatus: d.NodeStatus, NodeUnreachableSince: d.NodeUnreachableSince}
}

// Broker fans events out to in-process subscribers (SSE streams).
type Broker struct {
	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	closed bool // after CloseAll, new subscriptions start closed
}

// NewBroker returns an empty broker.
func NewBroker() *Broker { return &Broker{subs: map[*Subscription]struct{}{}} }

// Subscription receives the events its filter accepts. When the subscriber
// falls more than its buffer behind, C is closed (the client reconnects and
// reloads); Close must be called in every case.
type Subscription struct {
	C      <-chan Event
	c      chan Event
	filter func(Event) bool
	b      *Broker
	closed bool
}

// Subscribe registers a subscriber; filter nil accepts everything.
func (b *Broker) Subscribe(filter func(Event) bool) *Subscription {
	c := make(chan Event, 256)
	s := &Subscription{C: c, c: c, filter: filter, b: b}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		s.closed = true
		close(c)
		return s
	}
	b.subs[s] = struct{}{}
	return s
}

// Close unregisters the subscription.
func (s *Subscription) Close() {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	delete(s.b.subs, s)
	if !s.closed {
		s.closed = true
		close(s.c)
	}
}

// CloseAll ends every subscription (at shutdown, so streams return).
func (b *Broker) CloseAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.endLocked()
}

// Reset ends the current subscriptions and keeps accepting new ones: after
// the change feed reconnected, events committed meanwhile were not
// delivered, so streams end and their clients reconnect and reload.
func (b *Broker) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.endLocked()
}

func (b *Broker) endLocked() {
	for s := range b.subs {
		delete(b.subs, s)
		if !s.closed {
			s.closed = true
			close(s.c)
		}
	}
}

// Publish delivers ev to every matching subscriber without blocking.
func (b *Broker) Publish(ev Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		if s.filter != nil && !s.filter(ev) {
			continue
		}
		select {
		case s.c <- ev:
		default:
			delete(b.subs, s)
			s.closed = true
			close(s.c)
		}
	}
}
