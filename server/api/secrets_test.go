package api_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/api/apitest"
	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/store"
)

// TestSecretValuesAreWriteOnly: secret values go in, never come out — not
// in any response, not in the logs (debug level), not in any raw database
// column — while names, scope and who changed them when are visible.
func TestSecretValuesAreWriteOnly(t *testing.T) {
	env, logs := loggedEnv(t)
	var mu sync.Mutex
	var all []*apitest.Response
	env.Observe(func(_ *http.Request, r *apitest.Response) { mu.Lock(); all = append(all, r); mu.Unlock() })
	adm := env.Admin
	values := []string{"global-value-b7f3e", "project-value-0c9d2", "rotated-value-41aa", "too-bad-name-value-77"}

	var proj idBody
	adm.Post(apitest.Path("/projects"), map[string]any{"name": "shop"}).Want(t, 201).Decode(t, &proj)
	var global, scoped store.Secret
	adm.Post(apitest.Path("/secrets"), map[string]any{"name": "db_password", "value": values[0]}).Want(t, 201).Decode(t, &global)
	adm.Post(apitest.Path("/secrets"), map[string]any{"name": "db_password", "project_id": proj.ID, "value": values[1]}).Want(t, 201).Decode(t, &scoped)
	if global.Scope != "global" || scoped.Scope != "project" || scoped.ProjectName != "shop" || global.UpdatedByName != apitest.AdminUsername {
		t.Fatalf("secret metadata %+v %+v", global, scoped)
	}
	if r := adm.Post(apitest.Path("/secrets"), map[string]any{"name": "db_password", "value": "x"}); r.Status != 409 {
		t.Fatalf("duplicate global secret: %d", r.Status)
	}
	adm.Put(apitest.Path("/secrets/%d", global.ID), map[string]any{"value": values[2]}).Want(t, 200)
	adm.Post(apitest.Path("/secrets"), map[string]any{"name": "bad name", "value": values[3]}).Want(t, 400)
	adm.Post(apitest.Path("/secrets"), map[string]any{"name": "ok", "value": values[3], "extra": values[3]}).Want(t, 400)

	var list restapi.List[restapi.Secret]
	adm.Get(apitest.Path("/secrets")).Want(t, 200).Decode(t, &list)
	if list.Total != 2 {
		t.Fatalf("secrets %+v", list)
	}
	adm.Get(apitest.Path("/secrets?scope=global")).Want(t, 200).Decode(t, &list)
	if list.Total != 1 || list.Items[0].ID != global.ID {
		t.Fatalf("global secrets %+v", list)
	}
	adm.Get(apitest.Path("/secrets/%d", scoped.ID)).Want(t, 200)
	adm.Get(apitest.Path("/audit?action=secret.*")).Want(t, 200)

	// A user with a grant on the project sees the names of its secrets only.
	dev := env.Login(mkUser(t, env, "dev"), apitest.DefaultPassword)
	dev.Get(apitest.Path("/secrets")).Want(t, 403)
	dev.Get(apitest.Path("/projects/%d/secrets", proj.ID)).Want(t, 404)
	team := env.Team("shop-devs", dev.User.ID)
	env.Grant(team, store.ScopeProject, proj.ID, auth.Read)
	dev.Get(apitest.Path("/projects/%d/secrets", proj.ID)).Want(t, 200).Decode(t, &list)
	if list.Total != 1 || list.Items[0].Name != "db_password" {
		t.Fatalf("project secrets for a user %+v", list)
	}

	mu.Lock()
	for _, r := range all {
		for _, v := range values {
			if bytes.Contains(r.Body, []byte(v)) {
				t.Errorf("response contains a secret value: %s", r.Body)
			}
		}
	}
	mu.Unlock()
	for _, v := range values {
		if strings.Contains(logs.String(), v) {
			t.Errorf("logs contain secret value %q", v)
		}
	}
	var raw string
	if err := env.Store.Pool.QueryRow(context.Background(), `SELECT concat_ws(' ',
		(SELECT string_agg(t::text, ' ') FROM secrets t), (SELECT string_agg(encode(value_enc, 'escape'), ' ') FROM secrets),
		(SELECT string_agg(t::text, ' ') FROM audit_log t))`).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		if strings.Contains(raw, v) {
			t.Errorf("database holds secret value %q in plaintext", v)
		}
	}
	if !strings.Contains(logs.String(), "/api/v1/secrets") {
		t.Fatal("log capture is not working")
	}
}
