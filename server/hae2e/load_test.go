package hae2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
)

// load drives the API through the load balancer: deployment workers
// create deployments and delete three of every four at once; a reader
// lists deployments, nodes, projects and the caller. Every count is kept
// for the report.
type load struct {
	w *world

	mu          sync.Mutex
	kept        []int64 // created and to stay running
	deleted     []int64 // created, then deleted
	opFailures  []string
	createLost  []string // creates whose answer was lost (looked up by name later)
	reads       int
	readFailure int
	exhausted   int // workers that ran out of operations before stop
}

// run starts the workers; they stop when stop is closed or after their
// bounded number of operations. wait returns once all have stopped.
func (l *load) run(stop <-chan struct{}, deployWorkers, maxCreates int) (wait func()) {
	var wg sync.WaitGroup
	for wk := range deployWorkers {
		wg.Go(func() {
			for n := range maxCreates {
				select {
				case <-stop:
					return
				default:
				}
				l.deployOnce(fmt.Sprintf("w%d-%d", wk, n), n%4 != 0)
				time.Sleep(300 * time.Millisecond) // pacing: spread the operations over the whole restart
			}
			l.mu.Lock()
			l.exhausted++
			l.mu.Unlock()
		})
	}
	wg.Go(func() {
		paths := []string{"/deployments?per_page=50", fmt.Sprintf("/environments/%d/nodes", l.w.envID), "/me", "/projects"}
		for i := 0; i < 20000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			st, _, err := l.w.admin.do("GET", paths[i%len(paths)], nil)
			l.mu.Lock()
			l.reads++
			if err != nil || st != 200 {
				l.readFailure++
			}
			l.mu.Unlock()
			time.Sleep(5 * time.Millisecond) // pacing, not a wait for a condition
		}
	})
	return wg.Wait
}

func (l *load) deployOnce(name string, del bool) {
	st, b, err := l.w.admin.do("POST", "/deployments", map[string]any{"project_id": l.w.project, "environment_id": l.w.envID, "name": name})
	if err != nil || st != 202 {
		l.mu.Lock()
		l.opFailures = append(l.opFailures, fmt.Sprintf("create %s: %d %s %v", name, st, b, err))
		l.createLost = append(l.createLost, name)
		l.mu.Unlock()
		return
	}
	var d struct {
		ID int64 `json:"id"`
	}
	_ = json.Unmarshal(b, &d)
	if !del {
		l.mu.Lock()
		l.kept = append(l.kept, d.ID)
		l.mu.Unlock()
		return
	}
	for attempt := 0; ; attempt++ {
		st, b, err = l.w.admin.do("DELETE", fmt.Sprintf("/deployments/%d", d.ID), nil)
		if err == nil && st == 202 {
			break
		}
		l.mu.Lock()
		l.opFailures = append(l.opFailures, fmt.Sprintf("delete %s: %d %s %v", name, st, b, err))
		l.mu.Unlock()
		if err == nil && st == 409 || attempt == 5 {
			break // already deleting (an earlier attempt went through)
		}
	}
	l.mu.Lock()
	l.deleted = append(l.deleted, d.ID)
	l.mu.Unlock()
}

// settle resolves creates whose answer was lost (by name: the deployment
// exists or not), then waits until every deployment is in the state the
// API was asked for and Docker runs exactly one container for each kept
// one and none for the others.
func (l *load) settle(t *testing.T) {
	t.Helper()
	w := l.w
	ctx := testutil.Context(t, 3*time.Minute)
	for _, name := range l.createLost {
		st, b, err := w.admin.do("GET", "/deployments?per_page=5&q="+url.QueryEscape(name), nil)
		if err != nil || st != 200 {
			t.Fatalf("look up %s: %d %s %v", name, st, b, err)
		}
		var page struct {
			Items []struct {
				ID   int64  `json:"id"`
				Name string `json:"name"`
			} `json:"items"`
		}
		_ = json.Unmarshal(b, &page)
		for _, it := range page.Items {
			if it.Name == name {
				t.Logf("create %s: the answer was lost but the deployment exists (id %d)", name, it.ID)
				l.kept = append(l.kept, it.ID)
			}
		}
	}
	for _, id := range l.kept {
		w.waitStatus(t, ctx, id, "running")
	}
	for _, id := range l.deleted {
		w.waitStatus(t, ctx, id, "deleted")
	}
	want := map[string]int{}
	for _, id := range l.kept {
		want[fmt.Sprint(id)] = 1
	}
	var got map[string]int
	for {
		got = w.runningContainers(t)
		same := len(got) == len(want)
		for k, n := range want {
			same = same && got[k] == n
		}
		if same {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("Docker runs containers of deployments %v, the API has %v running", got, want)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// eventsAppliedOnce checks the journaled agent events: per agent instance,
// the sequence numbers applied are 1..max with no gap (none lost) and no
// repeat (the primary key), and every deployment's history holds each
// action at most once.
func (w *world) eventsAppliedOnce(t *testing.T) {
	t.Helper()
	ctx := testutil.Context(t, time.Minute)
	st := openStore(t, ctx, w.db)
	rows, err := st.Pool.Query(ctx, `SELECT node_id, agent_instance, count(*), min(seq), max(seq) FROM agent_events GROUP BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var node int64
		var inst string
		var n, lo, hi int64
		if err := rows.Scan(&node, &inst, &n, &lo, &hi); err != nil {
			t.Fatal(err)
		}
		if n != hi-lo+1 {
			t.Errorf("node %d instance %s: %d events applied for seq %d..%d", node, inst, n, lo, hi)
		}
	}
	rows.Close()
	var dups []string
	rows, err = st.Pool.Query(ctx, `SELECT deployment_id, action, count(*) FROM deployment_history GROUP BY 1, 2 HAVING count(*) > 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, n int64
		var action string
		if err := rows.Scan(&id, &action, &n); err != nil {
			t.Fatal(err)
		}
		dups = append(dups, fmt.Sprintf("deployment %d: %s ×%d", id, action, n))
	}
	rows.Close()
	if len(dups) > 0 {
		t.Errorf("history entries recorded more than once: %v", dups)
	}
}

func (l *load) report(t *testing.T, what string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("%s: %d deployments kept, %d created and deleted, %d failed deployment operations %v; %d reads, %d failed; %d deployment workers ran out of operations before the end",
		what, len(l.kept), len(l.deleted), len(l.opFailures), l.opFailures, l.reads, l.readFailure, l.exhausted)
}
