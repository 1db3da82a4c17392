package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// AgentEvent is one journaled agent event as recorded on the server.
type AgentEvent struct {
	NodeID        int64           `json:"node_id"`
	AgentInstance string          `json:"agent_instance"`
	Seq           int64           `json:"seq"`
	Type          string          `json:"type"`
	Body          json.RawMessage `json:"body"`
	ReceivedAt    time.Time       `json:"received_at"`
}

// nulEscape is a JSON-escaped NUL, which PostgreSQL's jsonb cannot hold.
var nulEscape = []byte(`\u0000`)

// InsertAgentEvent records an event inside the transaction that applies it.
// The key (node, agent instance, seq) makes delivery idempotent: it reports
// false, and changes nothing, when the event was recorded before.
func InsertAgentEvent(ctx context.Context, tx Querier, nodeID int64, instance string, seq uint64, typ string, body []byte) (bool, error) {
	if len(body) == 0 {
		body = []byte("null")
	}
	// jsonb rejects NUL characters; keep the event (a replacement character
	// instead) rather than block the node's journal forever.
	body = bytes.ReplaceAll(body, nulEscape, []byte(`\ufffd`))
	tag, err := tx.Exec(ctx, `INSERT INTO agent_events (node_id, agent_instance, seq, type, body)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (node_id, agent_instance, seq) DO NOTHING`,
		nodeID, instance, int64(seq), typ, body)
	if err != nil {
		return false, fmt.Errorf("record event %d of node %d: %w", seq, nodeID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// SetNodeAckedSeq records the highest applied seq of the node's current
// agent instance.
func SetNodeAckedSeq(ctx context.Context, tx Querier, nodeID int64, instance string, seq uint64) error {
	_, err := tx.Exec(ctx, `UPDATE nodes SET last_acked_seq = CASE WHEN agent_instance = $2
		THEN GREATEST(last_acked_seq, $3) ELSE $3 END, agent_instance = $2 WHERE id = $1`, nodeID, instance, int64(seq))
	if err != nil {
		return fmt.Errorf("record acked seq of node %d: %w", nodeID, err)
	}
	return nil
}

// ListAgentEvents returns the node's recorded events of one agent instance
// (every instance when empty) in seq order, at most limit.
func (s *Store) ListAgentEvents(ctx context.Context, nodeID int64, instance string, limit int) ([]AgentEvent, error) {
	rows, err := s.db.Query(ctx, `SELECT node_id, agent_instance, seq, type, body, received_at FROM agent_events
		WHERE node_id = $1 AND ($2 = '' OR agent_instance = $2) ORDER BY received_at, agent_instance, seq LIMIT $3`,
		nodeID, instance, limit)
	if err != nil {
		return nil, fmt.Errorf("list events of node %d: %w", nodeID, err)
	}
	defer rows.Close()
	out := []AgentEvent{}
	for rows.Next() {
		var e AgentEvent
		if err := rows.Scan(&e.NodeID, &e.AgentInstance, &e.Seq, &e.Type, &e.Body, &e.ReceivedAt); err != nil {
			return nil, fmt.Errorf("scan event: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list events of node %d: %w", nodeID, err)
	}
	return out, nil
}
