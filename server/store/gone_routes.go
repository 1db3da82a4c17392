package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// GoneRouteRow is one ingress-exposed service of a deployment that was
// deleted, cancelled or expired, with the history entry that removed it.
type GoneRouteRow struct {
	DeploymentID    int64
	DeploymentName  string
	EnvironmentName string
	BaseDomain      string
	HostTemplate    string
	Service         string
	Action          string // deployment_history action: deleted, cancelled, expired
	ActorName       string
	At              time.Time
}

// MaxGoneRoutes bounds GoneRouteRows (the most recent ones are kept).
const MaxGoneRoutes = 20000

// GoneRouteRows lists the ingress-exposed services of deployments that are
// deleting or deleted and whose removal (the last deleted, cancelled or
// expired entry of their history) happened after since, oldest removal
// first, at most MaxGoneRoutes (the newest).
func (s *Store) GoneRouteRows(ctx context.Context, since time.Time) ([]GoneRouteRow, error) {
	rows, err := s.db.Query(ctx, `
		SELECT * FROM (
			SELECT d.id, d.name AS deployment, e.name AS environment, e.base_domain, e.host_template,
			       ds.node_key, h.action, h.actor_name, h.created_at
			FROM deployments d
			JOIN environments e ON e.id = d.environment_id
			JOIN deployment_services ds ON ds.deployment_id = d.id AND ds.ingress
			JOIN LATERAL (
				SELECT action, actor_name, created_at FROM deployment_history
				WHERE deployment_id = d.id AND action IN ('deleted', 'cancelled', 'expired')
				ORDER BY id DESC LIMIT 1) h ON TRUE
			WHERE (d.status = 'deleting' OR (d.status = 'deleted' AND d.deleted_at > $1))
			  AND h.created_at > $1
			ORDER BY h.created_at DESC, d.id DESC, ds.node_key
			LIMIT $2) g
		ORDER BY created_at, id, node_key`, since, MaxGoneRoutes)
	if err != nil {
		return nil, fmt.Errorf("query gone routes: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (GoneRouteRow, error) {
		var x GoneRouteRow
		err := r.Scan(&x.DeploymentID, &x.DeploymentName, &x.EnvironmentName, &x.BaseDomain, &x.HostTemplate,
			&x.Service, &x.Action, &x.ActorName, &x.At)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("read gone routes: %w", err)
	}
	return out, nil
}
