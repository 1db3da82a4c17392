package api_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/api/apitest"
	"github.com/nullops/nullops/server/store"
)

// TestDeploymentListTotalIsCapped: GET /deployments stops counting at
// store.DeploymentCountCap and says so with total_capped; a narrower list
// gets its exact total and no total_capped field at all.
func TestDeploymentListTotalIsCapped(t *testing.T) {
	env := apitest.New(t)
	ctx := context.Background()
	pid, eid := env.Project("shop"), env.Environment("qa")
	var pv int64
	if err := env.Store.Pool.QueryRow(ctx, `INSERT INTO pipeline_versions (project_id, version, graph) VALUES ($1, 1, '{"nodes":[],"edges":[]}') RETURNING id`, pid).Scan(&pv); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Store.Pool.Exec(ctx, `INSERT INTO deployments (name, project_id, environment_id, pipeline_version_id, status, cpu, memory_mb, ttl_seconds, expires_at)
		SELECT 'pr-' || i, $1, $2, $3, 'running', 0.1, 64, 3600, now() + interval '1 hour' FROM generate_series(1, $4::int) i`,
		pid, eid, pv, store.DeploymentCountCap+10); err != nil {
		t.Fatal(err)
	}

	var list restapi.List[restapi.Deployment]
	decodeStrict(t, "GET /deployments", env.Admin.Get(apitest.Path("/deployments?per_page=25")).Want(t, 200).Body, &list)
	if len(list.Items) != 25 || list.Total != store.DeploymentCountCap || !list.TotalCapped {
		t.Errorf("first page: %d items, total %d capped %v; want 25, %d, true", len(list.Items), list.Total, list.TotalCapped, store.DeploymentCountCap)
	}

	body := env.Admin.Get(apitest.Path("/deployments?per_page=25&q=pr-100")).Want(t, 200).Body
	list = restapi.List[restapi.Deployment]{}
	decodeStrict(t, "GET /deployments?q=", body, &list)
	// pr-100 and pr-1000 … pr-1009.
	if list.Total != 11 || list.TotalCapped || bytes.Contains(body, []byte("total_capped")) {
		t.Errorf("narrowed: total %d capped %v; want exactly 11, no total_capped\n%s", list.Total, list.TotalCapped, body)
	}
}
