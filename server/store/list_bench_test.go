package store_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/nullops/nullops/server/store"
	"github.com/nullops/nullops/server/store/storetest"
)

// BenchmarkListDeployments measures a page of 25 deployments, as the UI asks
// for it, with 10,000 deployments in the table (10 projects × 1,000), for an
// admin and for a user whose team is granted one project, with 20 clients at
// once and alone. It reports p50 and p99 latency of one list call (count + page).
// The list page's other queries (sorted by name, searched, "mine") run alone
// against the same table; the user owns every deployment of its project.
//
//	go test ./server/store -run '^$' -bench ListDeployments -benchtime 2000x
func BenchmarkListDeployments(b *testing.B) {
	st := storetest.New(b)
	ctx := context.Background()
	var seeds []*storetest.RouteSeed
	for range 10 {
		seeds = append(seeds, storetest.NewRouteSeed(b, st))
	}
	env := seeds[0].Environment(b, "qa", "example.test", "", false)
	node := seeds[0].Node(b, env, "n1", "127.0.0.1", "online")
	for i, s := range seeds {
		s.BulkDeployments(b, env, node, fmt.Sprintf("p%d-", i), "running", 1000, 8080)
	}
	var userID int64
	err := st.Pool.QueryRow(ctx, `
		WITH u AS (INSERT INTO users (username, password_hash, role) VALUES ('bench-user', 'x', 'user') RETURNING id),
		     t AS (INSERT INTO teams (name) VALUES ('bench-team') RETURNING id),
		     m AS (INSERT INTO team_members (team_id, user_id) SELECT t.id, u.id FROM t, u),
		     g AS (INSERT INTO access_grants (team_id, project_id, level) SELECT t.id, $1, 'full' FROM t)
		SELECT id FROM u`, seeds[3].ProjectID()).Scan(&userID)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := st.Pool.Exec(ctx, "UPDATE deployments SET owner_id = $1 WHERE project_id = $2", userID, seeds[3].ProjectID()); err != nil {
		b.Fatal(err)
	}
	if _, err := st.Pool.Exec(ctx, "ANALYZE"); err != nil {
		b.Fatal(err)
	}
	type variant struct {
		name string
		f    func(*store.DeploymentFilter)
	}
	plain := variant{"", func(*store.DeploymentFilter) {}}
	for _, c := range []struct {
		name      string
		visibleTo *int64
		want      int
		clients   int
		variant   variant
	}{
		{"admin", nil, 10000, 1, plain}, {"user", &userID, 1000, 1, plain}, {"admin", nil, 10000, 20, plain}, {"user", &userID, 1000, 20, plain},
		{"admin", nil, 10000, 1, variant{"/sort=name", func(f *store.DeploymentFilter) { f.Sort = "name" }}},
		{"user", &userID, 1000, 1, variant{"/sort=name", func(f *store.DeploymentFilter) { f.Sort = "name" }}},
		{"admin", nil, 1000, 1, variant{"/q=p3-", func(f *store.DeploymentFilter) { f.Query = "p3-" }}},
		{"admin", nil, 1000, 1, variant{"/mine", func(f *store.DeploymentFilter) { f.OwnerID = userID }}},
		{"user", &userID, 1000, 1, variant{"/mine", func(f *store.DeploymentFilter) { f.OwnerID = userID }}},
	} {
		filter := store.DeploymentFilter{VisibleTo: c.visibleTo, Limit: 25}
		c.variant.f(&filter)
		b.Run(fmt.Sprintf("%s/clients=%d%s", c.name, c.clients, c.variant.name), func(b *testing.B) {
			// Totals past the cap are reported as capped, not counted.
			_, total, capped, err := st.ListDeployments(ctx, filter)
			if want := min(c.want, store.DeploymentCountCap); err != nil || total != want || capped != (c.want > want) {
				b.Fatalf("total %d capped %v (%v), want %d of %d", total, capped, err, want, c.want)
			}
			clients := c.clients
			lat := make([]time.Duration, b.N)
			var next int64
			var mu sync.Mutex
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						mu.Lock()
						i := next
						next++
						mu.Unlock()
						if i >= int64(b.N) {
							return
						}
						t0 := time.Now()
						page, _, _, err := st.ListDeployments(ctx, filter)
						lat[i] = time.Since(t0)
						if err != nil || len(page) != 25 {
							b.Errorf("page of %d (%v)", len(page), err)
							return
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "lists/s")
		})
	}
}
