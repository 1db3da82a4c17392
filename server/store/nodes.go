package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/errs"
)

// Node statuses (docs/architecture.md, "Server ↔ agent channel").
const (
	NodeOnline       = "online"
	NodeOffline      = "offline"
	NodeUntrusted    = "untrusted"
	NodeIncompatible = "incompatible"
	NodeDisabled     = "disabled"
	NodeRevoked      = "revoked"
)

// Node is one row of nodes. The encrypted token never leaves the server.
type Node struct {
	ID            int64  `json:"id"`
	EnvironmentID int64  `json:"environment_id"`
	Name          string `json:"name"`
	// UID is the node's random, never-reused identifier: the agent labels
	// every Docker object with it (nullops.node_uid), so a fresh agent of
	// the same node finds what its predecessor left.
	UID                string            `json:"uid"`
	Host               string            `json:"host"`
	Port               int               `json:"port"`
	TokenEnc           []byte            `json:"-"`
	TokenKeyID         string            `json:"-"`
	TokenGeneration    int               `json:"token_generation"`
	ExpectedThumbprint string            `json:"expected_thumbprint"`
	SeenThumbprint     string            `json:"seen_thumbprint"`
	Status             string            `json:"status"`
	StatusReason       string            `json:"status_reason"`
	Enabled            bool              `json:"enabled"`
	Revoked            bool              `json:"revoked"`
	Labels             map[string]string `json:"labels"`
	AgentVersion       string            `json:"agent_version"`
	ProtocolVersion    int               `json:"protocol_version"`
	AgentInstance      string            `json:"agent_instance"`
	Capacity           protocol.Capacity `json:"capacity"`
	Usage              protocol.Usage    `json:"usage"`
	LastAckedSeq       int64             `json:"last_acked_seq"`
	LastSeenAt         *time.Time        `json:"last_seen_at"`
	// UnreachableSince is when the agent stopped answering (nil while
	// online); its deployments stay routed for agents.offlinegrace.
	UnreachableSince *time.Time `json:"unreachable_since"`
	CreatedAt        time.Time  `json:"created_at"`
	UpdatedAt        time.Time  `json:"updated_at"`
	// ConnEpoch is the epoch of the latest dial (sent to the agent, which
	// refuses lower ones).
	ConnEpoch int64 `json:"connection_epoch"`
	// TokenPrevEnc is the sealed token the agent still accepts while a
	// rotation (or an offline revocation) has not reached it yet.
	TokenPrevEnc   []byte `json:"-"`
	TokenPrevKeyID string `json:"-"`
	// TokenRotationPending: the token was rotated while the agent could not
	// be told; the rotation completes on its next connection.
	TokenRotationPending bool `json:"token_rotation_pending"`
	// TokenRevokePending: the token was revoked while the agent could not
	// be told; it is told on its next connection.
	TokenRevokePending bool `json:"token_revoke_pending"`
	// OwnerReplica is the server replica holding the node's lease ("" when
	// none); LeaseLive tells whether that lease has not expired (by the
	// database's clock). Only the owner dials the node (see replicas.go).
	OwnerReplica string `json:"-"`
	LeaseLive    bool   `json:"-"`
}

const nodeColumns = `id, environment_id, name, uid, host, port, token_enc, token_key_id, token_generation,
	expected_thumbprint, seen_thumbprint, status, status_reason, enabled, revoked, labels,
	agent_version, protocol_version, agent_instance, capacity, usage, last_acked_seq, last_seen_at,
	unreachable_since, created_at, updated_at, conn_epoch, token_prev_enc, token_prev_key_id, token_rotation_pending, token_revoke_pending,
	COALESCE(owner_replica, ''), ` + leaseLive

func scanNode(row pgx.Row) (Node, error) {
	var n Node
	var labels, capacity, usage []byte
	err := row.Scan(&n.ID, &n.EnvironmentID, &n.Name, &n.UID, &n.Host, &n.Port, &n.TokenEnc, &n.TokenKeyID, &n.TokenGeneration,
		&n.ExpectedThumbprint, &n.SeenThumbprint, &n.Status, &n.StatusReason, &n.Enabled, &n.Revoked, &labels,
		&n.AgentVersion, &n.ProtocolVersion, &n.AgentInstance, &capacity, &usage, &n.LastAckedSeq, &n.LastSeenAt,
		&n.UnreachableSince, &n.CreatedAt, &n.UpdatedAt, &n.ConnEpoch, &n.TokenPrevEnc, &n.TokenPrevKeyID, &n.TokenRotationPending, &n.TokenRevokePending,
		&n.OwnerReplica, &n.LeaseLive)
	if err != nil {
		return n, notFound(err)
	}
	n.Labels = map[string]string{}
	// These columns are only ever written from typed values; a malformed
	// one reads as empty rather than hiding the node.
	_ = json.Unmarshal(labels, &n.Labels)
	_ = json.Unmarshal(capacity, &n.Capacity)
	_ = json.Unmarshal(usage, &n.Usage)
	return n, nil
}

// NewNode is what an admin enters to add a node.
type NewNode struct {
	EnvironmentID      int64
	Name               string
	Host               string
	Port               int
	ExpectedThumbprint string
	Labels             map[string]string
}

// CreateNode inserts a node without a token (the caller seals one with the
// node's id as associated data and stores it with SetNodeToken in the same
// transaction). A duplicate name in the environment is ErrConflict; an
// unknown environment is ErrNotFound.
func CreateNode(ctx context.Context, q Querier, n NewNode) (Node, error) {
	labels, err := json.Marshal(nonNilLabels(n.Labels))
	if err != nil {
		return Node{}, fmt.Errorf("encode labels: %w", err)
	}
	node, err := scanNode(q.QueryRow(ctx, `INSERT INTO nodes (environment_id, name, host, port, expected_thumbprint, labels)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+nodeColumns,
		n.EnvironmentID, n.Name, n.Host, n.Port, n.ExpectedThumbprint, labels))
	switch {
	case IsUniqueViolation(err):
		return Node{}, fmt.Errorf("%w: a node named %q exists in this environment", ErrConflict, n.Name)
	case IsForeignKeyViolation(err):
		return Node{}, fmt.Errorf("environment %d: %w", n.EnvironmentID, ErrNotFound)
	case err != nil:
		return Node{}, fmt.Errorf("create node: %w", err)
	}
	return node, nil
}

func nonNilLabels(l map[string]string) map[string]string {
	if l == nil {
		return map[string]string{}
	}
	return l
}

// SetNodeToken stores a newly sealed token, bumps the token generation (so
// a connection made with the previous token is recognised as stale) and
// clears a revocation. The token the agent accepts now is kept sealed as
// the previous one, with the rotation pending, until the connection
// manager has handed the agent the new token's verifier (an earlier
// pending one is kept: the agent still knows only that). After a
// revocation there is none: the agent must be started with the new token.
// The status becomes offline unless the node is disabled; the connection
// manager takes it from there.
func SetNodeToken(ctx context.Context, q Querier, id int64, enc []byte, keyID string) (Node, error) {
	n, err := scanNode(q.QueryRow(ctx, `UPDATE nodes SET
		token_prev_enc = CASE WHEN revoked THEN NULL WHEN token_rotation_pending THEN token_prev_enc ELSE token_enc END,
		token_prev_key_id = CASE WHEN revoked THEN '' WHEN token_rotation_pending THEN token_prev_key_id ELSE token_key_id END,
		token_rotation_pending = NOT revoked AND (token_rotation_pending OR token_enc IS NOT NULL),
		token_revoke_pending = FALSE,
		token_enc = $2, token_key_id = $3,
		token_generation = token_generation + 1, revoked = FALSE,
		status = 'offline', status_reason = 'waiting for the agent to use the new token',
		unreachable_since = COALESCE(unreachable_since, now()),
		updated_at = now()
		WHERE id = $1 RETURNING `+nodeColumns, id, enc, keyID))
	if err != nil {
		return n, fmt.Errorf("set token of node %d: %w", id, err)
	}
	return n, nil
}

// GetNode reads one node.
func (s *Store) GetNode(ctx context.Context, id int64) (Node, error) {
	n, err := scanNode(s.db.QueryRow(ctx, `SELECT `+nodeColumns+` FROM nodes WHERE id = $1`, id))
	if err != nil {
		return n, fmt.Errorf("node %d: %w", id, err)
	}
	return n, nil
}

// LockNode reads one node under a row lock.
func LockNode(ctx context.Context, tx Querier, id int64) (Node, error) {
	n, err := scanNode(tx.QueryRow(ctx, `SELECT `+nodeColumns+` FROM nodes WHERE id = $1 FOR UPDATE`, id))
	if err != nil {
		return n, fmt.Errorf("node %d: %w", id, err)
	}
	return n, nil
}

// EnvironmentExists reports whether the environment exists.
func (s *Store) EnvironmentExists(ctx context.Context, id int64) (bool, error) {
	var ok bool
	if err := s.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM environments WHERE id = $1)`, id).Scan(&ok); err != nil {
		return false, fmt.Errorf("look up environment %d: %w", id, err)
	}
	return ok, nil
}

// ListNodes pages through the nodes of an environment by name.
func (s *Store) ListNodes(ctx context.Context, environmentID int64, limit, offset int) ([]Node, int, error) {
	var total int
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM nodes WHERE environment_id = $1`, environmentID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count nodes: %w", err)
	}
	rows, err := s.db.Query(ctx, `SELECT `+nodeColumns+` FROM nodes WHERE environment_id = $1
		ORDER BY name, id LIMIT $2 OFFSET $3`, environmentID, limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("list nodes: %w", err)
	}
	nodes, err := collectNodes(rows)
	return nodes, total, err
}

// ConnectableNodes lists every node that is not revoked (disabled ones
// included: they drain), or whose agent has yet to be told of its
// revocation: those the connection manager dials.
func (s *Store) ConnectableNodes(ctx context.Context) ([]Node, error) {
	rows, err := s.db.Query(ctx, `SELECT `+nodeColumns+` FROM nodes WHERE NOT revoked OR token_revoke_pending ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list connectable nodes: %w", err)
	}
	return collectNodes(rows)
}

func collectNodes(rows pgx.Rows) ([]Node, error) {
	defer rows.Close()
	nodes := []Node{}
	for rows.Next() {
		n, err := scanNode(rows)
		if err != nil {
			return nil, fmt.Errorf("scan node: %w", err)
		}
		nodes = append(nodes, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	return nodes, nil
}

// NodePatch changes the editable fields that are not nil. Changing the
// expected thumbprint clears an untrusted state (the manager re-checks on
// the next connection).
type NodePatch struct {
	Name               *string
	Host               *string
	Port               *int
	ExpectedThumbprint *string
	Labels             *map[string]string
}

// UpdateNode applies p.
func UpdateNode(ctx context.Context, q Querier, id int64, p NodePatch) (Node, error) {
	var labels []byte
	if p.Labels != nil {
		var err error
		if labels, err = json.Marshal(nonNilLabels(*p.Labels)); err != nil {
			return Node{}, fmt.Errorf("encode labels: %w", err)
		}
	}
	n, err := scanNode(q.QueryRow(ctx, `UPDATE nodes SET
		name = COALESCE($2, name), host = COALESCE($3, host), port = COALESCE($4, port),
		expected_thumbprint = COALESCE($5, expected_thumbprint),
		labels = COALESCE($6::jsonb, labels),
		status = CASE WHEN $5::text IS NOT NULL AND status = 'untrusted' THEN 'offline' ELSE status END,
		status_reason = CASE WHEN $5::text IS NOT NULL AND status = 'untrusted' THEN '' ELSE status_reason END,
		updated_at = now()
		WHERE id = $1 RETURNING `+nodeColumns, id, p.Name, p.Host, p.Port, p.ExpectedThumbprint, labels))
	if IsUniqueViolation(err) {
		return Node{}, fmt.Errorf("%w: a node named %q exists in this environment", ErrConflict, *p.Name)
	}
	if err != nil {
		return Node{}, fmt.Errorf("update node %d: %w", id, err)
	}
	return n, nil
}

// RevokeNode marks the node revoked. Its token is no longer used to
// connect; the token the agent accepts is kept sealed, with the revocation
// pending, until the connection manager has told the agent (which then
// refuses every token until it is started with a new one).
func RevokeNode(ctx context.Context, q Querier, id int64) (Node, error) {
	n, err := scanNode(q.QueryRow(ctx, `UPDATE nodes SET
		token_prev_enc = CASE WHEN revoked OR token_rotation_pending THEN token_prev_enc ELSE token_enc END,
		token_prev_key_id = CASE WHEN revoked OR token_rotation_pending THEN token_prev_key_id ELSE token_key_id END,
		token_revoke_pending = CASE WHEN revoked THEN token_revoke_pending
			WHEN token_rotation_pending THEN token_prev_enc IS NOT NULL ELSE token_enc IS NOT NULL END,
		token_rotation_pending = FALSE,
		token_enc = NULL, token_key_id = '', revoked = TRUE,
		token_generation = token_generation + 1,
		status = 'revoked', status_reason = 'token revoked by an admin; rotate the token to use the node again',
		unreachable_since = COALESCE(unreachable_since, now()),
		updated_at = now() WHERE id = $1 RETURNING `+nodeColumns, id))
	if err != nil {
		return n, fmt.Errorf("revoke node %d: %w", id, err)
	}
	return n, nil
}

// SetNodeEnabled enables or disables a node. A disabled node drains: it
// stays connected (its status keeps telling whether the agent answers),
// its deployments keep running and routed and can be deleted, and it takes
// no new deployments.
func SetNodeEnabled(ctx context.Context, q Querier, id int64, enabled bool) (Node, error) {
	n, err := scanNode(q.QueryRow(ctx, `UPDATE nodes SET enabled = $2,
		status = CASE WHEN status = 'disabled' THEN 'offline' ELSE status END,
		updated_at = now() WHERE id = $1 RETURNING `+nodeColumns, id, enabled))
	if err != nil {
		return n, fmt.Errorf("set node %d enabled=%t: %w", id, enabled, err)
	}
	return n, nil
}

// ErrNodeInUse is returned when deleting a node that still has deployments.
var ErrNodeInUse = errs.Mark(errs.Conflict, "node_in_use", "node has deployments")

// DeleteNode deletes a node and its journal records. Deleted deployments
// that ran on it lose their node reference; live ones make it ErrNodeInUse.
func DeleteNode(ctx context.Context, tx Querier, id int64) error {
	var live int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM deployments WHERE node_id = $1 AND status <> 'deleted'`, id).Scan(&live); err != nil {
		return fmt.Errorf("count deployments of node %d: %w", id, err)
	}
	if live > 0 {
		return fmt.Errorf("%w: %d deployment(s) still on it; delete them first or disable the node", ErrNodeInUse, live)
	}
	if _, err := tx.Exec(ctx, `UPDATE deployments SET node_id = NULL WHERE node_id = $1`, id); err != nil {
		return fmt.Errorf("detach deleted deployments of node %d: %w", id, err)
	}
	tag, err := tx.Exec(ctx, `DELETE FROM nodes WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete node %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("node %d: %w", id, ErrNotFound)
	}
	return nil
}

// SetNodeStatus records the connection status of a non-revoked node (an
// admin's revoke always wins over a stale writer) and when it stopped
// answering. It reports whether the row changed.
func (s *Store) SetNodeStatus(ctx context.Context, id int64, status, reason string) (bool, error) {
	return s.SetNodeStatusFenced(ctx, id, 0, status, reason)
}

// SetNodeStatusFenced is SetNodeStatus by the connection of epoch (0: no
// fence): ErrFenced when the node's connection epoch moved on, so a
// replica that lost the node cannot overwrite what the new owner records.
func (s *Store) SetNodeStatusFenced(ctx context.Context, id, epoch int64, status, reason string) (bool, error) {
	tag, err := s.db.Exec(ctx, `UPDATE nodes SET status = $2, status_reason = $3, updated_at = now(),
		last_seen_at = CASE WHEN $2 = 'online' THEN now() ELSE last_seen_at END,
		unreachable_since = CASE WHEN $2 = 'online' THEN NULL ELSE COALESCE(unreachable_since, now()) END
		WHERE id = $1 AND NOT revoked AND (status <> $2 OR status_reason <> $3 OR $2 = 'online')
		AND ($4::bigint = 0 OR conn_epoch = $4)`, id, status, reason, epoch)
	if err != nil {
		return false, fmt.Errorf("set status of node %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 && epoch != 0 {
		if err := s.checkEpoch(ctx, id, epoch); err != nil {
			return false, fmt.Errorf("set status of node %d: %w", id, err)
		}
	}
	return tag.RowsAffected() > 0, nil
}

// checkEpoch is ErrFenced when the node's connection epoch is not epoch
// (or the node is gone).
func (s *Store) checkEpoch(ctx context.Context, id, epoch int64) error {
	var cur int64
	if err := s.db.QueryRow(ctx, `SELECT conn_epoch FROM nodes WHERE id = $1`, id).Scan(&cur); err != nil {
		return notFound(err)
	}
	if cur != epoch {
		return fmt.Errorf("connection epoch %d, now %d: %w", epoch, cur, ErrFenced)
	}
	return nil
}

// NodeHello is what a node's agent said in hello.
type NodeHello struct {
	Thumbprint      string
	AgentVersion    string
	ProtocolVersion int
	AgentInstance   string
	Capacity        protocol.Capacity
	Usage           protocol.Usage
}

// RecordHello stores what the agent reported and its thumbprint. When the
// node has no expected thumbprint yet, this one becomes it (trust on first
// use). It returns the expected thumbprint after the update, so a caller
// racing an admin's edit sees the admin's value. It applies only while the
// node's connection epoch is epoch (ErrFenced otherwise; 0: no fence).
func (s *Store) RecordHello(ctx context.Context, id, epoch int64, h NodeHello) (expected string, err error) {
	capacity, err := json.Marshal(h.Capacity)
	if err != nil {
		return "", err
	}
	usage, err := json.Marshal(h.Usage)
	if err != nil {
		return "", err
	}
	err = s.db.QueryRow(ctx, `UPDATE nodes SET
		expected_thumbprint = CASE WHEN expected_thumbprint = '' THEN $2 ELSE expected_thumbprint END,
		seen_thumbprint = $2, agent_version = $3, protocol_version = $4,
		last_acked_seq = CASE WHEN agent_instance = $5 THEN last_acked_seq ELSE 0 END,
		agent_instance = $5, capacity = $6, usage = $7, last_seen_at = now(), updated_at = now()
		WHERE id = $1 AND ($8::bigint = 0 OR conn_epoch = $8) RETURNING expected_thumbprint`,
		id, h.Thumbprint, h.AgentVersion, h.ProtocolVersion, h.AgentInstance, capacity, usage, epoch).Scan(&expected)
	if errors.Is(err, pgx.ErrNoRows) && epoch != 0 {
		if cerr := s.checkEpoch(ctx, id, epoch); cerr != nil {
			err = cerr
		}
	}
	if err != nil {
		return "", fmt.Errorf("record hello of node %d: %w", id, notFound(err))
	}
	return expected, nil
}

// SetNodeUntrusted records a thumbprint that does not match the expected
// one and marks the node untrusted.
func (s *Store) SetNodeUntrusted(ctx context.Context, id int64, seen, reason string) (bool, error) {
	return s.SetNodeUntrustedFenced(ctx, id, 0, seen, reason)
}

// SetNodeUntrustedFenced is SetNodeUntrusted by the dial of epoch (0: no
// fence; nothing changes once the epoch moved on).
func (s *Store) SetNodeUntrustedFenced(ctx context.Context, id, epoch int64, seen, reason string) (bool, error) {
	tag, err := s.db.Exec(ctx, `UPDATE nodes SET seen_thumbprint = $2, status = 'untrusted', status_reason = $3, updated_at = now(),
		unreachable_since = COALESCE(unreachable_since, now())
		WHERE id = $1 AND NOT revoked AND (status <> 'untrusted' OR seen_thumbprint <> $2 OR status_reason <> $3)
		AND ($4::bigint = 0 OR conn_epoch = $4)`,
		id, seen, reason, epoch)
	if err != nil {
		return false, fmt.Errorf("mark node %d untrusted: %w", id, err)
	}
	return tag.RowsAffected() > 0, nil
}

// ApproveNodeThumbprint makes thumbprint the expected one and clears the
// untrusted status.
func ApproveNodeThumbprint(ctx context.Context, q Querier, id int64, thumbprint string) (Node, error) {
	n, err := scanNode(q.QueryRow(ctx, `UPDATE nodes SET expected_thumbprint = $2,
		status = CASE WHEN status = 'untrusted' THEN 'offline' ELSE status END,
		status_reason = CASE WHEN status = 'untrusted' THEN 'thumbprint approved; reconnecting' ELSE status_reason END,
		updated_at = now() WHERE id = $1 RETURNING `+nodeColumns, id, thumbprint))
	if err != nil {
		return n, fmt.Errorf("approve thumbprint of node %d: %w", id, err)
	}
	return n, nil
}

// SetNodeMetrics stores the capacity and usage an agent pushed.
func (s *Store) SetNodeMetrics(ctx context.Context, id int64, c protocol.Capacity, u protocol.Usage) error {
	return s.SetNodeMetricsFenced(ctx, id, 0, c, u)
}

// SetNodeMetricsFenced is SetNodeMetrics from the connection of epoch (0:
// no fence; nothing is stored once the epoch moved on).
func (s *Store) SetNodeMetricsFenced(ctx context.Context, id, epoch int64, c protocol.Capacity, u protocol.Usage) error {
	capacity, err := json.Marshal(c)
	if err != nil {
		return err
	}
	usage, err := json.Marshal(u)
	if err != nil {
		return err
	}
	tag, err := s.db.Exec(ctx, `UPDATE nodes SET capacity = $2, usage = $3, last_seen_at = now()
		WHERE id = $1 AND ($4::bigint = 0 OR conn_epoch = $4)`,
		id, capacity, usage, epoch)
	if err != nil {
		return fmt.Errorf("store metrics of node %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 && epoch != 0 {
		if err := s.checkEpoch(ctx, id, epoch); err != nil {
			return fmt.Errorf("store metrics of node %d: %w", id, err)
		}
	}
	return nil
}

// TouchNode records that the node answered now.
func (s *Store) TouchNode(ctx context.Context, id int64) error {
	if _, err := s.db.Exec(ctx, `UPDATE nodes SET last_seen_at = now() WHERE id = $1`, id); err != nil {
		return fmt.Errorf("touch node %d: %w", id, err)
	}
	return nil
}

// CompleteTokenRotation forgets the previous token once the agent accepts
// the token of generation (a newer rotation in between keeps it pending).
// It reports whether the row changed.
func CompleteTokenRotation(ctx context.Context, q Querier, id int64, generation int) (bool, error) {
	tag, err := q.Exec(ctx, `UPDATE nodes SET token_prev_enc = NULL, token_prev_key_id = '', token_rotation_pending = FALSE,
		updated_at = now() WHERE id = $1 AND token_generation = $2 AND token_rotation_pending`, id, generation)
	if err != nil {
		return false, fmt.Errorf("complete token rotation of node %d: %w", id, err)
	}
	return tag.RowsAffected() > 0, nil
}

// CompleteRevocation forgets the revoked token once the agent was told.
func CompleteRevocation(ctx context.Context, q Querier, id int64) (bool, error) {
	tag, err := q.Exec(ctx, `UPDATE nodes SET token_prev_enc = NULL, token_prev_key_id = '', token_revoke_pending = FALSE,
		status_reason = 'token revoked by an admin; the agent refuses every token until it is started with a new one (rotate the token)',
		updated_at = now() WHERE id = $1 AND revoked AND token_revoke_pending`, id)
	if err != nil {
		return false, fmt.Errorf("complete revocation of node %d: %w", id, err)
	}
	return tag.RowsAffected() > 0, nil
}

// Node event kinds recorded by the server itself (the agent's are the
// protocol's channel event kinds).
const (
	NodeEventRefusedByAgent  = "refused_by_agent" // the agent refused this server's connection (409)
	NodeEventTokenRotated    = "token_rotated"    // the agent accepts only the new token now
	NodeEventTokenRevoked    = "token_revoked"    // the agent was told of the revocation
	NodeEventRotationPending = "rotation_pending" // rotated while the agent could not be told
	// NodeEventAckedElsewhere: the agent's journal was acknowledged past
	// what this control plane applied, by another connection holding the
	// token; the events in between never reached the server.
	NodeEventAckedElsewhere = "events_acked_elsewhere"
)

// NodeEvent is one entry of a node's channel history.
type NodeEvent struct {
	ID      int64     `json:"id"`
	NodeID  int64     `json:"node_id"`
	Kind    string    `json:"kind"`
	Message string    `json:"message"`
	Remote  string    `json:"remote"`
	Source  string    `json:"source"` // server or agent
	At      time.Time `json:"at"`
}

// RecordNodeEvent appends a node event (on the pool or in a transaction).
func RecordNodeEvent(ctx context.Context, q Querier, e NodeEvent) (NodeEvent, error) {
	if e.Source == "" {
		e.Source = "server"
	}
	at := e.At
	if at.IsZero() {
		at = time.Now()
	}
	err := q.QueryRow(ctx, `INSERT INTO node_events (node_id, kind, message, remote, source, at) VALUES ($1, $2, $3, $4, $5, $6)
		RETURNING id, at`, e.NodeID, e.Kind, e.Message, e.Remote, e.Source, at).Scan(&e.ID, &e.At)
	if err != nil {
		return e, fmt.Errorf("record event of node %d: %w", e.NodeID, err)
	}
	return e, nil
}

// ListNodeEvents pages through a node's events, newest first.
func (s *Store) ListNodeEvents(ctx context.Context, nodeID int64, limit, offset int) ([]NodeEvent, int, error) {
	var total int
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM node_events WHERE node_id = $1`, nodeID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count events of node %d: %w", nodeID, err)
	}
	rows, err := s.db.Query(ctx, `SELECT id, node_id, kind, message, remote, source, at FROM node_events
		WHERE node_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3`, nodeID, limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("list events of node %d: %w", nodeID, err)
	}
	defer rows.Close()
	out := []NodeEvent{}
	for rows.Next() {
		var e NodeEvent
		if err := rows.Scan(&e.ID, &e.NodeID, &e.Kind, &e.Message, &e.Remote, &e.Source, &e.At); err != nil {
			return nil, 0, fmt.Errorf("scan node event: %w", err)
		}
		out = append(out, e)
	}
	return out, total, rows.Err()
}
