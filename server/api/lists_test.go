package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/api/apitest"
	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/store"
)

// listNames lists path as c and returns the names (or usernames) of the
// page in order, and the total.
func listNames(t *testing.T, c *apitest.Client, path string) ([]string, int) {
	t.Helper()
	var page struct {
		Items []struct {
			Name     string `json:"name"`
			Username string `json:"username"`
		} `json:"items"`
		Total int `json:"total"`
	}
	c.Get(apitest.Path("%s", path)).Want(t, 200).Decode(t, &page)
	out := []string{}
	for _, it := range page.Items {
		out = append(out, it.Name+it.Username)
	}
	return out, page.Total
}

// TestDeploymentListSearchSortMine: the deployments list searches names,
// keeps the caller's own ("mine"), sorts by every column it offers both
// ways, pages the result with the total of the filtered list, and answers
// 400 naming the parameter for a bad value.
func TestDeploymentListSearchSortMine(t *testing.T) {
	env := apitest.New(t)
	ctx := context.Background()
	shop, blog := env.Project("shop"), env.Project("blog")
	qa := env.Environment("qa")
	alice := env.User("alice", false)
	bob := env.User("bob", false)
	env.Grant(env.Team("devs", alice.ID, bob.ID), store.ScopeEnvironment, qa, auth.Full)

	pv := map[int64]int64{}
	for _, p := range []int64{shop, blog} {
		var id int64
		if err := env.Store.Pool.QueryRow(ctx, `INSERT INTO pipeline_versions (project_id, version, graph) VALUES ($1, 1, '{"nodes":[],"edges":[]}') RETURNING id`, p).Scan(&id); err != nil {
			t.Fatal(err)
		}
		pv[p] = id
	}
	dep := func(name string, project int64, owner int64, status string, expiresIn int) {
		t.Helper()
		if _, err := env.Store.Pool.Exec(ctx, `INSERT INTO deployments (name, project_id, environment_id, pipeline_version_id, owner_id, status, cpu, memory_mb, ttl_seconds, expires_at, deleted_at)
			VALUES ($1, $2, $3, $4, $5, $6, 0.5, 256, 3600, now() + make_interval(hours => $7), CASE WHEN $6 = 'deleted' THEN now() END)`,
			name, project, qa, pv[project], owner, status, expiresIn); err != nil {
			t.Fatal(err)
		}
	}
	// Created in this order: ids grow.
	dep("pr-10", shop, alice.ID, "running", 5)
	dep("pr-2", blog, bob.ID, "failed", 1)
	dep("feature-x", shop, bob.ID, "deploying", 9)
	dep("pr-3_a", blog, alice.ID, "running", 3)
	dep("pr-30", shop, alice.ID, "deleted", 2)

	as := env.Session(alice)
	check := func(who *apitest.Client, query string, want []string, wantTotal int) {
		t.Helper()
		got, total := listNames(t, who, "/deployments?"+query)
		if !slices.Equal(got, want) || total != wantTotal {
			t.Errorf("?%s: %v (total %d), want %v (total %d)", query, got, total, want, wantTotal)
		}
	}
	check(as, "", []string{"pr-3_a", "feature-x", "pr-2", "pr-10"}, 4)
	check(as, "q=PR-", []string{"pr-3_a", "pr-2", "pr-10"}, 3)
	check(as, "q="+url.QueryEscape("3_"), []string{"pr-3_a"}, 1) // "_" is a character, not a wildcard
	check(as, "q="+url.QueryEscape("%"), []string{}, 0)
	check(as, "q=pr&status=deleted", []string{"pr-30"}, 1)
	check(as, "mine=true", []string{"pr-3_a", "pr-10"}, 2)
	check(env.Session(bob), "mine=true", []string{"feature-x", "pr-2"}, 2)
	check(env.Admin, "mine=true", []string{}, 0)
	check(as, "mine=true&q=10", []string{"pr-10"}, 1)
	check(as, "sort=name", []string{"feature-x", "pr-10", "pr-2", "pr-3_a"}, 4)
	check(as, "sort=name&order=desc", []string{"pr-3_a", "pr-2", "pr-10", "feature-x"}, 4)
	check(as, "sort=status", []string{"feature-x", "pr-2", "pr-10", "pr-3_a"}, 4)
	check(as, "sort=project", []string{"pr-2", "pr-3_a", "pr-10", "feature-x"}, 4)
	check(as, "sort=owner&order=desc", []string{"feature-x", "pr-2", "pr-3_a", "pr-10"}, 4)
	check(as, "sort=created", []string{"pr-10", "pr-2", "feature-x", "pr-3_a"}, 4)
	check(as, "sort=expires&order=desc", []string{"feature-x", "pr-10", "pr-3_a", "pr-2"}, 4)
	check(as, "sort=environment&order=desc", []string{"pr-3_a", "feature-x", "pr-2", "pr-10"}, 4)
	// Pages of a sorted, filtered list.
	check(as, "sort=name&per_page=2&page=2", []string{"pr-2", "pr-3_a"}, 4)
	check(as, "q=pr&sort=name&per_page=2&page=2", []string{"pr-3_a"}, 3)

	for _, c := range []struct{ query, param string }{
		{"sort=size", "sort"},
		{"sort=name&order=up", "order"},
		{"mine=yes", "mine"},
		{"q=" + strings.Repeat("x", 101), "q"},
		{"page=0", "page"},
	} {
		res := as.Get(apitest.Path("/deployments?%s", c.query)).Want(t, 400)
		var e restapi.ErrorBody
		res.Decode(t, &e)
		if e.Error.Details[c.param] == "" {
			t.Errorf("?%s: details %v do not name %s", c.query, e.Error.Details, c.param)
		}
	}
}

// TestUserListSearchSort: the users list searches usernames and display
// names, sorts by its columns and refuses an unknown sort.
func TestUserListSearchSort(t *testing.T) {
	env := apitest.New(t)
	for i, name := range []string{"carol", "dave", "erin"} {
		u := env.User(name, i == 1)
		env.Admin.Patch(apitest.Path("/users/%d", u.ID), map[string]any{"display_name": fmt.Sprintf("QA %c", 'C'-rune(i))}).Want(t, 200)
	}
	check := func(query string, want []string) {
		t.Helper()
		got, total := listNames(t, env.Admin, "/users?"+query)
		if !slices.Equal(got, want) || total != len(want) {
			b, _ := json.Marshal(got)
			t.Errorf("?%s: %s (total %d), want %v", query, b, total, want)
		}
	}
	check("q=qa", []string{"carol", "dave", "erin"})
	check("q=qa&sort=name", []string{"erin", "dave", "carol"})
	check("q=qa&sort=username&order=desc", []string{"erin", "dave", "carol"})
	check("q=qa&sort=role", []string{"dave", "carol", "erin"})
	check("q=QA%20b", []string{"dave"})
	env.Admin.Get(apitest.Path("/users?sort=password")).Want(t, 400)
}
