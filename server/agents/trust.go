package agents

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/store"
)

// The node's trust on the agent: token rotation and revocation reach the
// agent over the pinned channel, and what the agent refused or replaced is
// recorded on the node (node events + audit).

// trustRequestTimeout bounds token.rotate and token.revoke.
const trustRequestTimeout = 15 * time.Second

// auditActor is the actor name of entries the control plane records itself.
const auditActor = "system"

// channelAuditAction maps the agent's channel event kinds to audit actions.
var channelAuditAction = map[string]string{
	protocol.ChannelRefused:      "node.connection_refused",
	protocol.ChannelReplaced:     "node.connection_replaced",
	protocol.ChannelUnauthorized: "node.connection_unauthorized",
	protocol.ChannelTokenRotated: "node.agent_token_rotated",
	protocol.ChannelTokenRevoked: "node.agent_token_revoked",
}

// record stores a node event and its audit entry in one transaction.
func (m *Manager) record(ctx context.Context, q store.Querier, nodeID int64, ev store.NodeEvent, action string, detail map[string]any) error {
	ev.NodeID = nodeID
	if _, err := store.RecordNodeEvent(ctx, q, ev); err != nil {
		return err
	}
	if detail == nil {
		detail = map[string]any{}
	}
	detail["kind"], detail["source"] = ev.Kind, ev.Source
	if ev.Message != "" {
		detail["message"] = ev.Message
	}
	if ev.Remote != "" {
		detail["remote"] = ev.Remote
	}
	e := store.AuditEntry{ActorName: auditActor, Action: action, TargetType: "node",
		TargetID: strconv.FormatInt(nodeID, 10), ClientAddr: ev.Remote, Detail: detail}
	if n := m.node(nodeID); n != nil {
		n.mu.Lock()
		if n.envID != 0 {
			env := n.envID
			e.EnvironmentID = &env
		}
		n.mu.Unlock()
	}
	return store.RecordAudit(ctx, q, e)
}

// recordTx runs record in its own transaction, logging a failure.
func (m *Manager) recordTx(ctx context.Context, log zerolog.Logger, nodeID int64, ev store.NodeEvent, action string, detail map[string]any,
	also func(tx *store.Store) (bool, error)) {
	err := m.o.Store.InTx(ctx, func(tx *store.Store) error {
		if also != nil {
			changed, err := also(tx)
			if err != nil || !changed {
				return err
			}
		}
		return m.record(ctx, tx, nodeID, ev, action, detail)
	})
	if err != nil && ctx.Err() == nil {
		log.Error().Err(err).Str("kind", ev.Kind).Msg("record node event")
	}
}

// applyChannelEvent is the applier of the agent's journaled channel events:
// a node event (source agent) and an audit entry, in the event's
// transaction.
func (m *Manager) applyChannelEvent(ctx context.Context, tx *store.Store, nodeID int64, env protocol.Envelope) error {
	ev, err := protocol.DecodeBody[protocol.ChannelEvent](env)
	if err != nil {
		m.o.Log.Warn().Err(err).Int64("node_id", nodeID).Msg("malformed channel event skipped")
		return nil
	}
	m.o.Log.Warn().Int64("node_id", nodeID).Str("kind", ev.Kind).Str("remote", ev.Remote).Str("reason", ev.Reason).
		Msg("the agent reports a control-plane channel event")
	return m.record(ctx, tx, nodeID, store.NodeEvent{Kind: ev.Kind, Message: ev.Reason, Remote: ev.Remote, Source: "agent", At: ev.At},
		channelAuditAction[ev.Kind], map[string]any{"epoch": ev.Epoch})
}

// sendRotation hands the agent the verifier of the node's current token
// over p and, once the agent persisted it, completes the rotation.
func (n *node) sendRotation(ctx context.Context, log zerolog.Logger, p *protocol.Peer, row store.Node) error {
	o := n.m.o
	tok, err := o.Box.Open(row.TokenEnc, row.TokenKeyID, TokenAAD(row.ID))
	if err != nil {
		return fmt.Errorf("decrypt the node token: %w", err)
	}
	rctx, cancel := context.WithTimeout(ctx, trustRequestTimeout)
	defer cancel()
	_, err = protocol.CallTokenRotate.Do(rctx, p, protocol.TokenRotate{Verifier: protocol.TokenVerifier(string(tok)),
		Generation: row.TokenGeneration})
	if err != nil {
		log.Warn().Err(err).Msg("token rotation not applied by the agent")
		return err
	}
	n.rotationDone(ctx, log, row, "the agent received the new token's verifier over the pinned channel and refuses the old token")
	return nil
}

// rotationDone completes the rotation of row's token generation.
func (n *node) rotationDone(ctx context.Context, log zerolog.Logger, row store.Node, how string) {
	log.Info().Int("generation", row.TokenGeneration).Str("how", how).Msg("token rotation completed on the agent")
	n.m.recordTx(ctx, log, n.id, store.NodeEvent{Kind: store.NodeEventTokenRotated, Message: how},
		"node.token_rotation_completed", map[string]any{"token_generation": row.TokenGeneration},
		func(tx *store.Store) (bool, error) {
			return store.CompleteTokenRotation(ctx, tx, n.id, row.TokenGeneration)
		})
}

// sendRevocation tells the agent over p that its token is revoked and, once
// it acknowledged, forgets the token. It reports whether the agent was told.
func (n *node) sendRevocation(ctx context.Context, log zerolog.Logger, p *protocol.Peer, row store.Node) bool {
	rctx, cancel := context.WithTimeout(ctx, trustRequestTimeout)
	defer cancel()
	if _, err := protocol.CallTokenRevoke.Do(rctx, p, protocol.TokenRevoke{Reason: "revoked by an admin"}); err != nil {
		log.Warn().Err(err).Msg("revocation not applied by the agent; retrying on the next connection")
		return false
	}
	n.revocationDone(ctx, log, "the agent refuses every token until it is started with a new one")
	return true
}

func (n *node) revocationDone(ctx context.Context, log zerolog.Logger, how string) {
	log.Info().Str("how", how).Msg("token revocation delivered to the agent")
	n.m.recordTx(ctx, log, n.id, store.NodeEvent{Kind: store.NodeEventTokenRevoked, Message: how},
		"node.token_revocation_completed", nil,
		func(tx *store.Store) (bool, error) { return store.CompleteRevocation(ctx, tx, n.id) })
}

// deliverRevocation connects with the token the agent still accepts, only
// to tell it of the revocation. It reports whether the revocation is
// complete (told, or the agent refuses that token already).
func (n *node) deliverRevocation(ctx context.Context, log zerolog.Logger, row store.Node) bool {
	o := n.m.o
	prev, err := o.Box.Open(row.TokenPrevEnc, row.TokenPrevKeyID, TokenAAD(row.ID))
	if err != nil {
		log.Error().Err(err).Msg("cannot decrypt the revoked token; the agent cannot be told")
		n.revocationDone(ctx, log, "the revoked token cannot be decrypted; start the agent with a new token")
		return true
	}
	res, err := n.dial(ctx, row, string(prev))
	var refused *errRefused
	switch {
	case err == nil:
	case errors.Is(err, errUnauthorized):
		n.revocationDone(ctx, log, "the agent already refuses the revoked token")
		return true
	case errors.As(err, &refused):
		n.refusedByAgent(ctx, log, row, refused)
		return false
	case n.fenced(err):
		return false
	default:
		log.Debug().Err(err).Msg("revocation not delivered yet")
		return false
	}
	defer res.conn.CloseNow() //nolint:errcheck
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := protocol.NewPeer(res.conn, "s", func(context.Context, *protocol.Peer, protocol.Envelope) {})
	go p.Run(sctx) //nolint:errcheck // the error is Peer.Err
	hctx, hcancel := context.WithTimeout(sctx, o.DialTimeout)
	_, err = protocol.CallHello.Do(hctx, p, protocol.HelloRequest{ServerVersion: o.ServerVersion, ProtocolVersion: protocol.Version})
	hcancel()
	if err != nil {
		return false
	}
	done := n.sendRevocation(ctx, log, p, row)
	_ = res.conn.Close(websocket.StatusPolicyViolation, "token revoked")
	return done
}

// ackedElsewhere records that the agent's journal was acknowledged up to
// agentAcked while the control plane applied only row.LastAckedSeq: the
// server acknowledges an event only after committing it, so another
// connection holding the node token acknowledged the rest, and the agent's
// events in between (refusals, deployment events) were never seen here.
func (n *node) ackedElsewhere(ctx context.Context, log zerolog.Logger, row store.Node, agentAcked uint64) {
	msg := fmt.Sprintf("the agent's events %d to %d were acknowledged by another connection holding the node token and never "+
		"reached the control plane; if that is not expected, rotate the node token", row.LastAckedSeq+1, agentAcked)
	log.Warn().Int64("applied", row.LastAckedSeq).Uint64("agent_acked", agentAcked).Msg("agent journal acknowledged elsewhere")
	n.m.recordTx(ctx, log, n.id, store.NodeEvent{Kind: store.NodeEventAckedElsewhere, Message: msg,
		Remote: fmt.Sprintf("%s:%d", row.Host, row.Port)}, "node.events_acked_elsewhere",
		map[string]any{"applied_seq": row.LastAckedSeq, "agent_acked_seq": agentAcked}, nil)
}

// refusedByAgent handles a 409 from the agent: a stale epoch catches up
// with the agent's; a busy agent (a healthy connection exists, which is
// not ours) is recorded once per streak as a node event and audit entry.
func (n *node) refusedByAgent(ctx context.Context, log zerolog.Logger, row store.Node, r *errRefused) outcome {
	o := n.m.o
	if r.stale() {
		log.Warn().Uint64("agent_epoch", r.Epoch).Msg("the agent has seen a higher connection epoch; catching up")
		e, err := o.Store.RaiseConnEpoch(ctx, n.id, o.ReplicaID, int64(min(r.Epoch, 1<<62)))
		if n.fenced(err) {
			return outcome{}
		}
		if err != nil && ctx.Err() == nil {
			log.Error().Err(err).Msg("raise connection epoch")
		}
		if err == nil {
			n.setEpoch(e)
		}
		return outcome{status: store.NodeOffline, reason: "the agent refused a stale connection epoch; reconnecting"}
	}
	reason := "the agent refused this server's connection (" + r.Reason + "): another caller holding the node token may be " +
		"connected to it; if that is not expected, rotate the node token"
	if !n.refusedStreak {
		n.refusedStreak = true
		log.Warn().Str("reason", r.Reason).Msg("the agent refused our connection: another control-plane connection holds it")
		n.m.recordTx(ctx, log, n.id, store.NodeEvent{Kind: store.NodeEventRefusedByAgent, Message: r.Reason,
			Remote: fmt.Sprintf("%s:%d", row.Host, row.Port)}, "node.connection_refused_by_agent", nil, nil)
	}
	return outcome{status: store.NodeOffline, reason: reason}
}
