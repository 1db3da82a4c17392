package store

import (
	"context"
	"fmt"
)

// Reservation is what the live deployments of a node have reserved on it
// (the figures placement counts; docs/deployments.md, "Placement").
type Reservation struct {
	CPUs        float64 `json:"cpus"`
	MemoryMB    int64   `json:"memory_mb"`
	Deployments int     `json:"deployments"`
}

// NodeReservations sums the reservations of the deployments on each of
// the nodes (nodes without any are absent from the map).
func (s *Store) NodeReservations(ctx context.Context, nodeIDs []int64) (map[int64]Reservation, error) {
	out := make(map[int64]Reservation, len(nodeIDs))
	if len(nodeIDs) == 0 {
		return out, nil
	}
	rows, err := s.db.Query(ctx, `SELECT node_id, COALESCE(sum(cpu), 0), COALESCE(sum(memory_mb), 0)::bigint, count(*) FROM deployments
		WHERE node_id = ANY($1) AND status = ANY($2) GROUP BY node_id`, nodeIDs, reservingStatuses)
	if err != nil {
		return nil, fmt.Errorf("node reservations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var r Reservation
		if err := rows.Scan(&id, &r.CPUs, &r.MemoryMB, &r.Deployments); err != nil {
			return nil, fmt.Errorf("scan node reservation: %w", err)
		}
		out[id] = r
	}
	return out, rows.Err()
}

// ListAllNodes pages through the nodes of every environment, by
// environment name, then node name.
func (s *Store) ListAllNodes(ctx context.Context, limit, offset int) ([]Node, int, error) {
	var total int
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM nodes`).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count nodes: %w", err)
	}
	rows, err := s.db.Query(ctx, `SELECT `+nodeColumns+` FROM nodes
		ORDER BY (SELECT e.name FROM environments e WHERE e.id = nodes.environment_id), name, id LIMIT $1 OFFSET $2`, limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("list nodes: %w", err)
	}
	nodes, err := collectNodes(rows)
	return nodes, total, err
}

// EnvironmentNames returns the names of the environments with the ids.
func (s *Store) EnvironmentNames(ctx context.Context, ids []int64) (map[int64]string, error) {
	out := make(map[int64]string, len(ids))
	rows, err := s.db.Query(ctx, `SELECT id, name FROM environments WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("environment names: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, fmt.Errorf("scan environment name: %w", err)
		}
		out[id] = name
	}
	return out, rows.Err()
}
