package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// RoutesChannel is the NOTIFY channel the triggers of migrations 000006 and
// 000030 signal whenever a column the ingress route table depends on
// changes. The payload names what changed: "d:<deployment id>",
// "n:<node id>" or "e:<environment id>" (server/ingresspub decodes it).
const RoutesChannel = "nullops_routes"

// RouteRow is one ingress-exposed service of a deployment that can appear in
// the ingress route table (pending, deploying, running or offline), with
// everything needed to name its host and reach it.
type RouteRow struct {
	DeploymentID     int64
	EnvironmentID    int64
	NodeID           int64 // 0 while the deployment is not placed
	DeploymentName   string
	DeploymentStatus string
	EnvironmentName  string
	BaseDomain       string
	HostTemplate     string
	NodeName         string // "" while the deployment is not placed
	NodeHost         string
	NodeStatus       string // "" while the deployment is not placed
	Service          string // deployment_services.node_key (pipeline node id)
	HostPort         int
	// RouteHost is where the agent says HostPort is reached when that is
	// not NodeHost (deployment_services.route_host); "" = NodeHost.
	RouteHost string
}

// BackendHost is the host the ingress sends the service's requests to:
// RouteHost when the agent reported one, else the node's host ("" while
// the deployment is not placed).
func (r RouteRow) BackendHost() string {
	if r.NodeHost == "" {
		return ""
	}
	if r.RouteHost != "" {
		return r.RouteHost
	}
	return r.NodeHost
}

// RouteRows lists the ingress-exposed services of every deployment that is
// pending, deploying, running or offline, ordered by deployment and service
// (byte order of the service key, as Go compares strings).
func (s *Store) RouteRows(ctx context.Context) ([]RouteRow, error) {
	return s.routeRows(ctx, "", nil)
}

// RouteRowsOf is RouteRows restricted to the deployments with one of the
// ids, or placed on one of the nodes, or in one of the environments: all
// the rows of each such deployment, none of any other.
func (s *Store) RouteRowsOf(ctx context.Context, deployments, nodes, environments []int64) ([]RouteRow, error) {
	if len(deployments)+len(nodes)+len(environments) == 0 {
		return nil, nil
	}
	return s.routeRows(ctx, `AND (d.id = ANY($1) OR d.node_id = ANY($2) OR d.environment_id = ANY($3))`,
		[]any{nonNil(deployments), nonNil(nodes), nonNil(environments)})
}

func nonNil(ids []int64) []int64 {
	if ids == nil {
		return []int64{}
	}
	return ids
}

func (s *Store) routeRows(ctx context.Context, where string, args []any) ([]RouteRow, error) {
	rows, err := s.db.Query(ctx, `
		SELECT d.id, d.environment_id, COALESCE(d.node_id, 0), d.name, d.status, e.name, e.base_domain, e.host_template,
		       COALESCE(n.name, ''), COALESCE(n.host, ''), COALESCE(n.status, ''),
		       ds.node_key, ds.host_port, ds.route_host
		FROM deployment_services ds
		JOIN deployments d ON d.id = ds.deployment_id
		JOIN environments e ON e.id = d.environment_id
		LEFT JOIN nodes n ON n.id = d.node_id
		WHERE ds.ingress AND d.status <> 'deleted' AND d.status IN ('pending', 'deploying', 'running', 'offline') `+where+`
		ORDER BY d.id, ds.node_key COLLATE "C"`, args...)
	if err != nil {
		return nil, fmt.Errorf("query routes: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RouteRow, error) {
		var x RouteRow
		err := r.Scan(&x.DeploymentID, &x.EnvironmentID, &x.NodeID, &x.DeploymentName, &x.DeploymentStatus, &x.EnvironmentName,
			&x.BaseDomain, &x.HostTemplate, &x.NodeName, &x.NodeHost, &x.NodeStatus, &x.Service, &x.HostPort, &x.RouteHost)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("read routes: %w", err)
	}
	return out, nil
}

// IngressActivity is the time the ingress last proxied a request to a
// deployment.
type IngressActivity struct {
	DeploymentID  int64
	LastRequestAt time.Time
}

// RecordIngressActivity moves last_activity_at of running deployments
// forward to the reported request times (capped at now) and sets expires_at
// to last_activity_at + ttl (never earlier than it already is), only in
// environments where traffic_is_activity is on. It returns how many
// deployments changed.
func (s *Store) RecordIngressActivity(ctx context.Context, items []IngressActivity) (int64, error) {
	if len(items) == 0 {
		return 0, nil
	}
	ids := make([]int64, len(items))
	ats := make([]time.Time, len(items))
	for i, it := range items {
		ids[i] = it.DeploymentID
		ats[i] = it.LastRequestAt
	}
	tag, err := s.db.Exec(ctx, `
		UPDATE deployments d
		SET last_activity_at = a.at,
		    expires_at = GREATEST(d.expires_at, a.at + d.ttl_seconds * interval '1 second')
		FROM (SELECT id, max(LEAST(at, now())) AS at
		      FROM unnest($1::bigint[], $2::timestamptz[]) AS u(id, at)
		      GROUP BY id) a,
		     environments e
		WHERE d.id = a.id AND e.id = d.environment_id AND e.traffic_is_activity
		  AND d.status = 'running' AND a.at > d.last_activity_at`, ids, ats)
	if err != nil {
		return 0, fmt.Errorf("record ingress activity: %w", err)
	}
	return tag.RowsAffected(), nil
}
