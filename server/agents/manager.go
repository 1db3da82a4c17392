// Package agents is the control plane's side of the agent channel
// (docs/architecture.md, "Server ↔ agent channel"): the connection manager that dials every enabled,
// non-revoked node at wss://host:port/v1/connect with its token, pins the
// agent's certificate thumbprint (trust on first use), checks versions in
// hello, sends the node's full desired state (sync) on every (re)connect,
// keeps the connection alive with pings, redials with capped exponential
// backoff and jitter, and applies the agent's journaled events exactly once
// (one transaction per event, acknowledged after commit). The rest of the
// server talks to agents only through the Manager's API; admins manage nodes
// through Admin.
package agents

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/secretbox"
	"github.com/nullops/nullops/server/store"
)

// ErrNotConnected is returned by requests to a node that is not online.
var ErrNotConnected = errors.New("node is not connected")

// DesiredState provides a node's full desired state, sent as sync on every
// (re)connect (implemented by the deployments service).
type DesiredState interface {
	DesiredState(ctx context.Context, nodeID int64) ([]protocol.DeploySpec, error)
}

type noDesiredState struct{}

func (noDesiredState) DesiredState(context.Context, int64) ([]protocol.DeploySpec, error) {
	return []protocol.DeploySpec{}, nil
}

// Applier applies one journaled event inside the transaction that records
// it: the event is applied exactly once, and acknowledged to the agent only
// after the transaction commits. Returning an error rolls the transaction
// back and drops the connection; the agent replays the event on the next
// one. Skip events that can never apply (log them, return nil), or the
// node's journal stalls.
type Applier func(ctx context.Context, tx *store.Store, nodeID int64, env protocol.Envelope) error

// StatusChange is reported to OnStatusChange hooks.
type StatusChange struct {
	NodeID        int64
	EnvironmentID int64
	Previous      string // status before ("" when unknown)
	Status        string // store.NodeOnline, NodeOffline, NodeUntrusted, ...
	Reason        string
	// Sync is the agent's answer to the desired state; set for online only.
	Sync *protocol.SyncReply
}

// Options configure a Manager. Zero durations take the defaults of
// server/config.
type Options struct {
	Store *store.Store
	Box   *secretbox.Box
	Log   zerolog.Logger
	// ServerVersion is sent in hello.
	ServerVersion string
	// AcceptVersion decides whether an agent's product version is
	// supported; nil means SameRelease(ServerVersion).
	AcceptVersion func(agentVersion string) error
	Desired       DesiredState // nil: every node's desired state is empty
	// Plugins is the plugin catalog sent (plugins.update) to every agent
	// after each (re)connect, so an agent that was away when the catalog
	// changed still pre-pulls it. nil: none is sent.
	Plugins func(ctx context.Context) (protocol.PluginsUpdate, error)

	PingInterval time.Duration // default 10s
	PingTimeout  time.Duration // default 30s: no pong for this long → offline
	DialTimeout  time.Duration // default 10s: one dial + hello
	SyncTimeout  time.Duration // default 2m: the agent's answer to sync
	BackoffMin   time.Duration // default 0.5s
	BackoffMax   time.Duration // default 30s
	// RetryBlocked is the redial delay of untrusted and incompatible nodes
	// (an approval or an agent upgrade takes effect at the next attempt;
	// approving through Admin redials at once). Default BackoffMax.
	RetryBlocked time.Duration
	// RescanInterval: every node this replica holds re-reads its row this
	// often, to pick up changes made outside this process. Default 30s.
	RescanInterval time.Duration
	// Handshakes bounds the TLS handshakes with agents running at once
	// (default 8 per CPU). When thousands of nodes are dialled together
	// (a server start, a replica taking over), unbounded handshakes share
	// the CPUs until most outlive the dial timeout and start over; bounded,
	// each finishes in time. Only the handshake waits for a slot: TCP
	// connects (and dead hosts timing out) do not hold one.
	Handshakes int

	// ReplicaID names this server process among the replicas sharing the
	// database (docs/architecture.md, "Replicas and node leases"); default
	// a random one.
	ReplicaID string
	// AdvertiseURL is this replica's internal base URL, where the others
	// forward node-bound calls for the nodes it holds.
	AdvertiseURL string
	// LeaseTTL is how long a node's lease lasts without renewal (default
	// 10s): a replica killed without a goodbye loses its nodes to the
	// others after at most this long. Leases and the heartbeat are renewed
	// every LeaseTTL/3; the ping interval is at most LeaseTTL/3 and the
	// liveness window announced to agents at most LeaseTTL, so an agent
	// lets a new owner replace a silent (paused) old one in time.
	LeaseTTL time.Duration
	// ForwardKey authenticates calls between replicas (see forward.go);
	// nil: node-bound calls for nodes held by other replicas fail with
	// ErrNotConnected.
	ForwardKey []byte
	// ForwardClient carries forwarded calls (default: a client without
	// overall timeout; streams last as long as they are read).
	ForwardClient *http.Client
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.PingInterval, 10*time.Second)
	def(&o.PingTimeout, 30*time.Second)
	def(&o.DialTimeout, 10*time.Second)
	def(&o.SyncTimeout, 2*time.Minute)
	def(&o.BackoffMin, 500*time.Millisecond)
	def(&o.BackoffMax, 30*time.Second)
	def(&o.RetryBlocked, o.BackoffMax)
	def(&o.RescanInterval, 30*time.Second)
	def(&o.LeaseTTL, 10*time.Second)
	o.PingInterval = min(o.PingInterval, o.LeaseTTL/3)
	if o.PingTimeout <= o.PingInterval {
		o.PingTimeout = 3 * o.PingInterval
	}
	if o.Handshakes <= 0 {
		o.Handshakes = 8 * runtime.GOMAXPROCS(0)
	}
	if o.ReplicaID == "" {
		o.ReplicaID = newReplicaID()
	}
	if o.ForwardClient == nil {
		o.ForwardClient = &http.Client{}
	}
	if o.AcceptVersion == nil {
		o.AcceptVersion = SameRelease(o.ServerVersion)
	}
	if o.Desired == nil {
		o.Desired = noDesiredState{}
	}
}

// liveness is the window announced to agents in hello: a connection from
// which nothing arrived for this long may be replaced by a new dial. At
// most the lease TTL, so a new owner can replace a paused old one as soon
// as it holds the lease; with pings every LeaseTTL/3 at most, a live
// connection is never that silent.
func (o *Options) liveness() time.Duration {
	return min(o.PingInterval+o.PingTimeout, o.LeaseTTL)
}

// Manager keeps one goroutine per non-revoked node (disabled ones too:
// they drain while connected).
type Manager struct {
	o Options

	hookMu        sync.RWMutex
	appliers      map[string][]Applier
	statusHooks   []func(context.Context, StatusChange)
	metricsHooks  []func(context.Context, int64, protocol.Metrics)
	desiredHookMu sync.Mutex

	// handshakes holds one token per TLS handshake in progress
	// (Options.Handshakes).
	handshakes chan struct{}
	// leaseStore is a pool of its own for the lease loop (Store.Sibling),
	// set by Start.
	leaseStore *store.Store

	mu      sync.Mutex
	nodes   map[int64]*node // the nodes whose lease this replica holds
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started bool
	// crashed: Stop leaves the replica's row and leases behind (tests
	// simulating kill -9).
	crashed bool
	// frozen (tests): the lease loop and the pings stand still, as in a
	// process stopped with SIGSTOP, while sockets stay open.
	frozen atomic.Bool

	leases  leaseState
	forward forwarder
}

// New builds a Manager; Start runs it.
func New(o Options) *Manager {
	o.defaults()
	m := &Manager{o: o, appliers: map[string][]Applier{}, nodes: map[int64]*node{},
		handshakes: make(chan struct{}, o.Handshakes)}
	m.leases.kick = make(chan struct{}, 1)
	m.forward.closing = make(chan struct{})
	m.RegisterApplier(protocol.TypeChannelEvent, m.applyChannelEvent)
	return m
}

// SetDesiredState plugs in the provider of sync's desired state. Call it
// before Start.
func (m *Manager) SetDesiredState(d DesiredState) {
	m.desiredHookMu.Lock()
	defer m.desiredHookMu.Unlock()
	if d == nil {
		d = noDesiredState{}
	}
	m.o.Desired = d
}

func (m *Manager) desired() DesiredState {
	m.desiredHookMu.Lock()
	defer m.desiredHookMu.Unlock()
	return m.o.Desired
}

// RegisterApplier adds an applier for a journaled event type. Appliers of a
// type run in registration order, in the same transaction. Register before
// Start (events received earlier are recorded without being applied).
func (m *Manager) RegisterApplier(eventType string, a Applier) {
	m.hookMu.Lock()
	defer m.hookMu.Unlock()
	m.appliers[eventType] = append(m.appliers[eventType], a)
}

// OnStatusChange registers a hook called when a node's status changes, and
// after every successful (re)connect and sync (Status online, even when the
// node was online before, e.g. after a server restart). Hooks of one node
// run in order on its goroutine: keep them short.
func (m *Manager) OnStatusChange(f func(ctx context.Context, c StatusChange)) {
	m.hookMu.Lock()
	defer m.hookMu.Unlock()
	m.statusHooks = append(m.statusHooks, f)
}

// OnMetrics registers a hook called with every metrics push of an agent
// (after capacity and usage are stored on the node row).
func (m *Manager) OnMetrics(f func(ctx context.Context, nodeID int64, mt protocol.Metrics)) {
	m.hookMu.Lock()
	defer m.hookMu.Unlock()
	m.metricsHooks = append(m.metricsHooks, f)
}

func (m *Manager) appliersFor(t string) []Applier {
	m.hookMu.RLock()
	defer m.hookMu.RUnlock()
	return m.appliers[t]
}

func (m *Manager) fireStatus(ctx context.Context, c StatusChange) {
	m.hookMu.RLock()
	hooks := append([]func(context.Context, StatusChange){}, m.statusHooks...)
	m.hookMu.RUnlock()
	for _, h := range hooks {
		h(ctx, c)
	}
}

func (m *Manager) fireMetrics(ctx context.Context, nodeID int64, mt protocol.Metrics) {
	m.hookMu.RLock()
	hooks := append([]func(context.Context, int64, protocol.Metrics){}, m.metricsHooks...)
	m.hookMu.RUnlock()
	for _, h := range hooks {
		h(ctx, nodeID, mt)
	}
}

// Start registers this replica, takes the leases of the nodes it should
// hold (docs/architecture.md, "Replicas and node leases") and dials them;
// a lease loop keeps renewing, balancing and taking over. It returns after
// the first round of leases.
func (m *Manager) Start(ctx context.Context) error {
	m.mu.Lock()
	if m.started {
		m.mu.Unlock()
		return errors.New("agents: manager already started")
	}
	m.ctx, m.cancel = context.WithCancel(context.WithoutCancel(ctx))
	m.started = true
	m.mu.Unlock()
	ls, err := m.o.Store.Sibling(m.ctx, 2, "nullops-leases "+m.o.ReplicaID)
	if err != nil {
		return fmt.Errorf("agents: %w", err)
	}
	m.leaseStore = ls
	if err := m.leaseStore.RegisterReplica(m.ctx, m.o.ReplicaID, m.o.AdvertiseURL, m.o.LeaseTTL); err != nil {
		ls.Close()
		return fmt.Errorf("agents: %w", err)
	}
	m.leases.mu.Lock()
	m.leases.deadline = time.Now().Add(m.o.LeaseTTL)
	m.leases.renewed = time.Now()
	m.leases.mu.Unlock()
	if err := m.balance(m.ctx); err != nil {
		return fmt.Errorf("agents: %w", err)
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.leaseLoop(m.ctx)
	}()
	return nil
}

// Stop closes every connection, waits for the goroutines, then releases
// this replica's leases and removes its row, so the other replicas take
// its nodes at once. Node statuses are left as they are: the agents keep
// running their deployments while the server is away, and the next owner
// reconnects and syncs.
func (m *Manager) Stop() {
	m.mu.Lock()
	if !m.started || m.cancel == nil {
		m.mu.Unlock()
		return
	}
	m.cancel()
	crashed := m.crashed
	m.mu.Unlock()
	m.wg.Wait()
	if m.leaseStore != nil {
		m.leaseStore.Close()
	}
	if crashed {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.o.Store.DeleteReplica(ctx, m.o.ReplicaID); err != nil {
		m.o.Log.Warn().Err(err).Msg("release the node leases at shutdown (they expire on their own)")
	}
}

// SetAdvertiseURL sets Options.AdvertiseURL (once the listening port is
// known). Call it before Start.
func (m *Manager) SetAdvertiseURL(u string) { m.o.AdvertiseURL = u }

// ReplicaID is this server process's replica id.
func (m *Manager) ReplicaID() string { return m.o.ReplicaID }

// LeaseTTL is how long a node lease lasts without renewal.
func (m *Manager) LeaseTTL() time.Duration { return m.o.LeaseTTL }

// ensure starts the goroutine of a node whose lease was just taken with
// epoch, or wakes it when it runs.
func (m *Manager) ensure(id int64, status string, epoch int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.started || m.ctx.Err() != nil {
		return
	}
	if n, ok := m.nodes[id]; ok {
		n.wake()
		return
	}
	n := newNode(m, id, status, epoch)
	nctx, cancel := context.WithCancel(m.ctx)
	n.cancel = cancel
	m.nodes[id] = n
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer close(n.done)
		defer cancel()
		n.run(nctx)
		m.mu.Lock()
		if m.nodes[id] == n {
			delete(m.nodes, id)
		}
		m.mu.Unlock()
		if nctx.Err() == nil && !n.isLost() {
			// Deleted, or revoked and told: nothing to hold any more.
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(nctx), 5*time.Second)
			_ = m.o.Store.ReleaseNodeLease(rctx, m.o.ReplicaID, id)
			rcancel()
		}
	}()
}

// Refresh makes the manager act on an admin change of the node at once
// (created, token rotated, revoked, thumbprint approved, disabled, enabled,
// edited, deleted): its connection is dropped, re-established or stopped as
// the node row now says. The replica holding the node acts; when that is
// another replica it is told over the internal endpoint.
func (m *Manager) Refresh(ctx context.Context, nodeID int64) {
	if n := m.node(nodeID); n != nil {
		n.wake()
		return
	}
	m.kickLeases()
	m.forwardRefresh(ctx, nodeID)
}

func (m *Manager) node(id int64) *node {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.nodes[id]
}

// Connected reports whether the node is online (connected, trusted,
// compatible and synced) now: on this replica, or on the replica holding
// its lease (as the database says).
func (m *Manager) Connected(nodeID int64) bool {
	if n := m.node(nodeID); n != nil {
		return n.livePeer() != nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	o, err := m.o.Store.GetNodeOwner(ctx, nodeID)
	return err == nil && o.Online && o.Replica.ID != m.o.ReplicaID
}

// Holds reports whether this replica holds the node's lease and is
// connected to its agent now (work each replica does for its own nodes
// checks it instead of Connected).
func (m *Manager) Holds(nodeID int64) bool {
	n := m.node(nodeID)
	return n != nil && n.livePeer() != nil
}

// Node is the node's agent as a protocol.Requester, for the typed calls:
// protocol.CallDeploy.Do(ctx, m.Node(id), req). A request to a node that is
// not connected fails with ErrNotConnected; an agent's error reply is a
// *protocol.RemoteError. Without a deadline on ctx,
// protocol.DefaultRequestTimeout applies.
func (m *Manager) Node(nodeID int64) protocol.Requester { return nodeRequester{m, nodeID} }

type nodeRequester struct {
	m  *Manager
	id int64
}

func (r nodeRequester) RoundTrip(ctx context.Context, typ string, body, out any) error {
	p := r.m.peerOf(r.id)
	if p == nil {
		if r.m.node(r.id) == nil && r.m.o.ForwardKey != nil {
			// Held by another replica (or by none): ask its owner.
			return r.m.forwardCall(ctx, r.id, typ, body, out)
		}
		return fmt.Errorf("node %d: %w", r.id, ErrNotConnected)
	}
	if err := p.RoundTrip(ctx, typ, body, out); err != nil {
		return fmt.Errorf("node %d: %s: %w", r.id, typ, err)
	}
	return nil
}

func (m *Manager) peerOf(nodeID int64) *protocol.Peer {
	n := m.node(nodeID)
	if n == nil {
		return nil
	}
	return n.livePeer()
}

// Stream is an open stream of frames answering one request (logs.open).
type Stream struct {
	// C delivers the frames (logs.data); it is closed when the connection
	// ends. After Close, stop reading it.
	C    <-chan protocol.Envelope
	id   string
	peer *protocol.Peer
	// stop ends a stream forwarded from another replica instead.
	stop func()
}

// Close stops routing frames and tells the agent to stop the stream.
func (s *Stream) Close(ctx context.Context) error {
	if s.stop != nil {
		s.stop()
		return nil
	}
	s.peer.StopStream(s.id)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	return protocol.MsgLogsClose.Send(ctx, s.peer, protocol.LogsClose{ID: s.id})
}

// OpenLogs sends logs.open and returns the stream of its frames once the
// agent accepted it. buffer is how many frames may wait unread (frames
// beyond are dropped, never blocking the node's channel); 0 means 256.
func (m *Manager) OpenLogs(ctx context.Context, nodeID int64, req protocol.LogsOpen, buffer int) (*Stream, error) {
	if buffer <= 0 {
		buffer = 256
	}
	p := m.peerOf(nodeID)
	if p == nil {
		if m.node(nodeID) == nil && m.o.ForwardKey != nil {
			return m.forwardLogs(ctx, nodeID, req, buffer)
		}
		return nil, fmt.Errorf("node %d: %w", nodeID, ErrNotConnected)
	}
	return openLogs(ctx, nodeID, p, req, buffer)
}

// openLogs opens a log stream over this replica's connection p.
func openLogs(ctx context.Context, nodeID int64, p *protocol.Peer, req protocol.LogsOpen, buffer int) (*Stream, error) {
	ch := make(chan protocol.Envelope, buffer)
	id, _, err := protocol.CallLogsOpen.Stream(ctx, p, req, ch)
	if err != nil {
		return nil, fmt.Errorf("node %d: %s: %w", nodeID, protocol.TypeLogsOpen, err)
	}
	return &Stream{C: ch, id: id, peer: p}, nil
}

// Broadcast calls send for every online node concurrently (e.g.
// plugins.update), those of the other replicas through them, and returns
// each node's error (nil on success).
func (m *Manager) Broadcast(ctx context.Context, send func(ctx context.Context, r protocol.Requester) error) map[int64]error {
	targets := map[int64]bool{}
	m.mu.Lock()
	for id, n := range m.nodes {
		if n.livePeer() != nil {
			targets[id] = true
		}
	}
	m.mu.Unlock()
	if m.o.ForwardKey != nil {
		ids, err := m.o.Store.OnlineHeldNodes(ctx)
		if err != nil {
			m.o.Log.Warn().Err(err).Msg("broadcast: list the nodes online on other replicas")
		}
		for _, id := range ids {
			if m.node(id) == nil {
				targets[id] = true
			}
		}
	}
	out := make(map[int64]error, len(targets))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := send(ctx, m.Node(id))
			mu.Lock()
			out[id] = err
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// NodeState is the manager's live view of a node.
type NodeState struct {
	NodeID       int64             `json:"node_id"`
	Status       string            `json:"status"`
	Reason       string            `json:"status_reason"`
	Connected    bool              `json:"connected"`
	LastSeen     time.Time         `json:"last_seen_at"`
	AgentVersion string            `json:"agent_version"`
	Capacity     protocol.Capacity `json:"capacity"`
	Usage        protocol.Usage    `json:"usage"`
}

// State returns the live view of a node the manager runs.
func (m *Manager) State(nodeID int64) (NodeState, bool) {
	n := m.node(nodeID)
	if n == nil {
		return NodeState{}, false
	}
	return n.state(), true
}

// States returns the live view of every node the manager runs, by id.
func (m *Manager) States() []NodeState {
	m.mu.Lock()
	nodes := make([]*node, 0, len(m.nodes))
	for _, n := range m.nodes {
		nodes = append(nodes, n)
	}
	m.mu.Unlock()
	out := make([]NodeState, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, n.state())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out
}
