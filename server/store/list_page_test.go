package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/nullops/nullops/server/store"
	"github.com/nullops/nullops/server/store/storetest"
)

// TestListDeploymentPageAgreesWithPlainSQL: the one-statement list (a
// user's grants walked grant by grant, each cut at offset+limit, the
// total bounded per grant) returns, for users with project grants,
// environment grants, both on the same rows, or none, and for admins,
// with every sort, direction, filter and page, exactly the rows and total
// of the plain query (one OR filter over the user's grants, the whole
// result sorted and sliced), each row's grant rank as UserGrantLevel
// gives it, its exposed services and its crashed services.
func TestListDeploymentPageAgreesWithPlainSQL(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := st.Pool.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	id := func(q string, args ...any) int64 {
		t.Helper()
		var v int64
		if err := st.Pool.QueryRow(ctx, q, args...).Scan(&v); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return v
	}
	var projects, envs, users []int64
	for i := range 3 {
		projects = append(projects, id(`INSERT INTO projects (name) VALUES ($1) RETURNING id`, fmt.Sprintf("proj-%c", 'c'-i)))
		envs = append(envs, id(`INSERT INTO environments (name, base_domain) VALUES ($1, 'x.test') RETURNING id`, fmt.Sprintf("env-%c", 'a'+i)))
		users = append(users, id(`INSERT INTO users (username, password_hash, role) VALUES ($1, 'x', 'user') RETURNING id`, fmt.Sprintf("user-%d", i)))
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	statuses := []string{"running", "running", "failed", "deploying", "deleted"}
	for _, p := range projects {
		v := id(`INSERT INTO pipeline_versions (project_id, version, graph) VALUES ($1, 1, '{"nodes":[],"edges":[]}') RETURNING id`, p)
		for i := range 40 {
			e := envs[rnd.IntN(len(envs))]
			var owner any
			if k := rnd.IntN(4); k < len(users) {
				owner = users[k]
			}
			d := id(`INSERT INTO deployments (name, project_id, environment_id, pipeline_version_id, status, owner_id, cpu, memory_mb, ttl_seconds, expires_at)
				VALUES ($1, $2, $3, $4, $5, $6, 0.1, 64, 3600, now() + make_interval(secs => $7)) RETURNING id`,
				fmt.Sprintf("d-%02d-%d", rnd.IntN(30), i), p, e, v, statuses[rnd.IntN(len(statuses))], owner, rnd.IntN(5000))
			for k := range rnd.IntN(3) {
				exec(`INSERT INTO deployment_services (deployment_id, node_key, image, tag, ingress, state, restart_count, last_exit_at)
					VALUES ($1, $2, 'img', 'v1', $3, $4, $5, CASE WHEN $5 > 0 THEN now() END)`,
					d, fmt.Sprintf("svc%d", k), rnd.IntN(2) == 0, []string{"running", "exited", ""}[rnd.IntN(3)], rnd.IntN(2))
			}
		}
	}
	grant := func(user int64, col string, target int64, level string) {
		team := id(`INSERT INTO teams (name) VALUES ($1) RETURNING id`, fmt.Sprintf("t-%d-%s-%d-%s", user, col, target, level))
		exec(`INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)`, team, user)
		exec(`INSERT INTO access_grants (team_id, `+col+`, level) VALUES ($1, $2, $3)`, team, target, level)
	}
	grant(users[0], "project_id", projects[0], "read") // one project
	grant(users[1], "environment_id", envs[1], "read") // one environment
	grant(users[1], "project_id", projects[2], "full") // and a project overlapping it
	grant(users[1], "environment_id", envs[2], "full")
	grant(users[1], "environment_id", envs[2], "read") // the same target twice
	// users[2]: no grant at all.
	exec(`ANALYZE`)

	viewers := []*int64{nil, &users[0], &users[1], &users[2]}
	var filters []store.DeploymentFilter
	for _, sort := range []string{"", "name", "status", "project", "environment", "owner", "created", "expires"} {
		for _, desc := range []bool{false, true} {
			filters = append(filters, store.DeploymentFilter{Sort: sort, Desc: desc})
		}
	}
	filters = append(filters,
		store.DeploymentFilter{Status: "running"}, store.DeploymentFilter{Status: "deleted"},
		store.DeploymentFilter{Query: "d-1"}, store.DeploymentFilter{OwnerID: users[1]},
		store.DeploymentFilter{ProjectID: projects[2], Sort: "name"}, store.DeploymentFilter{EnvironmentID: envs[2]})
	for _, viewer := range viewers {
		for _, f := range filters {
			f.VisibleTo = viewer
			want := plainList(t, st, f)
			for _, per := range []int{7, 50} {
				for off := 0; off <= len(want)+per; off += per {
					f.Limit, f.Offset = per, off
					name := fmt.Sprintf("viewer %v, %+v", viewer != nil, f)
					page, total, capped, err := st.ListDeploymentPage(ctx, f)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					var got []int64
					for _, it := range page {
						got = append(got, it.ID)
						checkListItem(t, st, name, viewer, it)
					}
					wantPage := want[min(off, len(want)):min(off+per, len(want))]
					if !slices.Equal(got, wantPage) || total != len(want) || capped {
						t.Fatalf("%s: page %v total %d capped %v; want %v total %d", name, got, total, capped, wantPage, len(want))
					}
				}
			}
		}
	}
}

// plainList is the reference: every matching id in list order.
func plainList(t *testing.T, st *store.Store, f store.DeploymentFilter) []int64 {
	t.Helper()
	ctx := context.Background()
	cond, args := "TRUE", []any{}
	add := func(c string, v any) {
		args = append(args, v)
		cond += fmt.Sprintf(" AND "+c, len(args))
	}
	if f.VisibleTo != nil {
		add(`(d.project_id IN (SELECT g.project_id FROM access_grants g JOIN team_members m ON m.team_id = g.team_id WHERE m.user_id = $%[1]d)
			OR d.environment_id IN (SELECT g.environment_id FROM access_grants g JOIN team_members m ON m.team_id = g.team_id WHERE m.user_id = $%[1]d))`, *f.VisibleTo)
	}
	if f.ProjectID != 0 {
		add("d.project_id = $%d", f.ProjectID)
	}
	if f.EnvironmentID != 0 {
		add("d.environment_id = $%d", f.EnvironmentID)
	}
	if f.Status != "" {
		add("d.status = $%d", f.Status)
	} else {
		cond += " AND d.status <> 'deleted'"
	}
	if f.OwnerID != 0 {
		add("d.owner_id = $%d", f.OwnerID)
	}
	if f.Query != "" {
		add("d.name ILIKE $%d", "%"+f.Query+"%")
	}
	order := "d.id DESC"
	if f.Sort != "" {
		dir := " ASC"
		if f.Desc {
			dir = " DESC"
		}
		order = store.DeploymentSorts[f.Sort] + dir + ", d.id" + dir
	}
	rows, err := st.Pool.Query(ctx, `SELECT d.id FROM deployments d JOIN projects p ON p.id = d.project_id
		JOIN environments e ON e.id = d.environment_id LEFT JOIN users u ON u.id = d.owner_id
		WHERE `+cond+` ORDER BY `+order, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// checkListItem compares what the list read next to a row with the
// single-row queries.
func checkListItem(t *testing.T, st *store.Store, name string, viewer *int64, it store.DeploymentListItem) {
	t.Helper()
	ctx := context.Background()
	wantRank := 0
	if viewer != nil {
		lvl, err := st.UserGrantLevel(ctx, *viewer, it.ProjectID, it.EnvironmentID)
		if err != nil {
			t.Fatal(err)
		}
		wantRank = map[string]int{"": 0, store.LevelRead: 1, store.LevelFull: 2}[lvl]
	}
	svcs, err := st.DeploymentServices(ctx, it.ID)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	var crashed []string
	for _, s := range svcs {
		if s.Ingress {
			keys = append(keys, s.NodeKey)
		}
		if it.Status == store.DeploymentRunning && (s.State == "restarting" || s.State == "exited" || s.State == "oom-killed" || s.LastExitAt != nil) {
			crashed = append(crashed, fmt.Sprintf("%s/%s/%d/%v", s.NodeKey, s.State, s.RestartCount, s.LastExitAt != nil))
		}
	}
	var gotCrashed []string
	for _, s := range it.Crashed {
		gotCrashed = append(gotCrashed, fmt.Sprintf("%s/%s/%d/%v", s.NodeKey, s.State, s.RestartCount, s.LastExitAt != nil))
	}
	if it.GrantRank != wantRank || !slices.Equal(it.IngressKeys, keys) || !slices.Equal(gotCrashed, crashed) {
		t.Fatalf("%s: deployment %d: rank %d, ingress %v, crashed %v; want %d, %v, %v", name, it.ID, it.GrantRank, it.IngressKeys, gotCrashed, wantRank, keys, crashed)
	}
}
