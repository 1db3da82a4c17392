package store

import (
	"context"
	"fmt"
)

// CrashedServicesOf returns, in one query, the services of the given
// deployments that reported a crash — a state other than running, or an
// exit — with their crash details (deployments without any are absent).
func (s *Store) CrashedServicesOf(ctx context.Context, deploymentIDs []int64) (map[int64][]DeploymentService, error) {
	out := map[int64][]DeploymentService{}
	if len(deploymentIDs) == 0 {
		return out, nil
	}
	rows, err := s.db.Query(ctx, `SELECT deployment_id, node_key, state, restart_count, exit_code, last_exit_oom, last_exit_at
		FROM deployment_services
		WHERE deployment_id = ANY($1) AND (state IN ('restarting', 'exited', 'oom-killed') OR last_exit_at IS NOT NULL)
		ORDER BY deployment_id, node_key`, deploymentIDs)
	if err != nil {
		return nil, fmt.Errorf("crashed services of %d deployments: %w", len(deploymentIDs), err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var sv DeploymentService
		if err := rows.Scan(&id, &sv.NodeKey, &sv.State, &sv.RestartCount, &sv.ExitCode, &sv.LastExitOOM, &sv.LastExitAt); err != nil {
			return nil, fmt.Errorf("crashed services: %w", err)
		}
		out[id] = append(out[id], sv)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("crashed services: %w", err)
	}
	return out, nil
}
