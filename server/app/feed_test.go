package app_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/server/api/apitest"
	"github.com/nullops/nullops/server/changefeed"
	"github.com/nullops/nullops/server/deploy"
	"github.com/nullops/nullops/server/store"
	"github.com/nullops/nullops/server/store/storetest"
)

// TestEachCommittedChangeReachesThePublisherOnce runs the server's wiring
// (one change feed for the ingress publisher and the live events) through
// what the agent connection manager does when a node with three routed
// deployments stops answering and comes back: each of the two node status
// changes reaches the publisher once (before the change feed it was
// reached once by the NOTIFY, once by the status hook and once per
// deployment event: 5 + 2 signals), while the live events of the three
// deployments still reach their viewers, over the same connection.
func TestEachCommittedChangeReachesThePublisherOnce(t *testing.T) {
	env := apitest.New(t)
	a := env.App
	ctx := testutil.Context(t, 3*time.Minute)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{}, 3)
	go func() { a.Feed.Run(runCtx); done <- struct{}{} }()
	go func() { a.Ingress.Run(runCtx); done <- struct{}{} }()
	go func() { a.Deploy.Run(runCtx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done; <-done })
	select {
	case <-a.Feed.Ready():
	case <-ctx.Done():
		t.Fatal("the change feed did not start listening")
	}
	var listeners int
	if err := a.Store.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
		AND backend_type = 'client backend' AND query ILIKE 'LISTEN%'`).Scan(&listeners); err != nil {
		t.Fatal(err)
	}
	if listeners != 1 {
		t.Fatalf("%d LISTEN connections, want 1", listeners)
	}

	seed := storetest.NewRouteSeed(t, a.Store)
	qa := seed.Environment(t, "qa", "example.test", "", true)
	node := seed.Node(t, qa, "n1", "10.0.0.5", store.NodeOnline)
	for i := range 3 {
		d := seed.Deployment(t, qa, node, fmt.Sprint("pr-", i), store.DeploymentRunning, time.Hour)
		seed.Service(t, d, "web", 32000+i, true)
	}
	sentinel := make(chan string, 16)
	a.Feed.Subscribe(store.RoutesChannel, changefeed.Handler{Notify: func(p string) {
		if p != "" {
			sentinel <- p
		}
	}})
	barrier := func(name string) {
		t.Helper()
		if _, err := a.Store.Pool.Exec(ctx, "SELECT pg_notify($1, $2)", store.RoutesChannel, name); err != nil {
			t.Fatal(err)
		}
		for {
			select {
			case p := <-sentinel:
				if p == name {
					return
				}
			case <-ctx.Done():
				t.Fatalf("%s not delivered", name)
			}
		}
	}
	barrier("seeded")
	sub := a.Deploy.Broker.Subscribe(func(e deploy.Event) bool { return e.Type == deploy.EventStatus })
	defer sub.Close()

	before := a.Ingress.Stats().Signals
	if _, err := a.Store.SetNodeStatus(ctx, node, store.NodeOffline, "test"); err != nil {
		t.Fatal(err)
	}
	if err := a.Deploy.NodeOffline(ctx, node, "test"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		select {
		case ev := <-sub.C:
			if ev.NodeStatus != store.NodeOffline {
				t.Fatalf("live event %d: node status %q, want offline", i, ev.NodeStatus)
			}
		case <-ctx.Done():
			t.Fatalf("%d of 3 live events of the deployments on the unreachable node", i)
		}
	}
	if _, err := a.Store.SetNodeStatus(ctx, node, store.NodeOnline, ""); err != nil {
		t.Fatal(err)
	}
	if err := a.Deploy.NodeSynced(ctx, node); err != nil {
		t.Fatal(err)
	}
	barrier("done")
	if n := a.Ingress.Stats().Signals - before - 1; n != 2 {
		t.Fatalf("two node status changes reached the publisher %d times, want 2", n)
	}
}

// TestLiveEventStreamsEndWhenTheFeedReconnects: events committed while the
// LISTEN connection was gone were never delivered, so the open event
// subscriptions (SSE streams) end and their clients reload; new ones get
// the events committed after the reconnection.
func TestLiveEventStreamsEndWhenTheFeedReconnects(t *testing.T) {
	env := apitest.New(t)
	a := env.App
	ctx := testutil.Context(t, 3*time.Minute)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{}, 2)
	go func() { a.Feed.Run(runCtx); done <- struct{}{} }()
	go func() { a.Deploy.Run(runCtx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done })
	select {
	case <-a.Feed.Ready():
	case <-ctx.Done():
		t.Fatal("the change feed did not start listening")
	}
	seed := storetest.NewRouteSeed(t, a.Store)
	qa := seed.Environment(t, "qa", "example.test", "", true)
	node := seed.Node(t, qa, "n1", "10.0.0.5", store.NodeOnline)
	seed.Deployment(t, qa, node, "pr-1", store.DeploymentRunning, time.Hour)

	old := a.Deploy.Broker.Subscribe(nil)
	defer old.Close()
	if _, err := a.Store.Pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = $1`, store.ListenerApplicationName); err != nil {
		t.Fatal(err)
	}
	if err := a.Feed.WaitConnects(ctx, 2); err != nil {
		t.Fatal(err)
	}
	select {
	case _, open := <-old.C:
		if open {
			t.Fatal("an event arrived on a subscription from before the reconnection")
		}
	case <-ctx.Done():
		t.Fatal("the subscription from before the reconnection stayed open")
	}
	sub := a.Deploy.Broker.Subscribe(nil)
	defer sub.Close()
	if err := a.Deploy.NodeOffline(ctx, node, "test"); err != nil {
		t.Fatal(err)
	}
	select {
	case ev, open := <-sub.C:
		if !open || ev.Type != deploy.EventStatus {
			t.Fatalf("after the reconnection: %+v (open %v)", ev, open)
		}
	case <-ctx.Done():
		t.Fatal("no event after the reconnection")
	}
}
