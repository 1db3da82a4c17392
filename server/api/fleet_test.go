package api_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/api/apitest"
	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/store"
)

func init() {
	matrix = append(matrix, route{Route: "GET /api/v1/nodes", Rule: adminOnly, OK: 200})
}

// TestNodeReservationsAndFleet: an admin's node list and node show what the
// node's live deployments reserve (failed and deleted ones do not count);
// the fleet list has every environment's nodes with the environment's
// name; users see neither figures nor the fleet.
func TestNodeReservationsAndFleet(t *testing.T) {
	env := apitest.New(t)
	ctx := context.Background()
	qa, staging := env.Environment("qa"), env.Environment("staging")
	project := env.Project("shop")
	node := func(envID int64, name string) int64 {
		n, err := store.CreateNode(ctx, env.Store.Pool, store.NewNode{EnvironmentID: envID, Name: name, Host: "127.0.0.1", Port: 5000})
		if err != nil {
			t.Fatal(err)
		}
		return n.ID
	}
	n1, n2, n3 := node(qa, "node-1"), node(qa, "node-2"), node(staging, "big")
	insert := func(q string, args ...any) int64 {
		t.Helper()
		var id int64
		if err := env.Store.Pool.QueryRow(ctx, q, args...).Scan(&id); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return id
	}
	pv := insert(`INSERT INTO pipeline_versions (project_id, version, graph) VALUES ($1, 1, '{"nodes":[],"edges":[]}') RETURNING id`, project)
	dep := func(name string, nodeID int64, status string, cpu float64, mem int64) {
		insert(`INSERT INTO deployments (name, project_id, environment_id, node_id, pipeline_version_id, status, cpu, memory_mb, ttl_seconds, expires_at)
			VALUES ($1, $2, (SELECT environment_id FROM nodes WHERE id = $3), $3, $4, $5, $6, $7, 3600, now() + interval '1 hour') RETURNING id`,
			name, project, nodeID, pv, status, cpu, mem)
	}
	dep("a", n1, "running", 0.5, 256)
	dep("b", n1, "deleting", 0.25, 128)
	dep("c", n1, "failed", 1, 512)
	dep("d", n1, "deleted", 1, 512)
	dep("e", n3, "deploying", 2, 1024)

	var list restapi.List[restapi.Node]
	env.Admin.Get(apitest.Path("/environments/%d/nodes", qa)).Want(t, 200).Decode(t, &list)
	want := map[int64]restapi.NodeReservation{n1: {CPUs: 0.75, MemoryMB: 384, Deployments: 2}, n2: {}, n3: {CPUs: 2, MemoryMB: 1024, Deployments: 1}}
	if len(list.Items) != 2 {
		t.Fatalf("environment qa lists %d nodes", len(list.Items))
	}
	for _, it := range list.Items {
		if it.Reserved == nil || *it.Reserved != want[it.ID] {
			t.Errorf("%s reserves %+v, want %+v", it.Name, it.Reserved, want[it.ID])
		}
	}
	var one restapi.Node
	env.Admin.Get(apitest.Path("/nodes/%d", n1)).Want(t, 200).Decode(t, &one)
	if one.Reserved == nil || *one.Reserved != want[n1] {
		t.Errorf("GET /nodes/%d reserves %+v", n1, one.Reserved)
	}

	env.Admin.Get(apitest.Path("/nodes")).Want(t, 200).Decode(t, &list)
	if list.Total != 3 || len(list.Items) != 3 {
		t.Fatalf("fleet: %+v", list)
	}
	for i, w := range []struct {
		name, env string
	}{{"node-1", "qa"}, {"node-2", "qa"}, {"big", "staging"}} {
		it := list.Items[i]
		if it.Name != w.name || it.Environment != w.env || it.Reserved == nil || *it.Reserved != want[it.ID] {
			t.Errorf("fleet row %d: %+v %+v, want %s in %s reserving %+v", i, it, it.Reserved, w.name, w.env, want[it.ID])
		}
	}
	env.Admin.Get(apitest.Path("/nodes?per_page=1&page=3")).Want(t, 200).Decode(t, &list)
	if list.Total != 3 || len(list.Items) != 1 || list.Items[0].Name != "big" {
		t.Errorf("fleet page 3 of 1: %+v", list)
	}

	// A user with read on qa sees its nodes without any figure.
	u := env.User("carol", false)
	env.Grant(env.Team("carol-team", u.ID), store.ScopeEnvironment, qa, auth.Read)
	carol := env.Session(u)
	r := carol.Get(apitest.Path("/environments/%d/nodes", qa)).Want(t, 200)
	var raw struct {
		Items []map[string]json.RawMessage `json:"items"`
	}
	r.Decode(t, &raw)
	for _, it := range raw.Items {
		for _, k := range []string{"reserved", "capacity", "usage"} {
			if _, ok := it[k]; ok {
				t.Errorf("a user sees %q of a node", k)
			}
		}
	}
	carol.Get(apitest.Path("/nodes")).Want(t, 403)
}
