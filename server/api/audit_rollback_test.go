package api_test

import (
	"context"
	"testing"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/api/apitest"
	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/store"
	"github.com/nullops/nullops/server/store/storetest"
)

// count runs a count query on the test database.
func count(t *testing.T, env *apitest.Env, q string, args ...any) int {
	t.Helper()
	var n int
	if err := env.Store.Pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// A user, team, membership, grant or token change whose audit entry cannot
// be written fails and leaves the database as it was.
func TestFailedAuditChangesNothingAccounts(t *testing.T) {
	env := apitest.New(t)
	u := env.User("rolf", false)
	team := env.Team("ops")
	pid := env.Project("shop")
	storetest.FailAudit(t, env.Store, "user.%")
	storetest.FailAudit(t, env.Store, "team.%")
	storetest.FailAudit(t, env.Store, "access.%")
	storetest.FailAudit(t, env.Store, "token.%")

	env.Admin.Post("/api/v1/users", map[string]any{"username": "sven", "password": "sven-password-2026"}).Want(t, 500)
	if n := count(t, env, "SELECT count(*) FROM users WHERE username = 'sven'"); n != 0 {
		t.Errorf("user created although its audit entry failed")
	}
	env.Admin.Patch(apitest.Path("/users/%d", u.ID), map[string]any{"active": false, "display_name": "X"}).Want(t, 500)
	env.Admin.Delete(apitest.Path("/users/%d", u.ID)).Want(t, 500)
	var got restapi.User
	env.Admin.Get(apitest.Path("/users/%d", u.ID)).Want(t, 200).Decode(t, &got)
	if !got.Active || got.DisplayName != u.DisplayName {
		t.Errorf("user changed although the audit entry failed: %+v", got)
	}
	env.Admin.Put(apitest.Path("/users/%d/password", u.ID), map[string]any{"password": "another-password-77"}).Want(t, 500)
	env.Login("rolf", apitest.DefaultPassword) // the old password still works

	env.Admin.Post("/api/v1/teams", map[string]any{"name": "qa"}).Want(t, 500)
	env.Admin.Patch(apitest.Path("/teams/%d", team), map[string]any{"name": "dev"}).Want(t, 500)
	env.Admin.Put(apitest.Path("/teams/%d/members/%d", team, u.ID), nil).Want(t, 500)
	env.Admin.Delete(apitest.Path("/teams/%d", team)).Want(t, 500)
	var teams restapi.List[restapi.Team]
	env.Admin.Get("/api/v1/teams").Want(t, 200).Decode(t, &teams)
	if teams.Total != 1 || teams.Items[0].Name != "ops" || teams.Items[0].Members != 0 {
		t.Errorf("teams changed although their audit entries failed: %+v", teams.Items)
	}

	env.Admin.Put(apitest.Path("/projects/%d/access/%d", pid, team), map[string]any{"level": "full"}).Want(t, 500)
	if n := count(t, env, "SELECT count(*) FROM access_grants"); n != 0 {
		t.Errorf("%d grants written although the audit entry failed", n)
	}
	env.Admin.Post("/api/v1/tokens", map[string]any{"name": "ci"}).Want(t, 500)
	if n := count(t, env, "SELECT count(*) FROM api_tokens"); n != 0 {
		t.Errorf("%d tokens written although the audit entry failed", n)
	}
}

// Removals and logins: the grant, membership and token stay, and a login
// whose audit entry fails opens no session.
func TestFailedAuditChangesNothingRemovals(t *testing.T) {
	env := apitest.New(t)
	u := env.User("rolf", false)
	team := env.Team("ops", u.ID)
	pid := env.Project("shop")
	env.Grant(team, store.ScopeProject, pid, auth.Read)
	var tok restapi.TokenCreated
	rolf := env.Session(u)
	rolf.Post("/api/v1/tokens", map[string]any{"name": "ci"}).Want(t, 201).Decode(t, &tok)
	storetest.FailAudit(t, env.Store, "%")

	env.Admin.Delete(apitest.Path("/projects/%d/access/%d", pid, team)).Want(t, 500)
	env.Admin.Delete(apitest.Path("/teams/%d/members/%d", team, u.ID)).Want(t, 500)
	rolf.Delete(apitest.Path("/tokens/%d", tok.ID)).Want(t, 500)
	if n := count(t, env, "SELECT count(*) FROM access_grants"); n != 1 {
		t.Errorf("grant removed although the audit entry failed")
	}
	if n := count(t, env, "SELECT count(*) FROM team_members"); n != 1 {
		t.Errorf("member removed although the audit entry failed")
	}
	if n := count(t, env, "SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL"); n != 1 {
		t.Errorf("token revoked although the audit entry failed")
	}
	sessions := count(t, env, "SELECT count(*) FROM sessions")
	env.Anonymous().Post("/api/v1/auth/login", map[string]any{"username": "rolf", "password": apitest.DefaultPassword}).Want(t, 500)
	rolf.Post("/api/v1/auth/logout", nil).Want(t, 500)
	if n := count(t, env, "SELECT count(*) FROM sessions"); n != sessions {
		t.Errorf("sessions %d, want %d: a login or logout whose audit entry failed changed them", n, sessions)
	}
}

// Node admin actions whose audit entry cannot be written change nothing
// (before, the change stayed and the failure was only logged).
func TestFailedAuditChangesNothingNodes(t *testing.T) {
	env := apitest.New(t)
	eid := env.Environment("qa")
	var created restapi.NodeCreated
	env.Admin.Post(apitest.Path("/environments/%d/nodes", eid), map[string]any{"name": "n1", "host": "127.0.0.1", "port": 1}).
		Want(t, 201).Decode(t, &created)
	n := created.Node
	ctx := context.Background()
	if _, err := env.Store.SetNodeUntrusted(ctx, n.ID, fixtureThumbprint, "test"); err != nil {
		t.Fatal(err)
	}
	before := nodeRow(t, env, n.ID)
	storetest.FailAudit(t, env.Store, "node.%")

	env.Admin.Post(apitest.Path("/environments/%d/nodes", eid), map[string]any{"name": "n2", "host": "127.0.0.1", "port": 2}).Want(t, 500)
	if c := count(t, env, "SELECT count(*) FROM nodes"); c != 1 {
		t.Errorf("%d nodes, want 1: a node was created although its audit entry failed", c)
	}
	env.Admin.Patch(apitest.Path("/nodes/%d", n.ID), map[string]any{"name": "renamed", "port": 7}).Want(t, 500)
	env.Admin.Post(apitest.Path("/nodes/%d/disable", n.ID), nil).Want(t, 500)
	env.Admin.Post(apitest.Path("/nodes/%d/rotate-token", n.ID), nil).Want(t, 500)
	env.Admin.Post(apitest.Path("/nodes/%d/approve-thumbprint", n.ID), nil).Want(t, 500)
	env.Admin.Post(apitest.Path("/nodes/%d/revoke", n.ID), nil).Want(t, 500)
	env.Admin.Delete(apitest.Path("/nodes/%d", n.ID)).Want(t, 500)
	if after := nodeRow(t, env, n.ID); after != before {
		t.Errorf("node changed although every audit entry failed:\n before %s\n after  %s", before, after)
	}
}

// nodeRow is the node's row as text (every column that an admin action changes).
func nodeRow(t *testing.T, env *apitest.Env, id int64) string {
	t.Helper()
	var s string
	err := env.Store.Pool.QueryRow(context.Background(), `SELECT concat_ws('|', name, host, port, enabled, revoked, token_generation,
		expected_thumbprint, encode(token_enc, 'hex'), labels::text, token_rotation_pending, token_revoke_pending) FROM nodes WHERE id = $1`, id).Scan(&s)
	if err != nil {
		t.Fatalf("node %d: %v", id, err)
	}
	return s
}

// catalogState is every catalog table's content as one string.
func catalogState(t *testing.T, env *apitest.Env) string {
	t.Helper()
	var out string
	for _, tbl := range []string{"registries", "services", "plugins", "secrets", "projects", "environments", "pipeline_versions"} {
		var s string
		err := env.Store.Pool.QueryRow(context.Background(),
			"SELECT coalesce(md5(string_agg(x::text, ',' ORDER BY x.id)), '') FROM "+tbl+" x").Scan(&s)
		if err != nil {
			t.Fatalf("%s: %v", tbl, err)
		}
		out += tbl + "=" + s + " "
	}
	return out
}

// Catalog writes whose audit entry cannot be written change nothing.
func TestFailedAuditChangesNothingCatalog(t *testing.T) {
	env := apitest.New(t)
	ids := catalogFixture(t, env)
	adm := env.Admin
	before := catalogState(t, env)
	storetest.FailAudit(t, env.Store, "%")

	for _, w := range []struct {
		method, path string
		body         any
	}{
		{"POST", apitest.Path("/registries"), map[string]any{"name": "r2", "url": "http://127.0.0.1:1"}},
		{"PUT", apitest.Path("/registries/1"), map[string]any{"name": "renamed", "url": "http://127.0.0.1:2"}},
		{"POST", apitest.Path("/services"), map[string]any{"name": "redis", "registry_id": 1, "image": "library/redis", "tag_mode": "pinned", "tag": "7"}},
		{"DELETE", apitest.Path("/services/%d", ids["backend-api"]), nil},
		{"POST", apitest.Path("/plugins"), map[string]any{"name": "p2", "registry_id": 1, "image": "x/p2", "tag": "v1", "docker_socket": true}},
		{"DELETE", apitest.Path("/plugins/%d", ids["postgres-create-db"]), nil},
		{"POST", apitest.Path("/secrets"), map[string]any{"name": "other", "value": "v"}},
		{"PUT", apitest.Path("/secrets/%d", ids["db_password"]), map[string]any{"value": "changed"}},
		{"DELETE", apitest.Path("/secrets/%d", ids["db_password"]), nil},
		{"POST", apitest.Path("/projects"), map[string]any{"name": "blog", "cpu": 1, "memory_mb": 512}},
		{"PUT", apitest.Path("/projects/%d", ids["shop"]), map[string]any{"name": "shop2", "cpu": 1, "memory_mb": 512}},
		{"DELETE", apitest.Path("/projects/%d", ids["shop"]), nil},
		{"POST", apitest.Path("/environments"), map[string]any{"name": "prod", "base_domain": "prod.example.com", "default_ttl": "1h"}},
		{"PUT", apitest.Path("/environments/%d", ids["qa"]), map[string]any{"name": "qa2", "base_domain": "qa2.example.com", "default_ttl": "1h"}},
		{"DELETE", apitest.Path("/environments/%d", ids["qa"]), nil},
		{"PUT", apitest.Path("/projects/%d/pipeline", ids["shop"]), designGraph},
	} {
		if r := adm.Do(w.method, w.path, w.body); r.Status != 500 {
			t.Errorf("%s %s: %d %s, want 500", w.method, w.path, r.Status, r.Body)
		}
	}
	if after := catalogState(t, env); after != before {
		t.Errorf("catalog changed although every audit entry failed:\n before %s\n after  %s", before, after)
	}
}

// Deployment actions whose audit entry cannot be written change nothing.
func TestFailedAuditChangesNothingDeployments(t *testing.T) {
	env := apitest.New(t)
	ctx := context.Background()
	pid, eid := env.Project("shop"), env.Environment("qa")
	var dep int64
	err := env.Store.Pool.QueryRow(ctx, `WITH v AS (INSERT INTO pipeline_versions (project_id, version, graph) VALUES ($1, 1, '{"nodes":[],"edges":[]}') RETURNING id)
		INSERT INTO deployments (name, project_id, environment_id, pipeline_version_id, status, cpu, memory_mb, ttl_seconds, last_activity_at, expires_at)
		SELECT 'pr-1', $1, $2, v.id, 'running', 0.1, 64, 3600, now() - interval '30 minutes', now() + interval '30 minutes' FROM v RETURNING id`, pid, eid).Scan(&dep)
	if err != nil {
		t.Fatal(err)
	}
	state := func() string {
		var s string
		if err := env.Store.Pool.QueryRow(ctx, `SELECT concat_ws('|', status, expires_at, last_activity_at, (SELECT count(*) FROM deployment_history h WHERE h.deployment_id = d.id))
			FROM deployments d WHERE id = $1`, dep).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := state()
	storetest.FailAudit(t, env.Store, "deployment.%")
	env.Admin.Post(apitest.Path("/deployments/%d/extend", dep), nil).Want(t, 500)
	env.Admin.Delete(apitest.Path("/deployments/%d", dep)).Want(t, 500)
	if after := state(); after != before {
		t.Errorf("deployment changed although its audit entry failed:\n before %s\n after  %s", before, after)
	}
}
