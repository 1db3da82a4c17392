package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nullops/nullops/server/errs"
)

// Replicas and node leases (docs/architecture.md, "Server ↔ agent channel",
// "Replicas and node leases"). Every nullops-server process registers as a
// replica and heartbeats; a node is dialled only by the replica holding its
// lease. Every change of ownership and every dial increases nodes.conn_epoch
// under the lease condition, in the same statement: the epoch is the
// fencing token. The agent refuses dials with an epoch lower than one it
// accepted, and the connection manager's writes for a node (event
// transactions, status, hello) only apply while conn_epoch still equals the
// epoch of the connection they come from. All lease times are the
// database's clock, so the replicas' clocks do not matter.

// ErrFenced is a write or dial for a node whose lease this replica no
// longer holds: another replica took it over (the connection epoch moved
// on). The caller drops the connection and forgets the node.
var ErrFenced = errs.Mark(errs.Conflict, "fenced", "the node's lease is held by another server replica")

// Replica is one row of replicas.
type Replica struct {
	ID          string    `json:"id"`
	APIURL      string    `json:"api_url"`
	StartedAt   time.Time `json:"started_at"`
	HeartbeatAt time.Time `json:"heartbeat_at"`
	// Up is how long it has been registered, by PostgreSQL's clock (only
	// LiveReplicas fills it in).
	Up time.Duration `json:"-"`
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

// leaseLive is the SQL condition of a node row's live lease: its owner's
// replica lease has not expired. A node's lease expires with its replica's
// (HeartbeatReplica extends all of them at once, whatever their number).
const leaseLive = `(owner_replica IS NOT NULL AND EXISTS (SELECT 1 FROM replicas lr
	WHERE lr.id = owner_replica AND lr.lease_expires_at > now()))`

// RegisterReplica inserts the replica (or refreshes it: a replica whose
// row was pruned while it was paused registers again), with its leases
// live for ttl.
func (s *Store) RegisterReplica(ctx context.Context, id, apiURL string, ttl time.Duration) error {
	if _, err := s.db.Exec(ctx, `INSERT INTO replicas (id, api_url, lease_expires_at) VALUES ($1, $2, now() + $3 * interval '1 millisecond')
		ON CONFLICT (id) DO UPDATE SET api_url = EXCLUDED.api_url, heartbeat_at = now(), lease_expires_at = EXCLUDED.lease_expires_at`,
		id, apiURL, ms(ttl)); err != nil {
		return fmt.Errorf("register replica %s: %w", id, err)
	}
	return nil
}

// HeartbeatReplica records that the replica is alive and extends the
// leases of every node it owns to ttl from now. It reports false when its
// row is gone (pruned as dead while it was paused): it lost every lease
// and must register again.
func (s *Store) HeartbeatReplica(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	tag, err := s.db.Exec(ctx, `UPDATE replicas SET heartbeat_at = now(), lease_expires_at = now() + $2 * interval '1 millisecond'
		WHERE id = $1`, id, ms(ttl))
	if err != nil {
		return false, fmt.Errorf("heartbeat of replica %s: %w", id, err)
	}
	return tag.RowsAffected() > 0, nil
}

// DeleteReplica removes the replica's row, which releases every lease it
// holds (graceful shutdown: the other replicas take its nodes at once).
func (s *Store) DeleteReplica(ctx context.Context, id string) error {
	if _, err := s.db.Exec(ctx, `UPDATE nodes SET owner_replica = NULL, lease_expires_at = now() WHERE owner_replica = $1`, id); err != nil {
		return fmt.Errorf("release leases of replica %s: %w", id, err)
	}
	if _, err := s.db.Exec(ctx, `DELETE FROM replicas WHERE id = $1`, id); err != nil {
		return fmt.Errorf("delete replica %s: %w", id, err)
	}
	return nil
}

// LiveReplicas lists the replicas whose heartbeat is younger than ttl, by
// id.
func (s *Store) LiveReplicas(ctx context.Context, ttl time.Duration) ([]Replica, error) {
	rows, err := s.db.Query(ctx, `SELECT id, api_url, started_at, heartbeat_at,
			(EXTRACT(EPOCH FROM now() - started_at) * 1000)::bigint
		FROM replicas
		WHERE heartbeat_at > now() - $1 * interval '1 millisecond' ORDER BY id`, ms(ttl))
	if err != nil {
		return nil, fmt.Errorf("list live replicas: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Replica, error) {
		var x Replica
		var upMS int64
		err := r.Scan(&x.ID, &x.APIURL, &x.StartedAt, &x.HeartbeatAt, &upMS)
		x.Up = time.Duration(upMS) * time.Millisecond
		return x, err
	})
}

// GetReplica reads one replica (live or not).
func (s *Store) GetReplica(ctx context.Context, id string) (Replica, error) {
	var x Replica
	err := s.db.QueryRow(ctx, `SELECT id, api_url, started_at, heartbeat_at FROM replicas WHERE id = $1`, id).
		Scan(&x.ID, &x.APIURL, &x.StartedAt, &x.HeartbeatAt)
	if err != nil {
		return x, fmt.Errorf("replica %s: %w", id, notFound(err))
	}
	return x, nil
}

// PruneReplicas deletes replicas silent for longer than olderThan (which
// releases whatever leases they still held).
func (s *Store) PruneReplicas(ctx context.Context, olderThan time.Duration) (int64, error) {
	if _, err := s.db.Exec(ctx, `UPDATE nodes SET owner_replica = NULL, lease_expires_at = now()
		WHERE owner_replica IN (SELECT id FROM replicas WHERE heartbeat_at < now() - $1 * interval '1 millisecond')`, ms(olderThan)); err != nil {
		return 0, fmt.Errorf("release leases of silent replicas: %w", err)
	}
	tag, err := s.db.Exec(ctx, `DELETE FROM replicas WHERE heartbeat_at < now() - $1 * interval '1 millisecond'`, ms(olderThan))
	if err != nil {
		return 0, fmt.Errorf("prune replicas: %w", err)
	}
	return tag.RowsAffected(), nil
}

// NodeLease is the ownership of one connectable node.
type NodeLease struct {
	NodeID int64
	Owner  string // "" when released or never owned
	// Free: no owner, or the lease expired (any replica may take it).
	Free bool
	// FreeLong: free for longer than the grace asked for (nobody took it
	// since its lease ended, or since the node was created).
	FreeLong bool
}

// NodeLeases lists the leases of every node the connection manager dials
// (ConnectableNodes' rule), by node id; free is judged by the database's
// clock, freeLong after grace.
func (s *Store) NodeLeases(ctx context.Context, grace time.Duration) ([]NodeLease, error) {
	rows, err := s.db.Query(ctx, `SELECT n.id, COALESCE(n.owner_replica, ''),
		r.id IS NULL OR r.lease_expires_at <= now(),
		CASE WHEN r.id IS NULL THEN COALESCE(NULLIF(n.lease_expires_at, 'infinity'), n.created_at)
			ELSE r.lease_expires_at END < now() - $1 * interval '1 millisecond'
		FROM nodes n LEFT JOIN replicas r ON r.id = n.owner_replica
		WHERE NOT n.revoked OR n.token_revoke_pending ORDER BY n.id`, ms(grace))
	if err != nil {
		return nil, fmt.Errorf("list node leases: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (NodeLease, error) {
		var l NodeLease
		err := r.Scan(&l.NodeID, &l.Owner, &l.Free, &l.FreeLong)
		return l, err
	})
}

// AcquiredLease is a lease a replica just took: the new epoch is its
// fencing token.
type AcquiredLease struct {
	NodeID int64
	Epoch  int64
	Status string
}

// AcquireNodeLeases takes the leases of the nodes among ids that are free
// (no owner, expired, or still recorded as the replica's own from before
// it lost track of them), increasing each one's connection epoch in the
// same statement; they live as long as the replica's own lease
// (HeartbeatReplica). A node another replica holds is left alone, so two
// replicas never hold one node.
func (s *Store) AcquireNodeLeases(ctx context.Context, replica string, ids []int64) ([]AcquiredLease, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.db.Query(ctx, `UPDATE nodes SET owner_replica = $1, lease_expires_at = 'infinity',
		conn_epoch = conn_epoch + 1
		WHERE id = ANY($2) AND (NOT revoked OR token_revoke_pending)
		AND (owner_replica IS NULL OR owner_replica = $1 OR NOT `+leaseLive+`)
		RETURNING id, conn_epoch, status`, replica, ids)
	if err != nil {
		return nil, fmt.Errorf("acquire node leases: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (AcquiredLease, error) {
		var a AcquiredLease
		err := r.Scan(&a.NodeID, &a.Epoch, &a.Status)
		return a, err
	})
}

// OwnedNodes returns the nodes among ids that the replica still owns (a
// missing one was taken over or deleted). HeartbeatReplica renews them.
func (s *Store) OwnedNodes(ctx context.Context, replica string, ids []int64) ([]int64, error) {
	rows, err := s.db.Query(ctx, `SELECT id FROM nodes WHERE owner_replica = $1 AND id = ANY($2) ORDER BY id`, replica, ids)
	if err != nil {
		return nil, fmt.Errorf("owned nodes: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}

// ReleaseNodeLease gives up the replica's lease of a node (after its
// connection was closed), so another replica takes it at once.
func (s *Store) ReleaseNodeLease(ctx context.Context, replica string, id int64) error {
	if _, err := s.db.Exec(ctx, `UPDATE nodes SET owner_replica = NULL, lease_expires_at = now()
		WHERE id = $1 AND owner_replica = $2`, id, replica); err != nil {
		return fmt.Errorf("release lease of node %d: %w", id, err)
	}
	return nil
}

// NodeOwner is the replica holding a node's live lease.
type NodeOwner struct {
	Replica Replica
	Online  bool // the node's status is online
}

// GetNodeOwner returns the replica holding the node's live lease, or
// ErrNotFound when no replica does (or the node does not exist).
func (s *Store) GetNodeOwner(ctx context.Context, nodeID int64) (NodeOwner, error) {
	var o NodeOwner
	err := s.db.QueryRow(ctx, `SELECT r.id, r.api_url, r.started_at, r.heartbeat_at, n.status = 'online'
		FROM nodes n JOIN replicas r ON r.id = n.owner_replica
		WHERE n.id = $1 AND r.lease_expires_at > now()`, nodeID).
		Scan(&o.Replica.ID, &o.Replica.APIURL, &o.Replica.StartedAt, &o.Replica.HeartbeatAt, &o.Online)
	if err != nil {
		return o, fmt.Errorf("owner of node %d: %w", nodeID, notFound(err))
	}
	return o, nil
}

// NextConnEpoch increases and returns the node's connection epoch for a
// dial by replica, only while replica holds the node's live lease
// (ErrFenced otherwise).
func (s *Store) NextConnEpoch(ctx context.Context, id int64, replica string) (int64, error) {
	var e int64
	err := s.db.QueryRow(ctx, `UPDATE nodes SET conn_epoch = conn_epoch + 1
		WHERE id = $1 AND owner_replica = $2 AND `+leaseLive+` RETURNING conn_epoch`, id, replica).Scan(&e)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("next connection epoch of node %d: %w", id, ErrFenced)
	}
	if err != nil {
		return 0, fmt.Errorf("next connection epoch of node %d: %w", id, err)
	}
	return e, nil
}

// RaiseConnEpoch makes the node's connection epoch at least epoch (an agent
// reported a higher one), only while replica holds the node's live lease,
// and returns it.
func (s *Store) RaiseConnEpoch(ctx context.Context, id int64, replica string, epoch int64) (int64, error) {
	var e int64
	err := s.db.QueryRow(ctx, `UPDATE nodes SET conn_epoch = GREATEST(conn_epoch, $3)
		WHERE id = $1 AND owner_replica = $2 AND `+leaseLive+` RETURNING conn_epoch`, id, replica, epoch).Scan(&e)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("raise connection epoch of node %d: %w", id, ErrFenced)
	}
	if err != nil {
		return 0, fmt.Errorf("raise connection epoch of node %d: %w", id, err)
	}
	return e, nil
}

// CheckConnEpoch locks the node's row in tx and fails with ErrFenced when
// its connection epoch is no longer epoch: the first statement of every
// transaction applying a connection's events, so a replica that lost the
// node (paused past its lease, then resumed) can neither apply nor
// acknowledge anything.
func CheckConnEpoch(ctx context.Context, tx Querier, id, epoch int64) error {
	var cur int64
	err := tx.QueryRow(ctx, `SELECT conn_epoch FROM nodes WHERE id = $1 FOR UPDATE`, id).Scan(&cur)
	if err != nil {
		return fmt.Errorf("node %d: %w", id, notFound(err))
	}
	if cur != epoch {
		return fmt.Errorf("node %d: connection epoch %d, now %d: %w", id, epoch, cur, ErrFenced)
	}
	return nil
}

// OnlineHeldNodes lists the nodes that are online and held by a replica
// with a live lease.
func (s *Store) OnlineHeldNodes(ctx context.Context) ([]int64, error) {
	rows, err := s.db.Query(ctx, `SELECT id FROM nodes WHERE status = 'online' AND `+leaseLive+` ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list online nodes: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}
