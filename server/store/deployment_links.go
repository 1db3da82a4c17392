package store

import (
	"context"
	"fmt"
)

// IngressServicesOf returns, in one query, the pipeline node ids of the
// services exposed through the ingress of each of the given deployments
// (ascending; deployments without any are absent from the map).
func (s *Store) IngressServicesOf(ctx context.Context, deploymentIDs []int64) (map[int64][]string, error) {
	out := map[int64][]string{}
	if len(deploymentIDs) == 0 {
		return out, nil
	}
	rows, err := s.db.Query(ctx, `SELECT deployment_id, node_key FROM deployment_services
		WHERE deployment_id = ANY($1) AND ingress ORDER BY deployment_id, node_key`, deploymentIDs)
	if err != nil {
		return nil, fmt.Errorf("ingress services of %d deployments: %w", len(deploymentIDs), err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var key string
		if err := rows.Scan(&id, &key); err != nil {
			return nil, fmt.Errorf("ingress services: %w", err)
		}
		out[id] = append(out[id], key)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ingress services: %w", err)
	}
	return out, nil
}
