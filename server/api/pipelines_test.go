package api_test

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/api/apitest"
	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/store"
)

const designGraph = `{
  "resources": {"cpu": 2.0, "memory_mb": 2048},
  "nodes": [
    {"id": "db",  "kind": "service",   "service": "postgres", "env": {"POSTGRES_PASSWORD": "${secrets.db_password}"}},
    {"id": "mkdb", "kind": "component", "plugin": "postgres-create-db", "params": {"host": "db", "database": "app"}},
    {"id": "api", "kind": "service",   "service": "backend-api", "port": 8080, "ingress": true,
     "env": {"DATABASE_URL": "${steps.mkdb.outputs.url}"}, "health": {"http": "/healthz"}}
  ],
  "edges": [["db", "mkdb"], ["mkdb", "api"]]
}`

type pipelineBody struct {
	store.PipelineVersion
	Order []string `json:"order"`
}

// catalogFixture creates, through the API, the catalog of the
// docs/architecture.md example and a project "shop"; it returns ids by name.
func catalogFixture(t *testing.T, env *apitest.Env) map[string]int64 {
	adm := env.Admin
	ids := map[string]int64{}
	var b idBody
	adm.Post(apitest.Path("/services"), map[string]any{"name": "postgres", "registry_id": 1, "image": "library/postgres",
		"tag_mode": "pinned", "tag": "16", "ports": []int{5432}}).Want(t, 201).Decode(t, &b)
	ids["postgres"] = b.ID
	adm.Post(apitest.Path("/services"), map[string]any{"name": "backend-api", "registry_id": 1, "image": "acme/api",
		"tag_mode": "selectable", "tag_pattern": "v*", "ports": []int{8080}}).Want(t, 201).Decode(t, &b)
	ids["backend-api"] = b.ID
	adm.Post(apitest.Path("/plugins"), map[string]any{"name": "postgres-create-db", "registry_id": 1, "image": "nullops/pg-create-db", "tag": "v1",
		"params_schema": map[string]any{"type": "object", "required": []string{"host", "database"},
			"properties": map[string]any{"host": map[string]any{"type": "string"}, "database": map[string]any{"type": "string"}}}}).
		Want(t, 201).Decode(t, &b)
	ids["postgres-create-db"] = b.ID
	adm.Post(apitest.Path("/secrets"), map[string]any{"name": "db_password", "value": "pg-secret-value-6d1"}).Want(t, 201).Decode(t, &b)
	ids["db_password"] = b.ID
	adm.Post(apitest.Path("/projects"), map[string]any{"name": "shop", "cpu": 2, "memory_mb": 2048}).Want(t, 201).Decode(t, &b)
	ids["shop"] = b.ID
	adm.Post(apitest.Path("/environments"), map[string]any{"name": "qa", "base_domain": "qa.example.com", "default_ttl": "168h"}).Want(t, 201).Decode(t, &b)
	ids["qa"] = b.ID
	return ids
}

func TestPipelineVersionsAPI(t *testing.T) {
	env := apitest.New(t)
	var mu sync.Mutex
	var broadcasts []protocol.PluginsUpdate
	env.App.BroadcastPlugins = func(_ context.Context, u protocol.PluginsUpdate) {
		mu.Lock()
		broadcasts = append(broadcasts, u)
		mu.Unlock()
	}
	ids := catalogFixture(t, env)
	adm := env.Admin
	shop := ids["shop"]

	if r := adm.Get(apitest.Path("/projects/%d/pipeline", shop)); r.Status != 404 || r.ErrorCode() != "no_pipeline" {
		t.Fatalf("no pipeline yet: %d %s", r.Status, r.Body)
	}

	// Dry run: valid → order, nothing saved.
	var dry restapi.PipelineDryRun
	adm.Post(apitest.Path("/projects/%d/pipeline/dry-run", shop), designGraph).Want(t, 200).Decode(t, &dry)
	if !dry.Valid || !reflect.DeepEqual(dry.Order, []string{"db", "mkdb", "api"}) {
		t.Fatalf("dry run %+v", dry)
	}
	bad := strings.Replace(designGraph, `"edges": [["db", "mkdb"], ["mkdb", "api"]]`, `"edges": [["db", "mkdb"]]`, 1)
	bad = strings.Replace(bad, "${secrets.db_password}", "${secrets.nope}", 1)
	adm.Post(apitest.Path("/projects/%d/pipeline/dry-run", shop), bad).Want(t, 200).Decode(t, &dry)
	if dry.Valid || dry.Problems["nodes.api.env.DATABASE_URL"] == "" || dry.Problems["nodes.db.env.POSTGRES_PASSWORD"] == "" {
		t.Fatalf("dry run of a bad graph %+v", dry)
	}
	adm.Get(apitest.Path("/projects/%d/pipeline", shop)).Want(t, 404)

	// PUT invalid → 400 with every problem; PUT valid → version 1.
	r := adm.Put(apitest.Path("/projects/%d/pipeline", shop), bad)
	if r.Status != 400 || r.ErrorCode() != "invalid_pipeline" || !strings.Contains(string(r.Body), "nodes.api.env.DATABASE_URL") {
		t.Fatalf("invalid PUT: %d %s", r.Status, r.Body)
	}
	var v1 pipelineBody
	adm.Put(apitest.Path("/projects/%d/pipeline", shop), designGraph).Want(t, 201).Decode(t, &v1)
	if v1.Version != 1 || !reflect.DeepEqual(v1.Order, []string{"db", "mkdb", "api"}) ||
		v1.PluginPins["postgres-create-db"] != "docker.io/nullops/pg-create-db:v1" || v1.CreatedByName != apitest.AdminUsername {
		t.Fatalf("version 1: %+v", v1)
	}

	// A new plugin tag → broadcast to agents (the last list they get is the
	// current one; overlapping changes may share one broadcast); the next
	// save pins it, v1 keeps its pin.
	adm.Put(apitest.Path("/plugins/%d", ids["postgres-create-db"]), map[string]any{"name": "postgres-create-db", "registry_id": 1,
		"image": "nullops/pg-create-db", "tag": "v2", "params_schema": map[string]any{"type": "object"}, "timeout": "2m"}).Want(t, 200)
	var v2 pipelineBody
	adm.Put(apitest.Path("/projects/%d/pipeline", shop), designGraph).Want(t, 201).Decode(t, &v2)
	if v2.Version != 2 || v2.PluginPins["postgres-create-db"] != "docker.io/nullops/pg-create-db:v2" {
		t.Fatalf("version 2: %+v", v2)
	}
	var old pipelineBody
	adm.Get(apitest.Path("/projects/%d/pipeline/versions/1", shop)).Want(t, 200).Decode(t, &old)
	if old.PluginPins["postgres-create-db"] != "docker.io/nullops/pg-create-db:v1" || len(old.Graph) == 0 {
		t.Fatalf("version 1 changed: %+v", old)
	}
	var versions restapi.List[restapi.PipelineVersion]
	adm.Get(apitest.Path("/projects/%d/pipeline/versions", shop)).Want(t, 200).Decode(t, &versions)
	if versions.Total != 2 || versions.Items[0].Version != 2 || versions.Items[0].CreatedByName != apitest.AdminUsername || versions.Items[0].CreatedAt.IsZero() {
		t.Fatalf("versions %+v", versions)
	}
	// Immutable even for SQL.
	if _, err := env.Store.Pool.Exec(context.Background(), `UPDATE pipeline_versions SET graph = '{}' WHERE project_id = $1`, shop); err == nil ||
		!strings.Contains(err.Error(), "immutable") {
		t.Fatalf("updating a saved version: %v", err)
	}
	adm.Get(apitest.Path("/projects/%d/pipeline/versions/9", shop)).Want(t, 404)

	deadline := time.Now().Add(2 * time.Minute)
	for {
		mu.Lock()
		n := len(broadcasts)
		var last protocol.PluginsUpdate
		if n > 0 {
			last = broadcasts[n-1]
		}
		mu.Unlock()
		if n >= 1 && len(last.Plugins) == 1 && last.Plugins[0].Image == "docker.io/nullops/pg-create-db:v2" && last.Plugins[0].Timeout == "2m0s" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugins.update broadcasts %+v", broadcasts)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Users: read with a grant, never write.
	dev := env.UserClient("dev", false)
	team := env.Team("devs", dev.User.ID)
	env.Grant(team, store.ScopeProject, shop, auth.Read)
	dev.Get(apitest.Path("/projects/%d/pipeline", shop)).Want(t, 200)
	dev.Put(apitest.Path("/projects/%d/pipeline", shop), designGraph).Want(t, 403)
	stranger := env.UserClient("stranger", false)
	stranger.Get(apitest.Path("/projects/%d/pipeline", shop)).Want(t, 404)
	var projects restapi.List[restapi.Project]
	stranger.Get(apitest.Path("/projects")).Want(t, 200).Decode(t, &projects)
	if len(projects.Items) != 0 {
		t.Fatalf("a user without grants sees projects: %+v", projects.Items)
	}

	// References: deleting or renaming what the latest version uses → 409.
	for _, tc := range []struct{ what, path string }{
		{"service", apitest.Path("/services/%d", ids["postgres"])},
		{"plugin", apitest.Path("/plugins/%d", ids["postgres-create-db"])},
		{"secret", apitest.Path("/secrets/%d", ids["db_password"])},
	} {
		r := adm.Delete(tc.path)
		if r.Status != 409 || r.ErrorCode() != "in_use" || !strings.Contains(string(r.Body), `project \"shop\"`) {
			t.Errorf("delete used %s: %d %s", tc.what, r.Status, r.Body)
		}
	}
	r = adm.Put(apitest.Path("/services/%d", ids["postgres"]), map[string]any{"name": "pg", "registry_id": 1, "image": "library/postgres", "tag_mode": "pinned", "tag": "16"})
	if r.Status != 409 {
		t.Errorf("rename used service: %d %s", r.Status, r.Body)
	}
	// Environment with a node and a live deployment, project with a live deployment.
	ctx := context.Background()
	if _, err := env.Store.Pool.Exec(ctx, `INSERT INTO nodes (environment_id, name, host, port) VALUES ($1, 'node-a', '127.0.0.1', 7443)`, ids["qa"]); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Store.Pool.Exec(ctx, `INSERT INTO deployments (name, project_id, environment_id, pipeline_version_id, status, cpu, memory_mb, ttl_seconds, expires_at)
		VALUES ('pr-7', $1, $2, $3, 'running', 1, 256, 3600, now() + interval '1 hour')`, shop, ids["qa"], v2.ID); err != nil {
		t.Fatal(err)
	}
	r = adm.Delete(apitest.Path("/environments/%d", ids["qa"]))
	if r.Status != 409 || !strings.Contains(string(r.Body), `node \"node-a\"`) || !strings.Contains(string(r.Body), `deployment \"pr-7\"`) {
		t.Errorf("delete used environment: %d %s", r.Status, r.Body)
	}
	r = adm.Delete(apitest.Path("/projects/%d", shop))
	if r.Status != 409 || !strings.Contains(string(r.Body), `deployment \"pr-7\"`) {
		t.Errorf("delete project with a live deployment: %d %s", r.Status, r.Body)
	}
	// Once the deployment is deleted the project goes, with its history.
	if _, err := env.Store.Pool.Exec(ctx, `UPDATE deployments SET status = 'deleted' WHERE name = 'pr-7'`); err != nil {
		t.Fatal(err)
	}
	adm.Delete(apitest.Path("/projects/%d", shop)).Want(t, 204)
	adm.Delete(apitest.Path("/services/%d", ids["postgres"])).Want(t, 204)

	// Every write is in the audit log.
	var audit restapi.List[restapi.AuditEntry]
	for action, want := range map[string]int{"pipeline.save": 2, "plugin.*": 2, "service.*": 3, "project.*": 2, "secret.create": 1, "environment.create": 1} {
		adm.Get(apitest.Path("/audit?action=%s", action)).Want(t, 200).Decode(t, &audit)
		if audit.Total != want {
			t.Errorf("audit %s: %d entries, want %d", action, audit.Total, want)
		}
	}
}

// TestCatalogValidationNamesFields: bad input is refused with every field
// named at once.
func TestCatalogValidationNamesFields(t *testing.T) {
	env := apitest.New(t)
	adm := env.Admin
	for _, tc := range []struct {
		path   string
		body   any
		fields []string
	}{
		{"/services", map[string]any{"name": "Bad Name", "registry_id": 999, "image": "Acme/API:v1", "tag_mode": "selectable", "tag_pattern": "features/*", "ports": []int{0}},
			[]string{"name", "registry_id", "image", "tag_pattern", "ports"}},
		{"/services", map[string]any{"name": "a", "registry_id": 1, "image": "a", "tag_mode": "pinned", "health": map[string]any{"http": "x"}, "env": map[string]string{"X": "${secrets.y}"}},
			[]string{"tag", "health.http", "env.X"}},
		{"/plugins", map[string]any{"name": "p", "registry_id": 1, "image": "a", "tag": "v1", "params_schema": map[string]any{"type": 5}, "cpu": 0},
			[]string{"params_schema", "cpu"}},
		{"/environments", map[string]any{"name": "qa", "base_domain": "not a domain", "default_ttl": "10s", "host_template": "<service>.x"},
			[]string{"base_domain", "default_ttl", "host_template"}},
		{"/projects", map[string]any{"name": "-x", "cpu": -1, "memory_mb": 1, "ttl": "30s",
			"node_selector": map[string]any{"expressions": []map[string]any{{"key": "zone", "operator": "Near"}}}},
			[]string{"name", "cpu", "memory_mb", "ttl", "node_selector"}},
		{"/secrets", map[string]any{"name": "bad name!", "value": "v"}, []string{"name"}},
		{"/registries", map[string]any{"name": "r", "url": "ftp://x", "password": "p"}, []string{"url", "username"}},
	} {
		r := adm.Post(apitest.Path("%s", tc.path), tc.body)
		var e restapi.ErrorBody
		r.Decode(t, &e)
		if r.Status != 400 {
			t.Errorf("POST %s: %d %s", tc.path, r.Status, r.Body)
			continue
		}
		for _, f := range tc.fields {
			if e.Error.Details[f] == "" {
				t.Errorf("POST %s: no problem named %q in %v", tc.path, f, e.Error.Details)
			}
		}
	}
	// Defaults: plugin timeout 5m and join_network, environment TTL 168h.
	var p restapi.Plugin
	adm.Post(apitest.Path("/plugins"), map[string]any{"name": "noop", "registry_id": 1, "image": "nullops/noop", "tag": "v1"}).Want(t, 201).Decode(t, &p)
	if p.Timeout != "5m0s" || !p.JoinNetwork {
		t.Errorf("plugin defaults %+v", p)
	}
	var e restapi.Environment
	adm.Post(apitest.Path("/environments"), map[string]any{"name": "qa", "base_domain": "qa.example.com"}).Want(t, 201).Decode(t, &e)
	if e.DefaultTTL != "168h0m0s" {
		t.Errorf("environment default TTL %q", e.DefaultTTL)
	}
}
