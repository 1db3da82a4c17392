package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/api"
	"github.com/nullops/nullops/server/api/apitest"
	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/config"
	"github.com/nullops/nullops/server/store"
	"github.com/nullops/nullops/server/store/storetest"
)

// envListLoad, when set, makes the test binary the load generator of
// BenchmarkDeploymentListHTTP (see TestMain): a separate process, so the
// benchmark's own CPU time is the server's alone.
const envListLoad = "NULLOPS_BENCH_LISTLOAD"

// listLoad is what the load generator is asked to do.
type listLoad struct {
	URL     string `json:"url"`
	Cookie  string `json:"cookie"`
	Clients int    `json:"clients"`
	N       int    `json:"n"`
	// Want is the number of items and the total every answer must have
	// (checked on the warm-up requests); -1 = not a list.
	WantItems int `json:"want_items"`
	WantTotal int `json:"want_total"`
}

// listLoadResult is what it answers: every request's latency, sorted.
type listLoadResult struct {
	Latencies []time.Duration `json:"latencies"`
	Elapsed   time.Duration   `json:"elapsed"`
	Err       string          `json:"err"`
}

// BenchmarkDeploymentListHTTP measures GET /api/v1/deployments (a page of
// 25, newest first, with its total, as the UI asks for it) through the
// real server (apitest: app.New's middleware, auth, handlers, store) on
// PostgreSQL with 10,000 live deployments (10 projects × 1,000, each with
// one exposed service), for an admin and for a user whose team is granted
// one project (1,000 visible), by 1 and by 20 closed-loop clients, both
// with session cookies. The clients run in a child process (the test
// binary re-executed), so the CPU this process spends is the server's.
// As a reference in the same run, "floor" is the cheapest authenticated
// request: the same middleware and session check, one PostgreSQL round
// trip (store.Ready) and a small JSON answer.
//
// Per case: requests/s, p50 and p99 latency, the server's CPU per request
// (this process's user + system time) and PostgreSQL's (the test
// database's backends, from /proc; 10 ms ticks), and the load average.
//
//	go test ./server/api -run '^$' -bench DeploymentListHTTP -benchtime 4000x
func BenchmarkDeploymentListHTTP(b *testing.B) {
	env := apitest.New(b, func(c *config.Config) { c.Database.MaxConns = config.Defaults().Database.MaxConns })
	ctx := context.Background()
	var seeds []*storetest.RouteSeed
	for range 10 {
		seeds = append(seeds, storetest.NewRouteSeed(b, env.Store))
	}
	eid := seeds[0].Environment(b, "qa", "example.test", "", false)
	node := seeds[0].Node(b, eid, "n1", "127.0.0.1", "online")
	for i, s := range seeds {
		s.BulkDeployments(b, eid, node, fmt.Sprintf("p%d-", i), "running", 1000, 8080)
	}
	u := env.User("bench-user", false)
	env.Grant(env.Team("bench-team", u.ID), store.ScopeProject, seeds[3].ProjectID(), auth.Full)
	if _, err := env.Store.Pool.Exec(ctx, "UPDATE deployments SET owner_id = $1 WHERE project_id = $2", u.ID, seeds[3].ProjectID()); err != nil {
		b.Fatal(err)
	}
	// As autovacuum leaves a table that settled: statistics, and pages
	// marked all-visible (index-only scans).
	if _, err := env.Store.Pool.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		b.Fatal(err)
	}
	// The reference: authenticated, one round trip, a small answer.
	deps := &api.Deps{Config: env.App.Config, Store: env.Store, Auth: env.App.Auth}
	env.App.Echo.GET(api.APIPrefix+"/bench-floor", func(c echo.Context) error {
		if err := env.Store.Ready(c.Request().Context()); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	}, api.RequireUser(deps))

	admin := "nullops_session=" + env.Admin.SessionID
	user := "nullops_session=" + env.Session(u).SessionID
	list := api.APIPrefix + "/deployments?per_page=25"
	for _, clients := range []int{1, 20} {
		for _, c := range []struct {
			name   string
			path   string
			cookie string
			items  int
			total  int
		}{
			{"floor", api.APIPrefix + "/bench-floor", admin, -1, -1},
			{"admin", list, admin, 25, store.DeploymentCountCap},
			{"user", list, user, 25, 1000},
		} {
			b.Run(fmt.Sprintf("%s/clients=%d", c.name, clients), func(b *testing.B) {
				runListLoad(b, env.Store, listLoad{URL: env.URL + c.path, Cookie: c.cookie, Clients: clients, N: b.N,
					WantItems: c.items, WantTotal: c.total})
			})
		}
	}
}

// runListLoad runs the load generator once and reports its figures.
func runListLoad(b *testing.B, st *store.Store, l listLoad) {
	raw, _ := json.Marshal(l)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envListLoad+"="+string(raw))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Wait() }()
	defer stdin.Close()
	out := bufio.NewReader(stdout)
	// The child warms up (connections, statement caches) and says so.
	if line, err := out.ReadString('\n'); err != nil || strings.TrimSpace(line) != "warm" {
		b.Fatalf("load generator: %q %v", line, err)
	}
	pgCPU, err := testutil.NewBackendCPU(context.Background(), st.Pool)
	if err != nil {
		b.Fatal(err)
	}
	selfBefore := testutil.SelfCPU()
	b.ResetTimer()
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		b.Fatal(err)
	}
	line, err := out.ReadString('\n')
	if err != nil {
		b.Fatalf("load generator: %v", err)
	}
	b.StopTimer()
	self := testutil.SelfCPU() - selfBefore
	pg, err := pgCPU.Spent(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	var res listLoadResult
	if err := json.Unmarshal([]byte(line), &res); err != nil {
		b.Fatalf("load generator said %q: %v", line, err)
	}
	if res.Err != "" {
		b.Fatal(res.Err)
	}
	lat := res.Latencies
	pct := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(len(lat))/res.Elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(self.Microseconds())/float64(len(lat)), "server-cpu-µs/req")
	b.ReportMetric(float64(pg.Microseconds())/float64(len(lat)), "pg-cpu-µs/req")
	b.ReportMetric(testutil.LoadAverage(), "load1")
	b.ReportMetric(0, "ns/op")
}

// listLoadMain is the load generator process: it warms up, says "warm",
// waits for "go" on stdin, runs N requests from Clients goroutines and
// prints the result as one JSON line.
func listLoadMain(spec string) {
	var l listLoad
	res := listLoadResult{}
	defer func() {
		raw, _ := json.Marshal(res)
		fmt.Println(string(raw))
	}()
	if err := json.Unmarshal([]byte(spec), &l); err != nil {
		res.Err = err.Error()
		return
	}
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: l.Clients, MaxConnsPerHost: l.Clients}}
	get := func(check bool) error {
		req, _ := http.NewRequest(http.MethodGet, l.URL, nil)
		req.Header.Set("Cookie", l.Cookie)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %d %s", l.URL, resp.StatusCode, body)
		}
		if check && l.WantItems >= 0 {
			var page restapi.List[restapi.Deployment]
			if err := json.Unmarshal(body, &page); err != nil {
				return err
			}
			if len(page.Items) != l.WantItems || page.Total != l.WantTotal {
				return fmt.Errorf("GET %s: %d items, total %d; want %d, %d", l.URL, len(page.Items), page.Total, l.WantItems, l.WantTotal)
			}
		}
		return nil
	}
	run := func(n int, check bool) ([]time.Duration, error) {
		lat := make([]time.Duration, n)
		var next int
		var mu sync.Mutex
		var first error
		var wg sync.WaitGroup
		for range l.Clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					mu.Lock()
					i := next
					next++
					stop := i >= n || first != nil
					mu.Unlock()
					if stop {
						return
					}
					t0 := time.Now()
					err := get(check)
					lat[i] = time.Since(t0)
					if err != nil {
						mu.Lock()
						first = err
						mu.Unlock()
						return
					}
				}
			}()
		}
		wg.Wait()
		return lat, first
	}
	if _, err := run(max(100, 10*l.Clients), true); err != nil {
		res.Err = err.Error()
		return
	}
	fmt.Println("warm")
	if line, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil || strings.TrimSpace(line) != "go" {
		res.Err = fmt.Sprintf("expected go, got %q %v", line, err)
		return
	}
	start := time.Now()
	lat, err := run(l.N, false)
	res.Elapsed = time.Since(start)
	if err != nil {
		res.Err = err.Error()
		return
	}
	slices.Sort(lat)
	res.Latencies = lat
}
