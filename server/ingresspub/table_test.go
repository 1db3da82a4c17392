package ingresspub

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/ingress/dynconfig"
	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/server/changefeed"
	"github.com/nullops/nullops/server/store"
	"github.com/nullops/nullops/server/store/storetest"
)

// After random sequences of committed changes (single statements and
// transactions of several, on deployments, services, nodes and
// environments, including ones that make two rows claim the same host or
// give a host that is not a valid name), the table the publisher derived
// from the notifications alone, by id, is the one Build gives for all the
// rows of the database: same entries, ETag, problems and counts. No whole
// derivation happens meanwhile (the test fails if one does), and a whole
// derivation at the end publishes nothing new.
func TestIncrementalEqualsFullRecompute(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { testIncremental(t, seed, 120, false) })
	}
	// Services "web" and "Web" of one deployment share a router name
	// (RouterName lower-cases): never written by the server (node keys are
	// lower-case DNS labels), but if it happens the publisher derives the
	// whole table, still equal to Build's.
	t.Run("shared router names", func(t *testing.T) { testIncremental(t, 4, 60, true) })
}

func testIncremental(t *testing.T, seed uint64, steps int, sharedNames bool) {
	st := storetest.New(t)
	rs := storetest.NewRouteSeed(t, st)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rng := rand.New(rand.NewPCG(seed, seed*7919))

	// Two environments naming hosts alike (the same deployment and service
	// names give the same host in both), a flat one, two nodes in each.
	envs := []int64{
		rs.Environment(t, "qa", "example.test", "", true),
		rs.Environment(t, "qa2", "example.test", "<service>.<deployment>.qa.<base-domain>", true),
		rs.Environment(t, "flat", "example.test", FlatHostTemplate, true),
	}
	var nodes []int64
	for i, e := range envs {
		for j := range 2 {
			nodes = append(nodes, rs.Node(t, e, fmt.Sprintf("n%d-%d", i, j), fmt.Sprintf("10.0.%d.%d", i, j+1), "online"))
		}
	}
	statuses := []string{"pending", "deploying", "running", "running", "running", "offline", "failed", "deleted"}
	names := []string{"pr-1", "pr-2", "pr-3", "pr-4", "pr-5", "Pr-1", "bad_name", strings.Repeat("x", 70)}
	services := []string{"web", "api", "db"}
	if sharedNames {
		services = append(services, "Web")
	}
	var deps []int64
	newDeployment := func() {
		e := rng.IntN(len(envs))
		node := nodes[2*e+rng.IntN(2)]
		if rng.IntN(5) == 0 {
			node = 0
		}
		var id int64
		var nodeArg any
		if node != 0 {
			nodeArg = node
		}
		insert := func(nodeArg any) error {
			return st.Pool.QueryRow(ctx, `INSERT INTO deployments (name, project_id, environment_id, node_id, pipeline_version_id, status, cpu, memory_mb, ttl_seconds, expires_at)
				SELECT $1, $2, $3, $4, (SELECT id FROM pipeline_versions WHERE project_id = $2), $5, 0.1, 64, 3600, now() + interval '1 hour' RETURNING id`,
				fmt.Sprintf("d%d-%s", len(deps), names[rng.IntN(5)]), rs.ProjectID(), envs[e], nodeArg, statuses[rng.IntN(len(statuses))]).Scan(&id)
		}
		err := insert(nodeArg)
		if err != nil && strings.Contains(err.Error(), "SQLSTATE 23503") {
			err = insert(nil) // the node was deleted
		}
		if err != nil {
			t.Fatal(err)
		}
		deps = append(deps, id)
		for _, svc := range services[:1+rng.IntN(3)] {
			rs.Service(t, id, svc, 32000+rng.IntN(3), rng.IntN(4) != 0)
		}
	}
	for range 30 {
		newDeployment()
	}

	p, err := New(st, Options{Log: zerolog.Nop(), Recheck: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	feed := changefeed.New(st, changefeed.Options{Channels: []string{store.RoutesChannel}, Log: zerolog.Nop()})
	p.Follow(feed)
	// Subscribed after the publisher, so it sees each notification after
	// the publisher did.
	barriers := make(chan int64, 1)
	feed.Subscribe(store.RoutesChannel, changefeed.Handler{Notify: func(payload string) {
		if payload == barrierPayload {
			barriers <- p.Stats().Signals
		}
	}})
	go p.Run(ctx)
	go feed.Run(ctx)
	<-feed.Ready()
	if _, ok := p.WaitNewer(ctx, 0); !ok {
		t.Fatal("no first version")
	}
	// The first whole derivations (start, the feed's first LISTEN) are
	// done once the table matches.
	check := func(step int, what string) {
		t.Helper()
		rows, err := st.RouteRows(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := Build(rows)
		// A notification naming a deployment that does not exist, after
		// those of the step: once the publisher handled it, it handled
		// them.
		if _, err := st.Pool.Exec(ctx, `SELECT pg_notify($1, $2)`, store.RoutesChannel, barrierPayload); err != nil {
			t.Fatal(err)
		}
		var signals int64
		select {
		case signals = <-barriers:
		case <-ctx.Done():
			t.Fatalf("step %d: barrier not delivered", step)
		}
		testutil.WaitFor(t, ctx, 2*time.Millisecond, fmt.Sprintf("step %d (%s): the publisher to handle the step's notifications", step, what), func() bool {
			return p.Stats().Handled >= signals
		})
		if cur := p.Current(); cur.ETag != dynconfig.ConfigETag(want.Configuration()) {
			t.Fatalf("step %d (%s): published %s, a whole derivation gives %s", step, what, cur.ETag, dynconfig.ConfigETag(want.Configuration()))
		}
		p.computeMu.Lock()
		defer p.computeMu.Unlock()
		tb := p.table
		gj, _ := json.Marshal(tb.state.Config())
		wj, _ := json.Marshal(want.Configuration())
		if string(gj) != string(wj) {
			t.Fatalf("step %d (%s): tables differ\nincremental %s\nfull        %s", step, what, gj, wj)
		}
		// The published snapshot's table, made from an earlier one and the
		// deltas since (Snapshot.Configuration), is the same.
		if cj, _ := json.Marshal(p.Current().Configuration()); string(cj) != string(wj) {
			t.Fatalf("step %d (%s): version %d's table differs\npublished %s\nfull      %s", step, what, p.Current().Version, cj, wj)
		}
		if pl := tb.problemList(); !reflect.DeepEqual(pl, want.Problems) && (len(pl) > 0 || len(want.Problems) > 0) {
			t.Fatalf("step %d (%s): problems differ\nincremental %q\nfull        %q", step, what, pl, want.Problems)
		}
		if tb.routed != want.Routed || tb.offline != want.Offline || tb.deploying != want.Deploying {
			t.Fatalf("step %d (%s): counts %d/%d/%d, full derivation %d/%d/%d", step, what,
				tb.routed, tb.offline, tb.deploying, want.Routed, want.Offline, want.Deploying)
		}
		cur := p.Current()
		if cur.Routed != want.Routed || cur.Offline != want.Offline || cur.Deploying != want.Deploying {
			t.Fatalf("step %d (%s): snapshot counts %d/%d/%d, full derivation %d/%d/%d", step, what,
				cur.Routed, cur.Offline, cur.Deploying, want.Routed, want.Offline, want.Deploying)
		}
	}
	check(0, "start")
	full := p.Stats().Recomputes

	exec := func(q string, args ...any) {
		if _, err := st.Pool.Exec(ctx, q, args...); err != nil && !strings.Contains(err.Error(), "SQLSTATE 23") {
			t.Fatalf("%s: %v", q, err)
		}
	}
	pick := func() int64 { return deps[rng.IntN(len(deps))] }
	ops := []struct {
		name string
		sql  func() (string, []any)
	}{
		{"status", func() (string, []any) {
			return `UPDATE deployments SET status = $2 WHERE id = $1`, []any{pick(), statuses[rng.IntN(len(statuses))]}
		}},
		{"rename", func() (string, []any) {
			return `UPDATE deployments SET name = $2 WHERE id = $1`, []any{pick(), names[rng.IntN(len(names))]}
		}},
		{"move", func() (string, []any) {
			n := nodes[rng.IntN(len(nodes))]
			return `UPDATE deployments SET node_id = $2, environment_id = (SELECT environment_id FROM nodes WHERE id = $2) WHERE id = $1`, []any{pick(), n}
		}},
		{"unplace", func() (string, []any) {
			return `UPDATE deployments SET node_id = NULL WHERE id = $1`, []any{pick()}
		}},
		{"port", func() (string, []any) {
			return `UPDATE deployment_services SET host_port = $2 WHERE deployment_id = $1`, []any{pick(), rng.IntN(3) * 32000}
		}},
		{"ingress", func() (string, []any) {
			return `UPDATE deployment_services SET ingress = NOT ingress WHERE deployment_id = $1 AND node_key = $2`, []any{pick(), services[rng.IntN(len(services))]}
		}},
		{"add service", func() (string, []any) {
			return `INSERT INTO deployment_services (deployment_id, node_key, image, tag, container_port, host_port, ingress) VALUES ($1, $2, 'img', 'v1', 8080, 32010, TRUE)`,
				[]any{pick(), services[rng.IntN(len(services))]}
		}},
		{"remove service", func() (string, []any) {
			return `DELETE FROM deployment_services WHERE deployment_id = $1 AND node_key = $2`, []any{pick(), services[rng.IntN(len(services))]}
		}},
		{"node status", func() (string, []any) {
			return `UPDATE nodes SET status = $2 WHERE id = $1`, []any{nodes[rng.IntN(len(nodes))], []string{"online", "offline"}[rng.IntN(2)]}
		}},
		{"node host", func() (string, []any) {
			return `UPDATE nodes SET host = $2 WHERE id = $1`, []any{nodes[rng.IntN(len(nodes))], fmt.Sprintf("10.1.0.%d", rng.IntN(4))}
		}},
		{"environment", func() (string, []any) {
			e := envs[rng.IntN(len(envs))]
			switch rng.IntN(3) {
			case 0:
				return `UPDATE environments SET base_domain = $2 WHERE id = $1`, []any{e, []string{"example.test", "other.test"}[rng.IntN(2)]}
			case 1:
				return `UPDATE environments SET host_template = $2 WHERE id = $1`, []any{e, []string{"", FlatHostTemplate, "<service>.<deployment>.qa.<base-domain>"}[rng.IntN(3)]}
			default:
				return `UPDATE environments SET name = $2 WHERE id = $1`, []any{e, fmt.Sprintf("env%d", rng.IntN(5))}
			}
		}},
		{"delete node", func() (string, []any) {
			// Its deployments are unplaced in the same statement (the
			// foreign key); later moves to it fail and change nothing.
			// Rarer than the others, so that nodes remain for them.
			if rng.IntN(4) != 0 {
				return `UPDATE nodes SET status = 'online' WHERE id = $1`, []any{nodes[rng.IntN(len(nodes))]}
			}
			return `WITH u AS (UPDATE deployments SET node_id = NULL WHERE node_id = $1) DELETE FROM nodes WHERE id = $1`, []any{nodes[rng.IntN(len(nodes))]}
		}},
		{"delete deployment", func() (string, []any) {
			return `WITH s AS (DELETE FROM deployment_services WHERE deployment_id = $1) DELETE FROM deployments WHERE id = $1`, []any{pick()}
		}},
	}
	for step := 1; step <= steps; step++ {
		var what []string
		if rng.IntN(4) == 0 {
			// Several changes in one transaction.
			tx, err := st.Pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 + rng.IntN(4) {
				op := ops[rng.IntN(len(ops))]
				q, args := op.sql()
				what = append(what, op.name)
				if _, err := tx.Exec(ctx, "SAVEPOINT s"); err != nil {
					t.Fatal(err)
				}
				if _, err := tx.Exec(ctx, q, args...); err != nil {
					if !strings.Contains(err.Error(), "SQLSTATE 23") {
						t.Fatalf("%s: %v", q, err)
					}
					if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT s"); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		} else if rng.IntN(10) == 0 {
			what = append(what, "new deployment")
			newDeployment()
		} else {
			op := ops[rng.IntN(len(ops))]
			q, args := op.sql()
			what = append(what, op.name)
			exec(q, args...)
		}
		check(step, strings.Join(what, ", "))
	}
	s := p.Stats()
	if s.Recomputes != full && !sharedNames {
		t.Fatalf("%d whole derivations during the changes; the test is of derivations by id", s.Recomputes-full)
	}
	if s.Partial == 0 {
		t.Fatal("no derivation by id")
	}
	// A whole derivation finds the same table: no new version.
	v := p.Current().Version
	if err := p.Recompute(ctx); err != nil {
		t.Fatal(err)
	}
	if p.Current().Version != v {
		t.Fatal("a whole derivation after the changes published a different table")
	}
	var nodesLeft int
	if err := st.Pool.QueryRow(ctx, `SELECT count(*) FROM nodes`).Scan(&nodesLeft); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d steps, %d derivations by id, %d whole ones, %d versions, %d of %d nodes left", steps, s.Partial, s.Recomputes, v, nodesLeft, len(nodes))
}

const barrierPayload = "d:9223372036854775807"

// A transaction changing more deployments than maxPendingIDs: whether its
// notifications are taken in batches small enough to derive by id or pile
// up past the limit (then the whole table is derived; which one happens
// depends on how fast the publisher takes them, TestChangesOverflowToEverything
// covers the limit itself), the table ends right, and the next change is
// derived by id again.
func TestManyChangesInOneTransaction(t *testing.T) {
	st := storetest.New(t)
	rs := storetest.NewRouteSeed(t, st)
	env := rs.Environment(t, "qa", "example.test", "", true)
	node := rs.Node(t, env, "n1", "10.0.0.1", "online")
	ids := rs.BulkDeployments(t, env, node, "r", "running", maxPendingIDs+200, 32000)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p, err := New(st, Options{Log: zerolog.Nop(), Recheck: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	feed := changefeed.New(st, changefeed.Options{Channels: []string{store.RoutesChannel}, Log: zerolog.Nop()})
	p.Follow(feed)
	barriers := make(chan int64, 1)
	feed.Subscribe(store.RoutesChannel, changefeed.Handler{Notify: func(payload string) {
		if payload == barrierPayload {
			barriers <- p.Stats().Signals
		}
	}})
	go p.Run(ctx)
	go feed.Run(ctx)
	<-feed.Ready()
	settle := func() {
		t.Helper()
		if _, err := st.Pool.Exec(ctx, `SELECT pg_notify($1, $2)`, store.RoutesChannel, barrierPayload); err != nil {
			t.Fatal(err)
		}
		var signals int64
		select {
		case signals = <-barriers:
		case <-ctx.Done():
			t.Fatal("barrier not delivered")
		}
		testutil.WaitFor(t, ctx, 2*time.Millisecond, "the publisher to handle the notifications", func() bool {
			return p.Stats().Handled >= signals
		})
	}
	settle()
	before := p.Stats()
	if _, err := st.Pool.Exec(ctx, `UPDATE deployments SET status = 'offline' WHERE id = ANY($1)`, ids); err != nil {
		t.Fatal(err)
	}
	settle()
	after := p.Stats()
	t.Logf("one transaction over %d deployments: %d whole derivations, %d by id", len(ids),
		after.Recomputes-before.Recomputes, after.Partial-before.Partial)
	if s := p.Current(); s.Offline != len(ids) || s.Routed != 0 {
		t.Fatalf("after the transaction: %d offline, %d routed; want %d offline", s.Offline, s.Routed, len(ids))
	}
	// The next single change is derived by id again.
	rs.SetDeploymentStatus(t, ids[0], "running")
	settle()
	if s := p.Stats(); s.Recomputes != after.Recomputes || s.Partial == after.Partial || p.Current().Routed != 1 {
		t.Fatalf("a single change after the overflow: stats %+v (before it %+v), %d routed", s, after, p.Current().Routed)
	}
}

// A burst naming more ids than maxPendingIDs, and a payload that is not
// one of ours, make the next derivation a whole one.
func TestChangesOverflowToEverything(t *testing.T) {
	var c changes
	if !c.empty() {
		t.Fatal("zero changes not empty")
	}
	c.add("d:1,2,3")
	c.add("n:7")
	c.add("d:3")
	if c.all || c.n != 4 || len(c.deployments) != 3 || len(c.nodes) != 1 {
		t.Fatalf("got %+v", c)
	}
	ids := make([]string, maxPendingIDs)
	for i := range ids {
		ids[i] = fmt.Sprint(i + 100)
	}
	c.add("e:" + strings.Join(ids, ","))
	if !c.all || c.deployments != nil {
		t.Fatalf("overflow: got %+v", c)
	}
	c = changes{}
	c.add("")
	if !c.all {
		t.Fatal("empty payload (the triggers of 000006) must mean everything")
	}
	c = changes{}
	c.add("barrier 1")
	if !c.all {
		t.Fatal("unknown payload must mean everything")
	}

	// Through the publisher: one notification per id, as the triggers send.
	p, err := New(nil, Options{Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	for id := range maxPendingIDs {
		p.notified(fmt.Sprint("d:", id+1))
	}
	if c, n := p.takePending(); c.all || c.n != maxPendingIDs || n != maxPendingIDs {
		t.Fatalf("%d ids: all=%v, %d ids, %d signals", maxPendingIDs, c.all, c.n, n)
	}
	for id := range maxPendingIDs + 1 {
		p.notified(fmt.Sprint("d:", id+1))
	}
	if c, _ := p.takePending(); !c.all {
		t.Fatalf("%d ids between two derivations did not ask for the whole table", maxPendingIDs+1)
	}
}

func TestParsePayload(t *testing.T) {
	good := map[string][]int64{"d:1": {1}, "n:42": {42}, "e:9223372036854775807": {9223372036854775807}, "d:3,1,2": {3, 1, 2}}
	for in, want := range good {
		kind, ids, ok := parsePayload(in)
		if !ok || kind != in[0] || !slices.Equal(ids, want) {
			t.Errorf("parsePayload(%q) = %c %v %v", in, kind, ids, ok)
		}
	}
	for _, in := range []string{"", "d", "d:", "d:0", "d:01", "d:-1", "d:+1", "x:1", "d:1,", "d:,1", "d:1,,2", "d: 1", "d:1 ", "D:1",
		"d:9223372036854775808", "dd:1", "d:1x"} {
		if _, _, ok := parsePayload(in); ok {
			t.Errorf("parsePayload(%q) accepted", in)
		}
	}
}

// The decoder takes whatever comes on the channel (anyone who can connect
// to the database can NOTIFY on it): it never panics, and what it accepts
// is exactly the canonical form.
func FuzzParsePayload(f *testing.F) {
	for _, s := range []string{"d:1", "n:2,3", "e:9223372036854775807", "", "barrier 1", "d:1,", "d:0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		kind, ids, ok := parsePayload(s)
		if !ok {
			if ids != nil || kind != 0 {
				t.Fatalf("rejected %q but returned %c %v", s, kind, ids)
			}
			var c changes
			c.add(s)
			if !c.all {
				t.Fatalf("rejected %q without asking for everything", s)
			}
			return
		}
		if len(ids) == 0 {
			t.Fatalf("accepted %q without ids", s)
		}
		parts := make([]string, len(ids))
		for i, id := range ids {
			if id <= 0 {
				t.Fatalf("accepted %q with id %d", s, id)
			}
			parts[i] = fmt.Sprint(id)
		}
		if canon := string(kind) + ":" + strings.Join(parts, ","); canon != s {
			t.Fatalf("accepted %q, which is not the canonical %q", s, canon)
		}
	})
}
