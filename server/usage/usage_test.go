package usage_test

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/store"
	"github.com/nullops/nullops/server/store/storetest"
	"github.com/nullops/nullops/server/usage"
)

type fixture struct {
	st          *store.Store
	h           *usage.History
	now         time.Time
	node, other int64
	env, pv     int64
	project     int64
}

func q(t *testing.T, st *store.Store, sql string, args ...any) int64 {
	t.Helper()
	var id int64
	if err := st.Pool.QueryRow(context.Background(), sql, args...).Scan(&id); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return id
}

// newFixture: two online nodes of one environment on a fresh database and
// a history with a small ring (one slot per 15 s, 8 slots = 2 minutes) and
// a clock the test moves.
func newFixture(t *testing.T) *fixture {
	st := storetest.New(t)
	f := &fixture{st: st, now: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	f.h = &usage.History{Store: st, Log: zerolog.Nop(), Ring: store.UsageRing{Step: 15 * time.Second, Slots: 8}, Now: func() time.Time { return f.now }}
	f.env = q(t, st, `INSERT INTO environments (name, base_domain, default_ttl_seconds) VALUES ('qa', 'example.test', 3600) RETURNING id`)
	f.project = q(t, st, `INSERT INTO projects (name, cpu, memory_mb) VALUES ('shop', 0.5, 256) RETURNING id`)
	f.pv = q(t, st, `INSERT INTO pipeline_versions (project_id, version, graph) VALUES ($1, 1, '{"nodes":[],"edges":[]}') RETURNING id`, f.project)
	f.node = q(t, st, `INSERT INTO nodes (environment_id, name, host, port, status) VALUES ($1, 'node-1', '127.0.0.1', 7000, 'online') RETURNING id`, f.env)
	f.other = q(t, st, `INSERT INTO nodes (environment_id, name, host, port, status) VALUES ($1, 'node-2', '127.0.0.1', 7001, 'online') RETURNING id`, f.env)
	return f
}

// deployment creates a deployment on node with the services named.
func (f *fixture) deployment(t *testing.T, name string, node int64, status string, services ...string) int64 {
	id := q(t, f.st, `INSERT INTO deployments (name, project_id, environment_id, node_id, pipeline_version_id, status, cpu, memory_mb, ttl_seconds, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, 0.5, 256, 3600, now() + interval '1 hour') RETURNING id`, name, f.project, f.env, node, f.pv, status)
	for _, s := range services {
		q(t, f.st, `INSERT INTO deployment_services (deployment_id, node_key, image, tag) VALUES ($1, $2, 'demo/web', 'v1') RETURNING deployment_id`, id, s)
	}
	return id
}

func (f *fixture) push(t *testing.T, node int64, cs ...protocol.ContainerStats) int64 {
	t.Helper()
	n, err := f.h.Record(context.Background(), node, protocol.Metrics{Containers: cs})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (f *fixture) history(t *testing.T, dep int64, since time.Time) usage.Deployment {
	t.Helper()
	d, err := f.h.Of(context.Background(), dep, since)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (f *fixture) rows(t *testing.T, dep int64) map[string]int {
	t.Helper()
	n, err := f.st.UsageRows(context.Background(), dep)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestHistoryIsBoundedPerService: an agent pushing every second for ten
// minutes (four times the window) leaves at most one sample per 15 s slot
// and never more rows per service than the ring has slots; the history
// answers the last window only, oldest first, with the latest figure of
// each slot.
func TestHistoryIsBoundedPerService(t *testing.T) {
	f := newFixture(t)
	dep := f.deployment(t, "shop-1", f.node, "running", "api", "db")
	start := f.now
	for i := 0; i < 600; i++ {
		f.now = start.Add(time.Duration(i) * time.Second)
		if n := f.push(t, f.node,
			protocol.ContainerStats{DeploymentID: dep, Service: "api", CPUPercent: float64(i), MemoryBytes: int64(i) << 20, Running: true},
			protocol.ContainerStats{DeploymentID: dep, Service: "db", CPUPercent: 1, MemoryBytes: 64 << 20, Running: true},
			protocol.ContainerStats{DeploymentID: dep, Service: "api", CPUPercent: -1, MemoryBytes: 1, Running: true}, // a duplicate in one push is ignored
		); n != 2 {
			t.Fatalf("push %d recorded %d samples, want 2", i, n)
		}
		if rows := f.rows(t, dep); rows["api"] > 8 || rows["db"] > 8 {
			t.Fatalf("after push %d the history holds %v rows, more than the ring's 8 slots", i, rows)
		}
	}
	h := f.history(t, dep, time.Time{})
	if h.StepSeconds != 15 || h.WindowSeconds != 120 || len(h.Services) != 2 || h.Services[0].Service != "api" || h.Services[1].Service != "db" {
		t.Fatalf("history: step %d, window %d, services %+v", h.StepSeconds, h.WindowSeconds, h.Services)
	}
	api := h.Services[0].Points
	// The window is 2 minutes back from 12:09:59: slots 12:08:00..12:09:59,
	// and the oldest slot still holds a sample older than the window.
	if len(api) < 7 || len(api) > 8 {
		t.Fatalf("api has %d points in the window, want 7 or 8: %v", len(api), api)
	}
	for i, p := range api {
		at := time.UnixMilli(int64(p[0] * 1000)).UTC()
		if at.Before(f.now.Add(-2*time.Minute)) || at.After(f.now) {
			t.Errorf("point %d at %s is outside the window", i, at)
		}
		if i > 0 && p[0]-api[i-1][0] != 15 {
			t.Errorf("points %d and %d are %gs apart, want one per 15 s slot", i-1, i, p[0]-api[i-1][0])
		}
		// Each slot keeps the last push that fell into it (at second 14 of
		// the slot, except the current one).
		sec := int(at.Sub(start) / time.Second)
		if p[1] != float64(sec) || p[2] != float64(int64(sec)<<20) {
			t.Errorf("point %d at second %d has cpu %g memory %g, want %d and %d MiB", i, sec, p[1], p[2], sec, sec)
		}
	}
	if last := api[len(api)-1]; last[1] != 599 {
		t.Errorf("the newest point has cpu %g, want the last push's 599", last[1])
	}
	// since returns only newer points (what the page polls for).
	newer := f.history(t, dep, time.UnixMilli(int64(api[len(api)-3][0]*1000)))
	if got := len(newer.Services[0].Points); got != 2 {
		t.Errorf("since the third newest point: %d points, want 2", got)
	}
}

// TestHistoryBelongsToTheDeploymentOnItsNode: an agent cannot write figures
// for deployments placed on another node, nor for services a deployment
// does not have, nor for deleted or failed ones; a container that is not
// running or was not measured leaves a gap; a deployment that turns
// deleted loses its history at once; the history of a failed deployment
// ages out with pruning; a deployment's row removed takes it along.
func TestHistoryBelongsToTheDeploymentOnItsNode(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	mine := f.deployment(t, "mine", f.node, "running", "web")
	theirs := f.deployment(t, "theirs", f.other, "running", "web")
	gone := f.deployment(t, "gone", f.node, "deleted", "web")
	stat := func(dep int64, svc string) protocol.ContainerStats {
		return protocol.ContainerStats{DeploymentID: dep, Service: svc, CPUPercent: 12.5, MemoryBytes: 50 << 20, Running: true}
	}
	stopped := f.deployment(t, "stopped", f.node, "running", "web")
	if n := f.push(t, f.node, stat(mine, "web"), stat(theirs, "web"), stat(mine, "nope"), stat(gone, "web"), stat(0, "web"),
		protocol.ContainerStats{DeploymentID: stopped, Service: "web", Running: false},
		protocol.ContainerStats{DeploymentID: stopped, Service: "web", Running: true, CPUPercent: 3}); n != 1 { // not measured: no memory
		t.Fatalf("recorded %d samples, want only mine/web", n)
	}
	if got := f.rows(t, stopped); len(got) != 0 {
		t.Errorf("a container that is not running or not measured got samples: %v", got)
	}
	for dep, want := range map[int64]int{mine: 1, theirs: 0, gone: 0} {
		if got := f.rows(t, dep)["web"]; got != want {
			t.Errorf("deployment %d has %d samples, want %d", dep, got, want)
		}
	}
	// Deleting: the lifecycle sets the status; the samples go with it.
	f.now = f.now.Add(15 * time.Second)
	f.push(t, f.node, stat(mine, "web"))
	if _, err := f.st.Pool.Exec(ctx, `UPDATE deployments SET status = 'deleted' WHERE id = $1`, mine); err != nil {
		t.Fatal(err)
	}
	if rows := f.rows(t, mine); len(rows) != 0 {
		t.Fatalf("a deleted deployment still has samples: %v", rows)
	}
	if h := f.history(t, mine, time.Time{}); len(h.Services) != 1 || len(h.Services[0].Points) != 0 {
		t.Fatalf("history of a deleted deployment: %+v", h.Services)
	}
	if n := f.push(t, f.node, stat(mine, "web")); n != 0 {
		t.Fatalf("a deleted deployment got %d new samples", n)
	}

	// A failed deployment keeps what it had until the window has passed.
	failed := f.deployment(t, "failed", f.node, "running", "web")
	f.push(t, f.node, stat(failed, "web"))
	if _, err := f.st.Pool.Exec(ctx, `UPDATE deployments SET status = 'failed' WHERE id = $1`, failed); err != nil {
		t.Fatal(err)
	}
	if n, err := f.h.Prune(ctx); err != nil || n != 0 {
		t.Fatalf("prune within the window removed %d (%v)", n, err)
	}
	if got := len(f.history(t, failed, time.Time{}).Services[0].Points); got != 1 {
		t.Fatalf("failed deployment has %d points within the window, want 1", got)
	}
	f.now = f.now.Add(2*time.Minute + time.Second)
	if got := len(f.history(t, failed, time.Time{}).Services[0].Points); got != 0 {
		t.Fatalf("failed deployment has %d points after the window, want none", got)
	}
	if n, err := f.h.Prune(ctx); err != nil || n != 1 {
		t.Fatalf("prune after the window removed %d (%v), want 1", n, err)
	}

	// Removing the row (an environment or project delete removes its
	// deleted deployments; a retry replaces the services) cascades.
	live := f.deployment(t, "live", f.node, "running", "web")
	f.push(t, f.node, stat(live, "web"))
	if _, err := f.st.Pool.Exec(ctx, `DELETE FROM deployment_services WHERE deployment_id = $1`, live); err != nil {
		t.Fatal(err)
	}
	if rows := f.rows(t, live); len(rows) != 0 {
		t.Fatalf("samples outlived their service row: %v", rows)
	}
}
