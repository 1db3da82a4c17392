package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/api/apitest"
)

// decodeStrict decodes b into v, failing on any field v does not declare:
// the server sends nothing outside the contract.
func decodeStrict(t *testing.T, what string, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s is not the restapi shape: %v\n%s", what, err, b)
	}
}

// TestDeploymentHasOneShape: a deployment is the same restapi.Deployment in
// a list row, in GET /deployments/:id and in the first event of its stream;
// only the single answers carry the detail (steps and services).
func TestDeploymentHasOneShape(t *testing.T) {
	env := apitest.New(t)
	ctx := context.Background()
	pid, eid := env.Project("shop"), env.Environment("qa")
	var pv, id int64
	if err := env.Store.Pool.QueryRow(ctx, `INSERT INTO pipeline_versions (project_id, version, graph) VALUES ($1, 1, '{"nodes":[],"edges":[]}') RETURNING id`, pid).Scan(&pv); err != nil {
		t.Fatal(err)
	}
	if err := env.Store.Pool.QueryRow(ctx, `INSERT INTO deployments (name, project_id, environment_id, pipeline_version_id, status, cpu, memory_mb, ttl_seconds, expires_at, tags)
		VALUES ('pr-1', $1, $2, $3, 'running', 0.5, 256, 3600, now() + interval '1 hour', '{"web":"v1"}') RETURNING id`, pid, eid, pv).Scan(&id); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO deployment_services (deployment_id, node_key, image, tag, ingress) VALUES ($1, 'web', 'demo/web', 'v1', TRUE)`,
		`INSERT INTO deployment_steps (deployment_id, node_key, kind, status) VALUES ($1, 'web', 'service', 'succeeded')`,
	} {
		if _, err := env.Store.Pool.Exec(ctx, q, id); err != nil {
			t.Fatal(err)
		}
	}

	var list restapi.List[restapi.Deployment]
	decodeStrict(t, "GET /deployments", env.Admin.Get(apitest.Path("/deployments")).Want(t, 200).Body, &list)
	var one restapi.Deployment
	decodeStrict(t, "GET /deployments/:id", env.Admin.Get(apitest.Path("/deployments/%d", id)).Want(t, 200).Body, &one)
	if len(list.Items) != 1 || list.Items[0].Detail != nil {
		t.Fatalf("list rows: %+v, want one row without steps and services", list.Items)
	}
	if one.Detail == nil || len(one.Steps) != 1 || len(one.Services) != 1 || one.Services[0].URL == "" {
		t.Fatalf("detail: %+v, want its step and service with its link", one.Detail)
	}
	row := list.Items[0]
	detail := one
	detail.Detail = nil
	rb, _ := json.Marshal(row)
	db, _ := json.Marshal(detail)
	if !bytes.Equal(rb, db) {
		t.Errorf("the list row and the detail differ beyond steps and services:\nrow    %s\ndetail %s", rb, db)
	}
	if row.Access != "full" || row.URLs["web"] != one.Services[0].URL || row.Tags["web"] != "v1" {
		t.Errorf("row: access %q urls %v tags %v", row.Access, row.URLs, row.Tags)
	}

	// The first event of the deployment's stream is the same detail.
	r := env.Admin.Get(apitest.Path("/deployments/%d/events?once=true", id)).Want(t, http.StatusOK)
	var data string
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			data = d
			break
		}
	}
	var ev restapi.Deployment
	decodeStrict(t, "the first event", []byte(data), &ev)
	eb, _ := json.Marshal(ev)
	ob, _ := json.Marshal(one)
	if !bytes.Equal(eb, ob) {
		t.Errorf("the stream's first event differs from GET /deployments/:id:\nevent %s\nget   %s", eb, ob)
	}
}
