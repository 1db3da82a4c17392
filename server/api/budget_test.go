package api_test

import (
	"strings"
	"testing"

	"github.com/nullops/nullops/server/api/apitest"
)

// A project's budget cannot be lowered below what its latest pipeline's
// shares need; the pipeline's shares are checked at save as well.
func TestProjectBudgetFitsThePipelineShares(t *testing.T) {
	env := apitest.New(t)
	ids := catalogFixture(t, env)
	graph := map[string]any{
		"nodes": []map[string]any{
			{"id": "db", "kind": "service", "service": "postgres", "resources": map[string]any{"cpu": 1.5, "memory_mb": 1024}},
			{"id": "api", "kind": "service", "service": "backend-api"},
		},
		"edges": [][2]string{},
	}
	env.Admin.Put(apitest.Path("/projects/%d/pipeline", ids["shop"]), graph).Want(t, 201)

	r := env.Admin.Put(apitest.Path("/projects/%d", ids["shop"]), map[string]any{"name": "shop", "cpu": 1, "memory_mb": 2048})
	if r.Status != 400 || !strings.Contains(string(r.Body), "does not fit pipeline version 1: the nodes' CPU shares (explicit and plugin limits) add up to 1.5, more than the deployment's 1 CPUs") {
		t.Fatalf("lowering the budget below the shares: %d %s", r.Status, r.Body)
	}
	env.Admin.Put(apitest.Path("/projects/%d", ids["shop"]), map[string]any{"name": "shop", "cpu": 1.6, "memory_mb": 2048}).Want(t, 200)
}
