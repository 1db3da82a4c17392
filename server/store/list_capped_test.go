package store_test

import (
	"context"
	"testing"

	"github.com/nullops/nullops/server/store"
	"github.com/nullops/nullops/server/store/storetest"
)

// TestListDeploymentsCapsTheTotal: past DeploymentCountCap the list stops
// counting and says so; a page beyond the cap still counts past itself, and
// the last stretch of the table is counted exactly.
func TestListDeploymentsCapsTheTotal(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	s := storetest.NewRouteSeed(t, st)
	env := s.Environment(t, "qa", "example.test", "", false)
	node := s.Node(t, env, "n1", "127.0.0.1", "online")
	n := store.DeploymentCountCap + 30
	s.BulkDeployments(t, env, node, "d-", "running", n, 8080)
	for _, c := range []struct {
		name        string
		f           store.DeploymentFilter
		page, total int
		capped      bool
	}{
		{"first page", store.DeploymentFilter{Limit: 25}, 25, store.DeploymentCountCap, true},
		{"page past the cap", store.DeploymentFilter{Limit: 25, Offset: store.DeploymentCountCap}, 25, store.DeploymentCountCap + 25, true},
		{"last page", store.DeploymentFilter{Limit: 25, Offset: store.DeploymentCountCap + 25}, 5, n, false},
		// d-100 and d-1000 … d-1009 (n is 1030).
		{"narrowed", store.DeploymentFilter{Limit: 25, Query: "d-100"}, 11, 11, false},
	} {
		page, total, capped, err := st.ListDeployments(ctx, c.f)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(page) != c.page || total != c.total || capped != c.capped {
			t.Errorf("%s: page of %d, total %d capped %v; want %d, %d, %v", c.name, len(page), total, capped, c.page, c.total, c.capped)
		}
	}
}
