package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nullops/nullops/server/store"
)

// RouteSeed inserts, with plain SQL, the rows an ingress route depends on
// (environment, project, pipeline version, node, deployment, deployment
// services), for tests and benchmarks of the route publisher. It bypasses the
// domain packages on purpose: it sets up states directly.
type RouteSeed struct {
	st        *store.Store
	projectID int64
	versionID int64
}

func seedCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 2*time.Minute)
}

// NewRouteSeed creates a project with one pipeline version.
func NewRouteSeed(t testing.TB, st *store.Store) *RouteSeed {
	t.Helper()
	ctx, cancel := seedCtx()
	defer cancel()
	s := &RouteSeed{st: st}
	name := fmt.Sprintf("routes-%d", time.Now().UnixNano())
	if err := st.Pool.QueryRow(ctx, `INSERT INTO projects (name) VALUES ($1) RETURNING id`, name).Scan(&s.projectID); err != nil {
		t.Fatalf("seed project: %v", err)
	}
	if err := st.Pool.QueryRow(ctx, `INSERT INTO pipeline_versions (project_id, version, graph) VALUES ($1, 1, '{"nodes":[],"edges":[]}') RETURNING id`, s.projectID).Scan(&s.versionID); err != nil {
		t.Fatalf("seed pipeline version: %v", err)
	}
	return s
}

// Environment inserts an environment.
func (s *RouteSeed) Environment(t testing.TB, name, baseDomain, hostTemplate string, trafficIsActivity bool) int64 {
	t.Helper()
	return s.id(t, `INSERT INTO environments (name, base_domain, host_template, traffic_is_activity) VALUES ($1, $2, $3, $4) RETURNING id`,
		name, baseDomain, hostTemplate, trafficIsActivity)
}

// Node inserts a node with the given status.
func (s *RouteSeed) Node(t testing.TB, envID int64, name, host, status string) int64 {
	t.Helper()
	return s.id(t, `INSERT INTO nodes (environment_id, name, host, port, status) VALUES ($1, $2, $3, 5000, $4) RETURNING id`,
		envID, name, host, status)
}

// Deployment inserts a deployment on nodeID (0 = not placed) with the given
// status and TTL, last active an hour ago.
func (s *RouteSeed) Deployment(t testing.TB, envID, nodeID int64, name, status string, ttl time.Duration) int64 {
	t.Helper()
	var node any
	if nodeID != 0 {
		node = nodeID
	}
	return s.id(t, `INSERT INTO deployments (name, project_id, environment_id, node_id, pipeline_version_id, status, cpu, memory_mb, ttl_seconds, last_activity_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, 0.1, 64, $7::bigint, now() - interval '1 hour', now() - interval '1 hour' + $7::bigint * interval '1 second') RETURNING id`,
		name, s.projectID, envID, node, s.versionID, status, int64(ttl/time.Second))
}

// Service inserts a deployment service (pipeline node key) with a published
// host port.
func (s *RouteSeed) Service(t testing.TB, deploymentID int64, key string, hostPort int, ingress bool) {
	t.Helper()
	s.exec(t, `INSERT INTO deployment_services (deployment_id, node_key, image, tag, container_port, host_port, ingress) VALUES ($1, $2, 'img', 'v1', 8080, $3, $4)`,
		deploymentID, key, hostPort, ingress)
}

// BulkDeployments inserts n deployments named <prefix><i> (i from 1), each
// with one ingress service "web" on hostPort, in one statement; it returns
// their ids in order.
func (s *RouteSeed) BulkDeployments(t testing.TB, envID, nodeID int64, prefix, status string, n, hostPort int) []int64 {
	t.Helper()
	ctx, cancel := seedCtx()
	defer cancel()
	rows, err := s.st.Pool.Query(ctx, `
		WITH d AS (
			INSERT INTO deployments (name, project_id, environment_id, node_id, pipeline_version_id, status, cpu, memory_mb, ttl_seconds, expires_at)
			SELECT $1 || g, $2, $3, $4, $5, $6, 0.1, 64, 3600, now() + interval '1 hour'
			FROM generate_series(1, $7::int) g
			RETURNING id
		), s AS (
			INSERT INTO deployment_services (deployment_id, node_key, image, tag, container_port, host_port, ingress)
			SELECT id, 'web', 'img', 'v1', 8080, $8, TRUE FROM d
		)
		SELECT id FROM d ORDER BY id`, prefix, s.projectID, envID, nodeID, s.versionID, status, n, hostPort)
	if err != nil {
		t.Fatalf("seed %d deployments: %v", n, err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatalf("seed deployments: %v", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("seed deployments: %v", err)
	}
	return ids
}

// SetDeploymentStatus changes a deployment's status.
func (s *RouteSeed) SetDeploymentStatus(t testing.TB, id int64, status string) {
	t.Helper()
	s.exec(t, `UPDATE deployments SET status = $2 WHERE id = $1`, id, status)
}

// SetNodeStatus changes a node's status.
func (s *RouteSeed) SetNodeStatus(t testing.TB, id int64, status string) {
	t.Helper()
	s.exec(t, `UPDATE nodes SET status = $2 WHERE id = $1`, id, status)
}

// SetHostPort changes the published port of a deployment service.
func (s *RouteSeed) SetHostPort(t testing.TB, deploymentID int64, key string, port int) {
	t.Helper()
	s.exec(t, `UPDATE deployment_services SET host_port = $3 WHERE deployment_id = $1 AND node_key = $2`, deploymentID, key, port)
}

// Activity returns a deployment's last_activity_at and expires_at.
func (s *RouteSeed) Activity(t testing.TB, id int64) (lastActivity, expires time.Time) {
	t.Helper()
	ctx, cancel := seedCtx()
	defer cancel()
	if err := s.st.Pool.QueryRow(ctx, `SELECT last_activity_at, expires_at FROM deployments WHERE id = $1`, id).Scan(&lastActivity, &expires); err != nil {
		t.Fatalf("read activity of deployment %d: %v", id, err)
	}
	return lastActivity, expires
}

func (s *RouteSeed) id(t testing.TB, q string, args ...any) int64 {
	t.Helper()
	ctx, cancel := seedCtx()
	defer cancel()
	var id int64
	if err := s.st.Pool.QueryRow(ctx, q, args...).Scan(&id); err != nil {
		t.Fatalf("seed: %v", err)
	}
	return id
}

func (s *RouteSeed) exec(t testing.TB, q string, args ...any) {
	t.Helper()
	ctx, cancel := seedCtx()
	defer cancel()
	if _, err := s.st.Pool.Exec(ctx, q, args...); err != nil {
		t.Fatalf("seed: %v", err)
	}
}

// ProjectID is the id of the seed's project.
func (s *RouteSeed) ProjectID() int64 { return s.projectID }
