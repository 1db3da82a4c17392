package api_test

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/api/apitest"
)

// writtenState is what the writes of users, teams, grants, tokens and nodes
// can change, with their audit entries: one text per table, so a request
// that must change nothing is checked by comparing it before and after.
// Columns that reads themselves move (a token's last use) are left out.
func writtenState(t *testing.T, env *apitest.Env) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, table := range []string{"users", "teams", "team_members", "access_grants", "api_tokens", "nodes", "node_events", "deployments", "audit_log"} {
		var s string
		err := env.Store.Pool.QueryRow(context.Background(),
			`SELECT count(*)::text || ':' || coalesce(md5(string_agg((to_jsonb(x) - 'last_used_at' - 'last_seen_at')::text, '|' ORDER BY to_jsonb(x)::text)), '')
			 FROM `+table+` x`).Scan(&s)
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		out[table] = s
	}
	return out
}

// TestInvalidWritesChangeNothing: every write of users, teams, grants,
// tokens and nodes validates its fields in its domain package (auth,
// agents.Admin), and a deployment's name is deploy's to check: a bad request answers the one error body (400 "invalid",
// or 409 for a taken name, with the fields in details) exactly like the
// catalog's writes, names each bad field and nothing else, and writes
// nothing, not even an audit entry.
func TestInvalidWritesChangeNothing(t *testing.T) {
	env := apitest.New(t)
	user := env.User("uma", false)
	teamID := env.Team("ops")
	projectID := env.Project("shop")
	envID := env.Environment("qa")
	var created restapi.NodeCreated
	env.Admin.Post(apitest.Path("/environments/%d/nodes", envID), map[string]any{"name": "n1", "host": "10.0.0.9"}).
		Want(t, 201).Decode(t, &created)
	nodeID := created.Node.ID
	// A token that expires in a day only creates tokens that expire sooner.
	dayAhead := time.Now().Add(24 * time.Hour)
	short, _ := env.NewToken(env.Admin.User.ID, "short-lived", &dayAhead)
	shortClient := env.TokenClient(short)
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	future := time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	long := strings.Repeat("x", 1001)

	for _, tc := range []struct {
		name         string
		client       *apitest.Client
		method, path string
		body         any
		status       int
		code         string
		fields       []string
	}{
		{"user create", env.Admin, http.MethodPost, apitest.Path("/users"),
			map[string]any{"username": "Bad Name", "password": "short", "role": "root", "display_name": long}, 400, "invalid",
			[]string{"display_name", "password", "role", "username"}},
		{"user create taken", env.Admin, http.MethodPost, apitest.Path("/users"),
			map[string]any{"username": "uma", "password": "uma-password-22"}, 409, "conflict", []string{"username"}},
		{"user update", env.Admin, http.MethodPatch, apitest.Path("/users/%d", user.ID),
			map[string]any{"display_name": long, "role": "root", "active": false}, 400, "invalid", []string{"display_name", "role"}},
		{"password reset", env.Admin, http.MethodPut, apitest.Path("/users/%d/password", user.ID),
			map[string]any{"password": "short"}, 400, "invalid", []string{"password"}},
		{"own password, fields", env.Admin, http.MethodPut, apitest.Path("/me/password"),
			map[string]any{"current_password": "", "new_password": "aaaaaaaaaaaa"}, 400, "invalid",
			[]string{"current_password", "new_password"}},
		{"own password, wrong current", env.Admin, http.MethodPut, apitest.Path("/me/password"),
			map[string]any{"current_password": "not-the-password-1", "new_password": "a-fine-new-password-7"}, 400, "invalid",
			[]string{"current_password"}},
		{"team create", env.Admin, http.MethodPost, apitest.Path("/teams"), map[string]any{"description": long}, 400, "invalid",
			[]string{"description", "name"}},
		{"team create taken", env.Admin, http.MethodPost, apitest.Path("/teams"), map[string]any{"name": " ops "}, 409, "conflict",
			[]string{"name"}},
		{"team update", env.Admin, http.MethodPatch, apitest.Path("/teams/%d", teamID),
			map[string]any{"name": "  "}, 400, "invalid", []string{"name"}},
		{"grant", env.Admin, http.MethodPut, apitest.Path("/projects/%d/access/%d", projectID, teamID),
			map[string]any{"level": "owner"}, 400, "invalid", []string{"level"}},
		{"token name and past expiry", env.Admin, http.MethodPost, apitest.Path("/tokens"),
			map[string]any{"name": " ", "expires_at": past}, 400, "invalid", []string{"expires_at", "name"}},
		{"token two expiries", env.Admin, http.MethodPost, apitest.Path("/tokens"),
			map[string]any{"name": "ci", "expires_at": future, "expires_in_days": 3}, 400, "invalid", []string{"expires_at"}},
		{"token days", env.Admin, http.MethodPost, apitest.Path("/tokens"),
			map[string]any{"name": "ci", "expires_in_days": 0}, 400, "invalid", []string{"expires_in_days"}},
		{"token outliving its maker", shortClient, http.MethodPost, apitest.Path("/tokens"),
			map[string]any{"name": "ci"}, 400, "invalid", []string{"expires_at"}},
		{"token outliving its maker, days", shortClient, http.MethodPost, apitest.Path("/tokens"),
			map[string]any{"name": "ci", "expires_in_days": 30}, 400, "invalid", []string{"expires_in_days"}},
		{"node create", env.Admin, http.MethodPost, apitest.Path("/environments/%d/nodes", envID),
			map[string]any{"name": "-bad", "host": "http://x:5000", "port": 70000, "expected_thumbprint": "zz",
				"labels": map[string]string{"bad key": "v"}}, 400, "invalid",
			[]string{"expected_thumbprint", "host", "labels", "name", "port"}},
		{"node update", env.Admin, http.MethodPatch, apitest.Path("/nodes/%d", nodeID),
			map[string]any{"name": "", "host": "a b", "port": -1, "expected_thumbprint": "zz", "labels": map[string]string{"-": "x"}},
			400, "invalid", []string{"expected_thumbprint", "host", "labels", "name", "port"}},
		{"node approve", env.Admin, http.MethodPost, apitest.Path("/nodes/%d/approve-thumbprint", nodeID),
			map[string]any{"thumbprint": "zz"}, 400, "invalid", []string{"thumbprint"}},
		{"deployment create", env.Admin, http.MethodPost, apitest.Path("/deployments"),
			map[string]any{"project_id": projectID, "environment_id": envID, "name": "Bad_Name"}, 400, "invalid", []string{"name"}},
		{"placement dry run", env.Admin, http.MethodPost, apitest.Path("/placement/dry-run"),
			map[string]any{"project_id": projectID, "environment_id": envID, "name": "-x"}, 400, "invalid", []string{"name"}},
		// The catalog's answer, for comparison: the same body.
		{"catalog registry", env.Admin, http.MethodPost, apitest.Path("/registries"),
			map[string]any{"name": "Bad Name", "url": "ftp://x"}, 400, "invalid", []string{"name", "url"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := writtenState(t, env)
			r := tc.client.Do(tc.method, tc.path, tc.body).Want(t, tc.status)
			var body restapi.ErrorBody
			r.Decode(t, &body)
			if body.Error == nil || body.Error.Code != tc.code || body.Error.Message == "" {
				t.Fatalf("error body %s, want code %q and a message", r.Body, tc.code)
			}
			var got []string
			for f := range body.Error.Details {
				got = append(got, f)
			}
			sort.Strings(got)
			if strings.Join(got, " ") != strings.Join(tc.fields, " ") {
				t.Errorf("details name %q, want %q: %s", got, tc.fields, r.Body)
			}
			after := writtenState(t, env)
			for table, s := range before {
				if after[table] != s {
					t.Errorf("the refused request changed %s", table)
				}
			}
		})
	}
}
