package cli_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nullops/nullops/cli"
	"github.com/nullops/nullops/server/api/apitest"
	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/store"
)

// TestListShowsLinksInFull: `nullops deployments list` prints each live
// deployment's links in full (from the list rows themselves) and none for
// a failed one.
func TestListShowsLinksInFull(t *testing.T) {
	env := apitest.New(t)
	ctx := context.Background()
	pid, eid := env.Project("shop"), env.Environment("qa")
	dev := env.User("dev", false)
	env.Grant(env.Team("devs", dev.ID), store.ScopeEnvironment, eid, auth.Read)
	tok, _ := env.NewToken(dev.ID, "ci", nil)
	var pv int64
	if err := env.Store.Pool.QueryRow(ctx, `INSERT INTO pipeline_versions (project_id, version, graph) VALUES ($1, 1, '{"nodes":[],"edges":[]}') RETURNING id`, pid).Scan(&pv); err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct{ name, status string }{{"pr-1", "running"}, {"pr-2", "failed"}} {
		if _, err := env.Store.Pool.Exec(ctx, `WITH d AS (INSERT INTO deployments (name, project_id, environment_id, pipeline_version_id, status, cpu, memory_mb, ttl_seconds, expires_at)
			VALUES ($1, $2, $3, $4, $5, 0.5, 256, 3600, now() + interval '1 hour') RETURNING id)
			INSERT INTO deployment_services (deployment_id, node_key, image, tag, ingress) SELECT id, k, 'team/' || k, 'v1', TRUE FROM d, unnest(ARRAY['web', 'api']) k`,
			d.name, pid, eid, pv, d.status); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("NULLOPS_CONFIG", filepath.Join(t.TempDir(), "config.json"))
	t.Setenv("NULLOPS_SERVER", env.URL)
	t.Setenv("NULLOPS_TOKEN", tok)
	var out, errOut bytes.Buffer
	if err := cli.Run(ctx, []string{"deployments", "list"}, &out, &errOut); err != nil {
		t.Fatalf("list: %v (%s)", err, errOut.String())
	}
	lines := map[string]string{}
	for _, l := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(l); len(f) > 1 {
			lines[f[1]] = l
		}
	}
	if !strings.HasSuffix(lines["pr-1"], "api=http://api.pr-1.qa.qa.test web=http://web.pr-1.qa.qa.test") {
		t.Errorf("running deployment's line %q: want both links in full", lines["pr-1"])
	}
	if !strings.HasSuffix(lines["pr-2"], " -") || strings.Contains(lines["pr-2"], "http") {
		t.Errorf("failed deployment's line %q: want no links", lines["pr-2"])
	}
	if !strings.HasSuffix(lines["NAME"], "LINKS") {
		t.Errorf("header %q", lines["NAME"])
	}
}
