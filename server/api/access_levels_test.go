package api_test

import (
	"context"
	"testing"

	"github.com/nullops/nullops/server/api/apitest"
	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/config"
	"github.com/nullops/nullops/server/store"
)

// TestListsCarryTheCallersAccessAndLinks: every deployment (list and
// detail), project and environment says what the caller may do with it
// (computed by the authorizer), list rows carry their ingress URLs, and
// environments their URL pattern with scheme, host template and port, so
// the UI needs neither a grants probe nor a detail request per row.
func TestListsCarryTheCallersAccessAndLinks(t *testing.T) {
	env := apitest.New(t, func(c *config.Config) { c.Ingress.LinkScheme = "https"; c.Ingress.LinkPort = 8443 })
	ctx := context.Background()
	p1, p2 := env.Project("p1"), env.Project("p2")
	e1, e2 := env.Environment("e1"), env.Environment("e2")
	if _, err := env.Store.Pool.Exec(ctx, `UPDATE environments SET host_template = '<service>--<deployment>.<environment>.<base-domain>' WHERE id = $1`, e1); err != nil {
		t.Fatal(err)
	}
	alice := env.User("alice", false)
	team := env.Team("devs", alice.ID)
	env.Grant(team, store.ScopeProject, p1, auth.Read)
	env.Grant(team, store.ScopeEnvironment, e2, auth.Full)

	dep := func(name string, p, e int64) int64 {
		var id int64
		q := func(sql string, args ...any) {
			t.Helper()
			if err := env.Store.Pool.QueryRow(ctx, sql, args...).Scan(&id); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
		}
		var pv int64
		q(`INSERT INTO pipeline_versions (project_id, version, graph) VALUES ($1, (SELECT count(*)+1 FROM pipeline_versions WHERE project_id = $1), '{"nodes":[],"edges":[]}') RETURNING id`, p)
		pv = id
		q(`INSERT INTO deployments (name, project_id, environment_id, pipeline_version_id, status, cpu, memory_mb, ttl_seconds, expires_at)
			VALUES ($1, $2, $3, $4, 'running', 0.5, 256, 3600, now() + interval '1 hour') RETURNING id`, name, p, e, pv)
		dID := id
		q(`INSERT INTO deployment_services (deployment_id, node_key, image, tag, ingress) VALUES ($1, 'web', 'demo/web', 'v1', TRUE) RETURNING deployment_id`, dID)
		q(`INSERT INTO deployment_services (deployment_id, node_key, image, tag, ingress) VALUES ($1, 'db', 'demo/db', 'v1', FALSE) RETURNING deployment_id`, dID)
		return dID
	}
	d1, d2, d3 := dep("d1", p1, e1), dep("d2", p1, e2), dep("d3", p2, e2)
	dep("d4", p2, e1) // invisible to alice

	type row struct {
		ID     int64             `json:"id"`
		Name   string            `json:"name"`
		Access string            `json:"access"`
		URLs   map[string]string `json:"urls"`
	}
	var list struct{ Items []row }
	as := env.Session(alice)
	as.Get(apitest.Path("/deployments")).Want(t, 200).Decode(t, &list)
	want := map[int64]row{
		d1: {Access: "read", URLs: map[string]string{"web": "https://web--d1.e1.e1.test:8443"}},
		d2: {Access: "full", URLs: map[string]string{"web": "https://web.d2.e2.e2.test:8443"}},
		d3: {Access: "full", URLs: map[string]string{"web": "https://web.d3.e2.e2.test:8443"}},
	}
	if len(list.Items) != len(want) {
		t.Fatalf("alice lists %+v; want d1, d2, d3", list.Items)
	}
	for _, r := range list.Items {
		w := want[r.ID]
		if r.Access != w.Access || len(r.URLs) != 1 || r.URLs["web"] != w.URLs["web"] {
			t.Errorf("row %s: access %q urls %v; want %q %v", r.Name, r.Access, r.URLs, w.Access, w.URLs)
		}
		var one row
		as.Get(apitest.Path("/deployments/%d", r.ID)).Want(t, 200).Decode(t, &one)
		if one.Access != w.Access || one.URLs["web"] != w.URLs["web"] {
			t.Errorf("detail of %s: access %q urls %v; want %q %v", r.Name, one.Access, one.URLs, w.Access, w.URLs)
		}
	}

	type named struct {
		ID         int64  `json:"id"`
		Name       string `json:"name"`
		Access     string `json:"access"`
		URLPattern string `json:"url_pattern"`
	}
	levels := func(c *apitest.Client, path string) map[string]named {
		var l struct{ Items []named }
		c.Get(apitest.Path("%s", path)).Want(t, 200).Decode(t, &l)
		out := map[string]named{}
		for _, x := range l.Items {
			out[x.Name] = x
		}
		return out
	}
	// p2 is visible to alice through her environment grant only: she holds
	// nothing on the project itself.
	if got := levels(as, "/projects"); got["p1"].Access != "read" || got["p2"].Access != "none" {
		t.Errorf("alice's projects: %+v", got)
	}
	envs := levels(as, "/environments")
	if envs["e1"].Access != "none" || envs["e2"].Access != "full" {
		t.Errorf("alice's environments: %+v", envs)
	}
	if envs["e1"].URLPattern != "https://<service>--<deployment>.e1.e1.test:8443" || envs["e2"].URLPattern != "https://<service>.<deployment>.e2.e2.test:8443" {
		t.Errorf("url patterns: e1 %q, e2 %q", envs["e1"].URLPattern, envs["e2"].URLPattern)
	}
	var one named
	as.Get(apitest.Path("/projects/%d", p1)).Want(t, 200).Decode(t, &one)
	if one.Access != "read" {
		t.Errorf("GET /projects/p1 as alice: access %q", one.Access)
	}
	for _, path := range []string{"/projects", "/environments"} {
		for name, x := range levels(env.Admin, path) {
			if x.Access != "full" {
				t.Errorf("admin's %s %s: access %q", path, name, x.Access)
			}
		}
	}
	var all struct{ Items []row }
	env.Admin.Get(apitest.Path("/deployments")).Want(t, 200).Decode(t, &all)
	if len(all.Items) != 4 {
		t.Errorf("admin lists %d deployments, want 4", len(all.Items))
	}
	for _, r := range all.Items {
		if r.Access != "full" || r.URLs["web"] == "" {
			t.Errorf("admin's row %s: %+v", r.Name, r)
		}
	}
}
