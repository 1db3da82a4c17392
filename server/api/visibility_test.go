package api_test

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"testing"

	"github.com/nullops/nullops/server/api/apitest"
	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/store"
)

// TestListAndSingleVisibilityAgree: for every resource (project,
// environment, deployment, node, audit entry) and every kind of caller, the
// list endpoint returns exactly the objects the single-object endpoint
// answers 200 for, and both are exactly what the authorizer's rule
// (auth.Visibility.Sees*) says; every listed row carries the level the
// authorizer gives.
func TestListAndSingleVisibilityAgree(t *testing.T) {
	env := apitest.New(t)
	ctx := context.Background()
	id := func(q string, args ...any) int64 {
		t.Helper()
		var v int64
		if err := env.Store.Pool.QueryRow(ctx, q, args...).Scan(&v); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return v
	}
	projects := []int64{env.Project("p1"), env.Project("p2"), env.Project("p3")}
	envs := []int64{env.Environment("e1"), env.Environment("e2"), env.Environment("e3")}
	type dep struct{ id, project, env int64 }
	var deps []dep
	for _, p := range projects {
		v := id(`INSERT INTO pipeline_versions (project_id, version, graph) VALUES ($1, 1, '{"nodes":[],"edges":[]}') RETURNING id`, p)
		for _, e := range envs {
			d := id(`INSERT INTO deployments (name, project_id, environment_id, pipeline_version_id, status, cpu, memory_mb, ttl_seconds, last_activity_at, expires_at)
				VALUES ($1, $2, $3, $4, 'running', 0.1, 64, 3600, now(), now() + interval '1 hour') RETURNING id`, fmt.Sprintf("d-%d-%d", p, e), p, e, v)
			deps = append(deps, dep{d, p, e})
		}
	}
	nodeEnv := map[int64]int64{}
	for i, e := range envs {
		n, err := store.CreateNode(ctx, env.Store, store.NewNode{EnvironmentID: e, Name: fmt.Sprint("n", i), Host: "127.0.0.1", Port: 1})
		if err != nil {
			t.Fatal(err)
		}
		nodeEnv[n.ID] = e
	}
	type entry struct{ project, environment *int64 }
	entries := map[int64]entry{}
	for _, sc := range []entry{{&projects[0], nil}, {nil, &envs[1]}, {&projects[1], &envs[0]}, {nil, nil}, {&projects[2], &envs[2]}} {
		e := store.SystemActor.Entry("vis.test", "x", nil, nil)
		e.ProjectID, e.EnvironmentID = sc.project, sc.environment
		if err := env.Store.Audit(ctx, e); err != nil {
			t.Fatal(err)
		}
		entries[id(`SELECT max(id) FROM audit_log`)] = sc
	}

	// Callers: admin; users with grants through one or two teams, with
	// project or environment grants at either level; users without any.
	type caller struct {
		name   string
		c      *apitest.Client
		p      *auth.Principal
		grants func(team func(...int64) int64, u int64)
	}
	callers := []caller{
		{name: "admin", c: env.Admin, p: &auth.Principal{UserID: env.Admin.User.ID, Admin: true}},
		{name: "no-team"},
		{name: "team-without-grants", grants: func(team func(...int64) int64, u int64) { team(u) }},
		{name: "read-on-p1", grants: func(team func(...int64) int64, u int64) {
			env.Grant(team(u), store.ScopeProject, projects[0], auth.Read)
		}},
		{name: "full-on-e1", grants: func(team func(...int64) int64, u int64) {
			env.Grant(team(u), store.ScopeEnvironment, envs[0], auth.Full)
		}},
		{name: "read-p2-full-p2-read-e2", grants: func(team func(...int64) int64, u int64) {
			env.Grant(team(u), store.ScopeProject, projects[1], auth.Read)
			t2 := team(u)
			env.Grant(t2, store.ScopeProject, projects[1], auth.Full)
			env.Grant(t2, store.ScopeEnvironment, envs[1], auth.Read)
		}},
	}
	teams := 0
	team := func(members ...int64) int64 { teams++; return env.Team(fmt.Sprint("team", teams), members...) }
	for i := range callers {
		if callers[i].c != nil {
			continue
		}
		u := env.User(callers[i].name, false)
		if callers[i].grants != nil {
			callers[i].grants(team, u.ID)
		}
		callers[i].c = env.Session(u)
		callers[i].p = &auth.Principal{UserID: u.ID, Username: u.Username}
	}

	type row struct {
		ID     int64  `json:"id"`
		Access string `json:"access"`
	}
	list := func(c *apitest.Client, path string) map[int64]string {
		t.Helper()
		var l struct{ Items []row }
		c.Get(path).Want(t, 200).Decode(t, &l)
		out := map[int64]string{}
		for _, r := range l.Items {
			out[r.ID] = r.Access
		}
		return out
	}
	ids := func(m map[int64]string) []int64 {
		out := []int64{}
		for k := range m {
			out = append(out, k)
		}
		sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
		return out
	}
	readable := func(c *apitest.Client, path string) bool {
		t.Helper()
		switch r := c.Get(path); r.Status {
		case 200:
			return true
		case 404:
			return false
		default:
			t.Fatalf("GET %s: %d %s", path, r.Status, r.Body)
			return false
		}
	}
	agree := func(who, what string, listed map[int64]string, all []int64, single func(int64) bool, rule func(int64) bool, level func(int64) auth.Level) {
		t.Helper()
		var bySingle, byRule []int64
		for _, x := range all {
			if single(x) {
				bySingle = append(bySingle, x)
			}
			if rule(x) {
				byRule = append(byRule, x)
			}
		}
		got := ids(listed)
		if !reflect.DeepEqual(got, append([]int64{}, bySingle...)) && !(len(got) == 0 && len(bySingle) == 0) {
			t.Errorf("%s, %s: the list shows %v, single reads allow %v", who, what, got, bySingle)
		}
		if !reflect.DeepEqual(bySingle, byRule) {
			t.Errorf("%s, %s: single reads allow %v, the authorizer's rule says %v", who, what, bySingle, byRule)
		}
		if level == nil {
			return
		}
		for x, access := range listed {
			if want := level(x).String(); access != want {
				t.Errorf("%s, %s %d: the list says access %q, the authorizer %q", who, what, x, access, want)
			}
		}
	}

	for _, cl := range callers {
		vis, err := env.App.Auth.Visible(ctx, cl.p)
		if err != nil {
			t.Fatal(err)
		}
		lv, err := env.App.Auth.Levels(ctx, cl.p)
		if err != nil {
			t.Fatal(err)
		}
		agree(cl.name, "projects", list(cl.c, apitest.Path("/projects?per_page=200")), projects,
			func(p int64) bool { return readable(cl.c, apitest.Path("/projects/%d", p)) },
			vis.SeesProject, func(p int64) auth.Level { return lv.Of(p, 0) })
		agree(cl.name, "environments", list(cl.c, apitest.Path("/environments?per_page=200")), envs,
			func(e int64) bool { return readable(cl.c, apitest.Path("/environments/%d", e)) },
			vis.SeesEnvironment, func(e int64) auth.Level { return lv.Of(0, e) })

		depOf := map[int64]dep{}
		var depIDs []int64
		for _, d := range deps {
			depOf[d.id] = d
			depIDs = append(depIDs, d.id)
		}
		agree(cl.name, "deployments", list(cl.c, apitest.Path("/deployments?per_page=200")), depIDs,
			func(d int64) bool { return readable(cl.c, apitest.Path("/deployments/%d", d)) },
			func(d int64) bool { return vis.SeesDeployment(depOf[d].project, depOf[d].env) },
			func(d int64) auth.Level {
				l, err := env.App.Auth.Level(ctx, cl.p, depOf[d].project, depOf[d].env)
				if err != nil {
					t.Fatal(err)
				}
				if l != lv.Of(depOf[d].project, depOf[d].env) {
					t.Errorf("%s, deployment %d: Level %v, Levels %v", cl.name, d, l, lv.Of(depOf[d].project, depOf[d].env))
				}
				return l
			})

		nodes := map[int64]string{}
		for _, e := range envs {
			r := cl.c.Get(apitest.Path("/environments/%d/nodes", e))
			if r.Status == 404 {
				continue
			}
			var l struct{ Items []row }
			r.Want(t, 200).Decode(t, &l)
			for _, n := range l.Items {
				nodes[n.ID] = ""
			}
		}
		var nodeIDs []int64
		for n := range nodeEnv {
			nodeIDs = append(nodeIDs, n)
		}
		sort.Slice(nodeIDs, func(i, j int) bool { return nodeIDs[i] < nodeIDs[j] })
		agree(cl.name, "nodes", nodes, nodeIDs,
			func(n int64) bool { return readable(cl.c, apitest.Path("/nodes/%d", n)) },
			func(n int64) bool { return vis.SeesNode(nodeEnv[n]) }, nil)

		// Audit entries have no single read: the list must match the rule.
		var audit struct{ Items []row }
		cl.c.Get(apitest.Path("/audit?action=vis.test&per_page=200")).Want(t, 200).Decode(t, &audit)
		listed := map[int64]string{}
		for _, r := range audit.Items {
			listed[r.ID] = ""
		}
		var entryIDs []int64
		for e := range entries {
			entryIDs = append(entryIDs, e)
		}
		sort.Slice(entryIDs, func(i, j int) bool { return entryIDs[i] < entryIDs[j] })
		ruled := func(e int64) bool { return vis.SeesAuditEntry(entries[e].project, entries[e].environment) }
		agree(cl.name, "audit entries", listed, entryIDs, func(e int64) bool { _, ok := listed[e]; return ok }, ruled, nil)
	}
}
