package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/nullops/nullops/server/store"
	"github.com/nullops/nullops/server/store/storetest"
)

// A live deployment keeps the secrets its pipeline version references and
// the registries its recorded definition pulls from, although the project's
// latest pipeline uses neither; once it is deleted they can go.
func TestLiveDeploymentsKeepTheirSecretsAndRegistries(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	reg := mustID(t, st, "INSERT INTO registries (name, url) VALUES ('old', 'http://127.0.0.1:5999') RETURNING id")
	p := mustID(t, st, "INSERT INTO projects (name) VALUES ('shop') RETURNING id")
	e := mustID(t, st, "INSERT INTO environments (name, base_domain) VALUES ('qa', 'qa.test') RETURNING id")
	v1 := mustID(t, st, `INSERT INTO pipeline_versions (project_id, version, graph) VALUES ($1, 1,
		'{"nodes":[{"id":"web","kind":"service","service":"web","env":{"TOKEN":"${secrets.old_token}"}}],"edges":[]}') RETURNING id`, p)
	mustID(t, st, `INSERT INTO pipeline_versions (project_id, version, graph) VALUES ($1, 2,
		'{"nodes":[{"id":"web","kind":"service","service":"web"}],"edges":[]}') RETURNING id`, p)
	secret := mustID(t, st, "INSERT INTO secrets (name, value_enc, key_id) VALUES ('old_token', '\\x00', 'k') RETURNING id")
	dep := mustID(t, st, `INSERT INTO deployments (name, project_id, environment_id, pipeline_version_id, status, cpu, memory_mb, ttl_seconds, expires_at, definition)
		VALUES ('pr-1', $1, $2, $3, 'running', 1, 128, 3600, now() + interval '1 hour', jsonb_build_object('registries', jsonb_build_object('web', $4::bigint)))
		RETURNING id`, p, e, v1, reg)

	const who = `deployment "pr-1" in qa (running`
	_, err := store.DeleteSecret(ctx, st.Pool, secret)
	var inUse *store.InUseError
	if !errors.As(err, &inUse) || !strings.Contains(err.Error(), who+", pipeline version 1)") {
		t.Fatalf("delete a secret a running deployment uses: %v", err)
	}
	_, err = store.DeleteRegistry(ctx, st.Pool, reg)
	if !errors.As(err, &inUse) || !strings.Contains(err.Error(), who+")") {
		t.Fatalf("delete a registry a running deployment pulls from: %v", err)
	}

	if _, err := st.Pool.Exec(ctx, "UPDATE deployments SET status = 'deleted' WHERE id = $1", dep); err != nil {
		t.Fatal(err)
	}
	if _, err := store.DeleteSecret(ctx, st.Pool, secret); err != nil {
		t.Fatalf("delete the secret once the deployment is gone: %v", err)
	}
	if _, err := store.DeleteRegistry(ctx, st.Pool, reg); err != nil {
		t.Fatalf("delete the registry once the deployment is gone: %v", err)
	}
}
