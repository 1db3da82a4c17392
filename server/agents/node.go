package agents

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/store"
)

// TokenAAD is the associated data binding a sealed node token to its node.
func TokenAAD(nodeID int64) string { return fmt.Sprintf("node-token:%d", nodeID) }

// eventQueue is how many received events (and metrics) wait for the
// applier before the connection's read loop blocks.
const eventQueue = 32

// touchEvery bounds how often a healthy node's last_seen_at is written.
const touchEvery = time.Minute

// node is the goroutine state of one node.
type node struct {
	m      *Manager
	id     int64
	kick   chan struct{}
	cancel context.CancelFunc // ends run (set by ensure)
	done   chan struct{}      // closed when run returned

	mu           sync.Mutex
	envID        int64
	status       string
	reason       string
	peer         *protocol.Peer // set while online
	lastSeen     time.Time
	agentVersion string
	capacity     protocol.Capacity
	usage        protocol.Usage
	// epoch is the fencing token: the connection epoch of the lease or of
	// the latest dial. Every write for the node is conditional on it.
	epoch int64
	// lost: another replica took the node over (a fenced write or dial
	// failed); run ends without releasing anything.
	lost bool

	// refusedStreak: the last dial was refused by the agent with 409 (a
	// refusal is recorded once per streak). Only the node's goroutine uses it.
	refusedStreak bool
}

func newNode(m *Manager, id int64, status string, epoch int64) *node {
	return &node{m: m, id: id, status: status, epoch: epoch, kick: make(chan struct{}, 1), done: make(chan struct{}), cancel: func() {}}
}

func (n *node) curEpoch() int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.epoch
}

func (n *node) setEpoch(e int64) {
	n.mu.Lock()
	n.epoch = e
	n.mu.Unlock()
}

func (n *node) setLost() {
	n.mu.Lock()
	n.lost = true
	n.mu.Unlock()
}

func (n *node) isLost() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lost
}

// fenced marks the node lost when err says another replica took it over,
// and reports whether it did.
func (n *node) fenced(err error) bool {
	if errors.Is(err, store.ErrFenced) {
		if !n.isLost() {
			n.m.o.Log.Warn().Int64("node_id", n.id).Err(err).Msg("the node was taken over by another replica; letting go")
		}
		n.setLost()
		return true
	}
	return false
}

func (n *node) wake() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

func (n *node) livePeer() *protocol.Peer {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.peer
}

func (n *node) state() NodeState {
	n.mu.Lock()
	defer n.mu.Unlock()
	return NodeState{NodeID: n.id, Status: n.status, Reason: n.reason, Connected: n.peer != nil, LastSeen: n.lastSeen,
		AgentVersion: n.agentVersion, Capacity: n.capacity, Usage: n.usage}
}

// outcome is how one connection attempt (or session) ended.
type outcome struct {
	status    string // "" = let the loop re-read the node and decide
	reason    string
	blocked   bool // untrusted/incompatible/undecryptable: retry after RetryBlocked
	immediate bool // redial at once (admin change)
	wasOnline bool // the session reached online: the backoff starts over
}

// run dials, serves and redials the node until it is revoked or deleted,
// or the manager stops.
func (n *node) run(ctx context.Context) {
	o := n.m.o
	log := o.Log.With().Int64("node_id", n.id).Logger()
	backoff := o.BackoffMin
	for {
		if ctx.Err() != nil || n.isLost() {
			return
		}
		row, err := o.Store.GetNode(ctx, n.id)
		if errors.Is(err, store.ErrNotFound) {
			log.Info().Msg("node deleted; connection manager stops")
			return
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn().Err(err).Msg("read node")
			if !sleep(ctx, n.kick, jitter(backoff)) {
				return
			}
			backoff = min(backoff*2, o.BackoffMax)
			continue
		}
		n.mu.Lock()
		n.envID = row.EnvironmentID
		n.mu.Unlock()
		if row.Revoked {
			n.setStatus(ctx, log, store.NodeRevoked, row.StatusReason, nil)
			if !row.TokenRevokePending {
				return
			}
			// Tell the agent, with the token it still accepts.
			if n.deliverRevocation(ctx, log, row) {
				return
			}
			if !sleep(ctx, n.kick, jitter(backoff)) {
				return
			}
			backoff = min(backoff*2, o.BackoffMax)
			continue
		}
		// A disabled node stays connected: it drains (no new deployments;
		// its deployments keep running, stay routed and can be deleted).

		out := n.session(ctx, log, row)
		if ctx.Err() != nil || n.isLost() {
			return
		}
		if out.status != "" {
			n.setStatus(ctx, log, out.status, out.reason, nil)
		}
		var delay time.Duration
		switch {
		case out.immediate:
			backoff = o.BackoffMin
		case out.blocked:
			delay = o.RetryBlocked
		default:
			if out.wasOnline {
				backoff = o.BackoffMin
			}
			delay = jitter(backoff)
			backoff = min(backoff*2, o.BackoffMax)
		}
		if delay > 0 && !sleep(ctx, n.kick, delay) {
			return
		}
	}
}

// jitter spreads d over [d/2, d].
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits d, a kick or the end of ctx; it reports false when ctx ended.
func sleep(ctx context.Context, kick <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-kick:
	case <-t.C:
	}
	return true
}

// setStatus records the status (in the database unless the admin's
// disabled/revoked already is) and tells the hooks when it changed, and on
// every online.
func (n *node) setStatus(ctx context.Context, log zerolog.Logger, status, reason string, sync *protocol.SyncReply) {
	if status != store.NodeDisabled && status != store.NodeRevoked {
		// Only while this replica still holds the node: a replica that
		// lost it (paused past its lease) neither records nor reports.
		if _, err := n.m.o.Store.SetNodeStatusFenced(ctx, n.id, n.curEpoch(), status, reason); err != nil {
			if n.fenced(err) {
				return
			}
			if ctx.Err() == nil {
				log.Error().Err(err).Str("status", status).Msg("record node status")
			}
		}
	}
	if n.isLost() {
		return
	}
	n.mu.Lock()
	prev, prevReason := n.status, n.reason
	n.status, n.reason = status, reason
	env := n.envID
	if status == store.NodeOnline {
		n.lastSeen = time.Now()
	}
	n.mu.Unlock()
	if prev == status && status != store.NodeOnline {
		if reason != prevReason {
			log.Debug().Str("status", status).Str("reason", reason).Msg("node status reason changed")
		}
		return
	}
	ev := log.Info()
	if status != store.NodeOnline {
		ev = log.Warn()
	}
	ev.Str("status", status).Str("previous", prev).Str("reason", reason).Msg("node status")
	n.m.fireStatus(ctx, StatusChange{NodeID: n.id, EnvironmentID: env, Previous: prev, Status: status, Reason: reason, Sync: sync})
}

// session makes one connection attempt and, when it succeeds, serves the
// connection until it ends. While a token rotation is pending, a dial the
// agent refuses with the new token is repeated with the previous one, over
// which the rotation is then completed.
func (n *node) session(ctx context.Context, log zerolog.Logger, row store.Node) outcome {
	o := n.m.o
	if len(row.TokenEnc) == 0 {
		return outcome{status: store.NodeOffline, reason: "the node has no token; rotate its token", blocked: true}
	}
	tok, err := o.Box.Open(row.TokenEnc, row.TokenKeyID, TokenAAD(row.ID))
	if err != nil {
		return outcome{status: store.NodeOffline, reason: "cannot decrypt the node token (was the secret key changed without listing the old one?): " + err.Error(), blocked: true}
	}
	res, err := n.dial(ctx, row, string(tok))
	viaPrev := false
	if errors.Is(err, errUnauthorized) && row.TokenRotationPending && len(row.TokenPrevEnc) > 0 {
		prev, perr := o.Box.Open(row.TokenPrevEnc, row.TokenPrevKeyID, TokenAAD(row.ID))
		if perr == nil {
			res, err = n.dial(ctx, row, string(prev))
			viaPrev = err == nil
		}
	}
	var refused *errRefused
	switch {
	case errors.Is(err, errThumbprint):
		reason := fmt.Sprintf("the agent presented certificate %s but %s is pinned: if its certificate was regenerated, approve the new thumbprint",
			short(res.seen), short(row.ExpectedThumbprint))
		if _, err := o.Store.SetNodeUntrustedFenced(ctx, n.id, n.curEpoch(), res.seen, reason); err != nil && ctx.Err() == nil {
			log.Error().Err(err).Msg("record untrusted thumbprint")
		}
		return outcome{status: store.NodeUntrusted, reason: reason, blocked: true}
	case errors.Is(err, errUnauthorized):
		n.refusedStreak = false
		return outcome{status: store.NodeOffline, reason: "the agent refused the token (HTTP 401): start it with the node's current token (rotate the token if it was lost)"}
	case errors.As(err, &refused):
		return n.refusedByAgent(ctx, log, row, refused)
	case n.fenced(err):
		return outcome{}
	case err != nil:
		return outcome{status: store.NodeOffline, reason: "cannot connect: " + err.Error()}
	}
	n.refusedStreak = false
	if row.TokenRotationPending && !viaPrev {
		// The agent was started with the new token.
		n.rotationDone(ctx, log, row, "the agent was started with the new token")
	}
	return n.serve(ctx, log, row, res, viaPrev)
}

// dial dials the node's agent with token and a new connection epoch,
// obtained only while this replica holds the node's lease (ErrFenced
// otherwise).
func (n *node) dial(ctx context.Context, row store.Node, token string) (dialResult, error) {
	o := n.m.o
	epoch, err := o.Store.NextConnEpoch(ctx, n.id, o.ReplicaID)
	if err != nil {
		return dialResult{}, err
	}
	n.setEpoch(epoch)
	return dial(ctx, row.Host, row.Port, token, row.ExpectedThumbprint, epoch, o.DialTimeout, n.m.handshakes)
}

func short(thumb string) string {
	if len(thumb) > 16 {
		return thumb[:16] + "…"
	}
	if thumb == "" {
		return "(none)"
	}
	return thumb
}

// link is one established connection.
type link struct {
	n      *node
	epoch  int64 // the connection epoch it was dialled with
	peer   *protocol.Peer
	events chan protocol.Envelope
	failed chan error
}

// handle runs on the read loop: journaled events and metrics go to the
// applier in arrival order; agents send no requests.
func (l *link) handle(ctx context.Context, p *protocol.Peer, e protocol.Envelope) {
	if protocol.IsEvent(e.Type) || e.Type == protocol.TypeMetrics {
		select {
		case l.events <- e:
		case <-ctx.Done():
		}
		return
	}
	if e.ID != "" {
		_ = p.ReplyError(ctx, e, fmt.Errorf("the control plane serves no %q requests", e.Type))
	}
}

func (l *link) fail(err error) {
	select {
	case l.failed <- err:
	default:
	}
}

// serve runs hello, sync and the connected loop on an established
// connection.
func (n *node) serve(ctx context.Context, log zerolog.Logger, row store.Node, res dialResult, viaPrev bool) (out outcome) {
	o := n.m.o
	sctx, cancel := context.WithCancel(ctx)
	l := &link{n: n, epoch: n.curEpoch(), events: make(chan protocol.Envelope, eventQueue), failed: make(chan error, 1)}
	l.peer = protocol.NewPeer(res.conn, "s", l.handle)
	go l.peer.Run(sctx) //nolint:errcheck // the error is Peer.Err
	applyDone := make(chan struct{})
	applying := false
	defer func() {
		n.mu.Lock()
		n.peer = nil
		n.mu.Unlock()
		cancel()
		_ = res.conn.CloseNow()
		<-l.peer.Done()
		if applying {
			<-applyDone
		}
	}()
	closeWith := func(code websocket.StatusCode, reason string) {
		_ = res.conn.Close(code, reason)
	}

	// hello
	hctx, hcancel := context.WithTimeout(sctx, o.DialTimeout)
	hello, err := protocol.CallHello.Do(hctx, l.peer, protocol.HelloRequest{ServerVersion: o.ServerVersion, ProtocolVersion: protocol.Version,
		LivenessMs: o.liveness().Milliseconds()})
	hcancel()
	if err == nil {
		err = hello.Validate()
	}
	if err != nil {
		return outcome{status: store.NodeOffline, reason: "hello failed: " + err.Error()}
	}
	expected, err := o.Store.RecordHello(ctx, n.id, l.epoch, store.NodeHello{Thumbprint: res.seen, AgentVersion: hello.AgentVersion,
		ProtocolVersion: hello.ProtocolVersion, AgentInstance: hello.InstanceID, Capacity: hello.Capacity, Usage: hello.Usage})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			closeWith(websocket.StatusNormalClosure, "node deleted")
			return outcome{immediate: true}
		}
		if n.fenced(err) {
			closeWith(websocket.StatusGoingAway, "taken over by another server replica")
			return outcome{}
		}
		return outcome{status: store.NodeOffline, reason: "record hello: " + err.Error()}
	}
	if expected != res.seen {
		// An admin pinned another thumbprint while we were connecting.
		closeWith(websocket.StatusPolicyViolation, "untrusted certificate")
		return outcome{immediate: true}
	}
	n.mu.Lock()
	n.agentVersion, n.capacity, n.usage, n.lastSeen = hello.AgentVersion, hello.Capacity, hello.Usage, time.Now()
	n.mu.Unlock()
	if hello.ProtocolVersion != protocol.Version {
		reason := fmt.Sprintf("the agent speaks protocol version %d, this server %d: run the nullops-agent matching server %s",
			hello.ProtocolVersion, protocol.Version, o.ServerVersion)
		closeWith(websocket.StatusPolicyViolation, "incompatible protocol version")
		return outcome{status: store.NodeIncompatible, reason: reason, blocked: true}
	}
	if err := o.AcceptVersion(hello.AgentVersion); err != nil {
		closeWith(websocket.StatusPolicyViolation, "incompatible agent version")
		return outcome{status: store.NodeIncompatible, reason: err.Error(), blocked: true}
	}

	if hello.InstanceID == row.AgentInstance && hello.LastAckedSeq > uint64(max(row.LastAckedSeq, 0)) {
		n.ackedElsewhere(ctx, log, row, hello.LastAckedSeq)
	}

	if viaPrev {
		// Connected with the previous token: hand the agent the new
		// token's verifier, then redial with the new token.
		if err := n.sendRotation(sctx, log, l.peer, row); err != nil {
			closeWith(websocket.StatusPolicyViolation, "token rotation failed")
			return outcome{status: store.NodeOffline, reason: "the agent did not accept the rotated token (" + err.Error() +
				"): restart it with the node's current token", blocked: true}
		}
		closeWith(websocket.StatusNormalClosure, "token rotated")
		return outcome{status: store.NodeOffline, reason: "token rotated on the agent; reconnecting with the new token", immediate: true}
	}

	// Journaled events flow from here on (the agent replays after hello).
	applying = true
	go func() {
		defer close(applyDone)
		l.apply(sctx, log, hello.InstanceID)
	}()

	// sync: the node's full desired state.
	specs, err := n.m.desired().DesiredState(sctx, n.id)
	if err != nil {
		return outcome{status: store.NodeOffline, reason: "cannot compute the desired state: " + err.Error()}
	}
	if specs == nil {
		specs = []protocol.DeploySpec{}
	}
	syncCtx, syncCancel := context.WithTimeout(sctx, o.SyncTimeout)
	synced, err := protocol.CallSync.Do(syncCtx, l.peer, protocol.SyncRequest{Deployments: specs, NodeUID: row.UID})
	syncCancel()
	if err != nil {
		return outcome{status: store.NodeOffline, reason: "sync failed: " + err.Error()}
	}

	n.mu.Lock()
	n.peer = l.peer
	n.mu.Unlock()
	n.setStatus(ctx, log, store.NodeOnline, "", &synced)
	out.wasOnline = true
	if o.Plugins != nil {
		go n.sendPlugins(sctx, log, l.peer)
	}
	return n.connected(ctx, log, row, res, l, closeWith)
}

// connected watches an online connection: pings, admin changes, failures.
func (n *node) connected(ctx context.Context, log zerolog.Logger, row store.Node, res dialResult, l *link,
	closeWith func(websocket.StatusCode, string)) outcome {
	o := n.m.o
	ticker := time.NewTicker(o.PingInterval)
	defer ticker.Stop()
	pongs := make(chan error, 1)
	pinging := false
	lastTouch := time.Now()
	for {
		select {
		case <-ctx.Done():
			closeWith(websocket.StatusGoingAway, "server shutting down")
			return outcome{wasOnline: true}
		case <-l.peer.Done():
			return outcome{status: store.NodeOffline, reason: "connection lost: " + errText(l.peer.Err()), wasOnline: true}
		case err := <-l.failed:
			if n.fenced(err) {
				closeWith(websocket.StatusGoingAway, "taken over by another server replica")
				return outcome{wasOnline: true}
			}
			closeWith(websocket.StatusInternalError, "event not applied")
			return outcome{status: store.NodeOffline, reason: "reconnecting after an event could not be applied: " + err.Error(), wasOnline: true}
		case <-n.kick:
			cur, err := o.Store.GetNode(ctx, n.id)
			why := ""
			switch {
			case errors.Is(err, store.ErrNotFound):
				closeWith(websocket.StatusNormalClosure, "node deleted")
				return outcome{immediate: true, wasOnline: true}
			case err != nil:
				continue
			case cur.Revoked:
				if cur.TokenRevokePending {
					n.sendRevocation(ctx, log, l.peer, cur)
				}
				closeWith(websocket.StatusPolicyViolation, "token revoked")
				return outcome{immediate: true, wasOnline: true}
			case cur.TokenGeneration != row.TokenGeneration:
				why = "token rotated"
				if cur.TokenRotationPending {
					if err := n.sendRotation(ctx, log, l.peer, cur); err != nil {
						why = "token rotated (the agent will be told on the next connection: " + err.Error() + ")"
					}
				}
			case cur.Host != row.Host || cur.Port != row.Port:
				why = "address changed"
			case cur.ExpectedThumbprint != "" && cur.ExpectedThumbprint != res.seen:
				why = "pinned thumbprint changed"
			default:
				continue
			}
			closeWith(websocket.StatusPolicyViolation, why)
			return outcome{status: store.NodeOffline, reason: why + "; reconnecting", immediate: true, wasOnline: true}
		case <-ticker.C:
			if pinging || n.m.frozen.Load() {
				continue
			}
			pinging = true
			go func() {
				pctx, cancel := context.WithTimeout(ctx, o.PingTimeout)
				defer cancel()
				pongs <- res.conn.Ping(pctx)
			}()
		case err := <-pongs:
			pinging = false
			if err != nil {
				if l.peer.Err() != nil {
					return outcome{status: store.NodeOffline, reason: "connection lost: " + errText(l.peer.Err()), wasOnline: true}
				}
				_ = res.conn.CloseNow()
				return outcome{status: store.NodeOffline, reason: fmt.Sprintf("no answer to ping within %s", o.PingTimeout), wasOnline: true}
			}
			now := time.Now()
			n.mu.Lock()
			n.lastSeen = now
			n.mu.Unlock()
			if now.Sub(lastTouch) >= touchEvery {
				lastTouch = now
				if err := o.Store.TouchNode(ctx, n.id); err != nil && ctx.Err() == nil {
					log.Warn().Err(err).Msg("record last seen")
				}
			}
		}
	}
}

func errText(err error) string {
	if err == nil {
		return "closed"
	}
	if st := websocket.CloseStatus(err); st != -1 {
		var ce websocket.CloseError
		if errors.As(err, &ce) && ce.Reason != "" {
			return "agent closed the connection: " + ce.Reason
		}
		return "agent closed the connection (" + st.String() + ")"
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "the connection was closed (agent stopped or network reset)"
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Error()
	}
	return err.Error()
}

// sendPlugins sends the plugin catalog to a freshly connected agent.
func (n *node) sendPlugins(ctx context.Context, log zerolog.Logger, p *protocol.Peer) {
	ctx, cancel := context.WithTimeout(ctx, n.m.o.DialTimeout+n.m.o.PingTimeout)
	defer cancel()
	u, err := n.m.o.Plugins(ctx)
	if err == nil {
		_, err = protocol.CallPluginsUpdate.Do(ctx, p, u)
	}
	if err != nil && ctx.Err() == nil {
		log.Warn().Err(err).Msg("plugins.update after connect not delivered")
	}
}
