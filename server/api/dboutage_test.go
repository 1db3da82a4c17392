package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/server/api/apitest"
	"github.com/nullops/nullops/server/config"
)

// While PostgreSQL is down every request that needs it answers 503
// not_ready (with Retry-After) at once, not 500; when it is back, the same
// session works again. A private PostgreSQL instance: the shared one stays up.
func TestDatabaseOutageAnswers503NotReady(t *testing.T) {
	pg := testutil.StartPostgres(t)
	env := apitest.New(t, func(c *config.Config) { c.Database.URL = pg.URL })
	project := env.Project("outage")
	env.Admin.Get(apitest.Path("/projects/%d", project)).Want(t, 200)

	pg.Stop(t)
	for _, r := range []struct{ method, path string }{
		{http.MethodGet, apitest.Path("/projects/%d", project)},
		{http.MethodGet, apitest.Path("/deployments")},
		{http.MethodDelete, apitest.Path("/deployments/%d", 1)},
		{http.MethodPost, apitest.Path("/deployments")},
		{http.MethodGet, apitest.Path("/me")},
	} {
		start := time.Now()
		var body any
		if r.method == http.MethodPost {
			body = map[string]any{"project_id": project, "environment_id": 1, "name": "x"}
		}
		res := env.Admin.Do(r.method, r.path, body)
		if res.Status != http.StatusServiceUnavailable || res.ErrorCode() != "not_ready" {
			t.Errorf("%s %s with the database down: %d %s, want 503 not_ready", r.method, r.path, res.Status, res.Body)
		}
		if res.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s: 503 without Retry-After", r.method, r.path)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%s %s took %s with the database down", r.method, r.path, took)
		}
	}

	pg.Start(t)
	ctx := testutil.Context(t, 60*time.Second)
	testutil.WaitFor(t, ctx, 100*time.Millisecond, "the API to answer again", func() bool {
		return env.Admin.Get(apitest.Path("/projects/%d", project)).Status == 200
	})
}
