package agents

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/store"
)

// ackEvery bounds how many applied events may wait for one coalesced ack
// while more are queued.
const ackEvery = 64

// apply applies queued events in arrival order, one transaction each, and
// acknowledges them after commit (coalesced while more are queued: an ack
// covers every smaller seq).
func (l *link) apply(ctx context.Context, log zerolog.Logger, instance string) {
	var unacked uint64
	pending := 0
	for {
		var e protocol.Envelope
		select {
		case <-ctx.Done():
			return
		case e = <-l.events:
		}
		if e.Type == protocol.TypeMetrics {
			l.n.applyMetrics(ctx, log, e)
			continue
		}
		if err := l.n.m.applyEvent(ctx, log, l.n.id, l.epoch, instance, e); err != nil {
			if ctx.Err() == nil {
				log.Error().Err(err).Uint64("seq", e.Seq).Str("type", e.Type).Msg("event not applied; reconnecting to have it replayed")
				l.fail(err)
			}
			return
		}
		unacked = e.Seq
		pending++
		if len(l.events) > 0 && pending < ackEvery {
			continue
		}
		if err := protocol.MsgAck.Send(ctx, l.peer, protocol.Ack{Seq: unacked}); err != nil {
			return
		}
		pending = 0
	}
}

// applyEvent records and applies one journaled event in one transaction:
// the event row keyed (node, agent instance, seq) makes a replayed event a
// no-op; the appliers of its type run in the same transaction. A malformed
// event is recorded (so it is acknowledged and cannot stall the journal)
// but not applied. The transaction first locks the node's row and checks
// that its connection epoch is still epoch, the one of the connection the
// event came over: a replica that lost the node applies nothing
// (store.ErrFenced) and so acknowledges nothing.
func (m *Manager) applyEvent(ctx context.Context, log zerolog.Logger, nodeID, epoch int64, instance string, e protocol.Envelope) error {
	valid := protocol.ValidateEvent(e)
	if valid != nil {
		log.Warn().Err(valid).Uint64("seq", e.Seq).Str("type", e.Type).Msg("malformed event recorded but not applied")
	}
	appliers := m.appliersFor(e.Type)
	err := m.o.Store.InTx(ctx, func(tx *store.Store) error {
		if err := store.CheckConnEpoch(ctx, tx, nodeID, epoch); err != nil {
			return err
		}
		fresh, err := store.InsertAgentEvent(ctx, tx, nodeID, instance, e.Seq, e.Type, e.Body)
		if err != nil || !fresh {
			return err
		}
		if valid == nil {
			for _, a := range appliers {
				if err := a(ctx, tx, nodeID, e); err != nil {
					return fmt.Errorf("apply %s seq %d: %w", e.Type, e.Seq, err)
				}
			}
		}
		return store.SetNodeAckedSeq(ctx, tx, nodeID, instance, e.Seq)
	})
	if err != nil {
		return fmt.Errorf("node %d: %w", nodeID, err)
	}
	return nil
}

// applyMetrics stores pushed capacity and usage on the node row.
func (n *node) applyMetrics(ctx context.Context, log zerolog.Logger, e protocol.Envelope) {
	mt, err := protocol.DecodeBody[protocol.Metrics](e)
	if err != nil {
		log.Warn().Err(err).Msg("malformed metrics ignored")
		return
	}
	n.mu.Lock()
	n.capacity, n.usage = mt.Capacity, mt.Usage
	n.mu.Unlock()
	if err := n.m.o.Store.SetNodeMetricsFenced(ctx, n.id, n.curEpoch(), mt.Capacity, mt.Usage); err != nil {
		if !n.fenced(err) && ctx.Err() == nil {
			log.Warn().Err(err).Msg("store metrics")
		}
		return
	}
	n.m.fireMetrics(ctx, n.id, mt)
}
