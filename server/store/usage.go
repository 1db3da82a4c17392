package store

import (
	"context"
	"fmt"
	"time"
)

// UsageSample is one CPU and memory figure of a service container as an
// agent pushed it.
type UsageSample struct {
	DeploymentID int64
	Service      string // pipeline node id
	CPUPercent   float64
	MemoryBytes  int64
}

// UsageRing is the shape of the bounded usage history: one slot per Step,
// Slots of them per service (docs/architecture.md, "Usage history").
type UsageRing struct {
	Step  time.Duration
	Slots int
}

// Window is how far back the ring reaches.
func (r UsageRing) Window() time.Duration { return r.Step * time.Duration(r.Slots) }

// Slot is the ring slot a sample taken at t falls into.
func (r UsageRing) Slot(t time.Time) int {
	n := t.UnixNano() / int64(r.Step)
	return int(((n % int64(r.Slots)) + int64(r.Slots)) % int64(r.Slots))
}

// RecordUsage writes samples pushed by the agent of nodeID at time at into
// their ring slots, overwriting what the slot held. Only services of
// deployments placed on that node and deploying, running or offline are
// recorded: an agent cannot write figures for another node's deployments,
// and a deleted deployment gets no new history. It returns how many
// samples were recorded.
func (s *Store) RecordUsage(ctx context.Context, nodeID int64, at time.Time, ring UsageRing, samples []UsageSample) (int64, error) {
	if len(samples) == 0 {
		return 0, nil
	}
	// One row per service and push: ON CONFLICT cannot touch a row twice.
	type key struct {
		dep int64
		svc string
	}
	seen := make(map[key]bool, len(samples))
	var deps []int64
	var svcs []string
	var cpus []float64
	var mems []int64
	for _, m := range samples {
		k := key{m.DeploymentID, m.Service}
		if seen[k] {
			continue
		}
		seen[k] = true
		deps, svcs, cpus, mems = append(deps, m.DeploymentID), append(svcs, m.Service), append(cpus, m.CPUPercent), append(mems, m.MemoryBytes)
	}
	tag, err := s.db.Exec(ctx, `INSERT INTO service_usage (deployment_id, node_key, slot, at, cpu_percent, memory_bytes)
		SELECT ds.deployment_id, ds.node_key, $3, $2, s.cpu, s.mem
		FROM unnest($4::bigint[], $5::text[], $6::float8[], $7::bigint[]) AS s(dep, svc, cpu, mem)
		JOIN deployment_services ds ON ds.deployment_id = s.dep AND ds.node_key = s.svc
		JOIN deployments d ON d.id = ds.deployment_id
		WHERE d.node_id = $1 AND d.status IN ('deploying', 'running', 'offline')
		ON CONFLICT (deployment_id, node_key, slot) DO UPDATE
			SET at = EXCLUDED.at, cpu_percent = EXCLUDED.cpu_percent, memory_bytes = EXCLUDED.memory_bytes`,
		nodeID, at, ring.Slot(at), deps, svcs, cpus, mems)
	if err != nil {
		return 0, fmt.Errorf("record usage of node %d: %w", nodeID, err)
	}
	return tag.RowsAffected(), nil
}

// UsagePoint is one sample of the history.
type UsagePoint struct {
	At          time.Time
	CPUPercent  float64
	MemoryBytes int64
}

// DeploymentUsage returns the history of each service of a deployment
// taken after since, oldest first, keyed by pipeline node id. Callers pass
// a since no earlier than the ring's window before now: older slots are
// left-overs the pruning has not removed yet.
func (s *Store) DeploymentUsage(ctx context.Context, deploymentID int64, since time.Time) (map[string][]UsagePoint, error) {
	rows, err := s.db.Query(ctx, `SELECT node_key, at, cpu_percent, memory_bytes FROM service_usage
		WHERE deployment_id = $1 AND at > $2 ORDER BY node_key, at`, deploymentID, since)
	if err != nil {
		return nil, fmt.Errorf("usage of deployment %d: %w", deploymentID, err)
	}
	defer rows.Close()
	out := map[string][]UsagePoint{}
	for rows.Next() {
		var svc string
		var p UsagePoint
		if err := rows.Scan(&svc, &p.At, &p.CPUPercent, &p.MemoryBytes); err != nil {
			return nil, fmt.Errorf("scan usage: %w", err)
		}
		out[svc] = append(out[svc], p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("usage of deployment %d: %w", deploymentID, err)
	}
	return out, nil
}

// PruneUsage removes samples taken before cutoff (those of failed
// deployments, and slots a stopped push left behind) and returns how many.
func (s *Store) PruneUsage(ctx context.Context, cutoff time.Time) (int64, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM service_usage WHERE at < $1`, cutoff)
	if err != nil {
		return 0, fmt.Errorf("prune usage: %w", err)
	}
	return tag.RowsAffected(), nil
}

// UsageRows counts the stored samples of a deployment per service.
func (s *Store) UsageRows(ctx context.Context, deploymentID int64) (map[string]int, error) {
	rows, err := s.db.Query(ctx, `SELECT node_key, count(*) FROM service_usage WHERE deployment_id = $1 GROUP BY node_key`, deploymentID)
	if err != nil {
		return nil, fmt.Errorf("count usage of deployment %d: %w", deploymentID, err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return nil, fmt.Errorf("count usage of deployment %d: %w", deploymentID, err)
		}
		out[k] = n
	}
	return out, rows.Err()
}
