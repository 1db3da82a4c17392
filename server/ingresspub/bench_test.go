package ingresspub_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/server/changefeed"
	"github.com/nullops/nullops/server/ingresspub"
	"github.com/nullops/nullops/server/store"
	"github.com/nullops/nullops/server/store/storetest"
)

// BenchmarkRouteChange measures the server side of one route change with
// 1,000 and 10,000 routes: from the UPDATE that commits it to the publisher
// holding the new version, through the real path (trigger, NOTIFY, change
// feed, publisher). Each op makes one deployment deploying or running again.
// It reports p50/p99 of that time, the CPU the test process spent per
// change (the publisher and the feed; nothing else runs in it) and the CPU
// the PostgreSQL backends of the test database spent per change (read from
// /proc; the statements of the changes themselves included), and the
// machine's load average when it ended.
//
//	go test ./server/ingresspub -run '^$' -bench RouteChange -benchtime 200x
func BenchmarkRouteChange(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) { benchRouteChange(b, n) })
	}
}

func benchRouteChange(b *testing.B, routes int) {
	st := storetest.New(b)
	seed := storetest.NewRouteSeed(b, st)
	env := seed.Environment(b, "qa", "example.test", "", true)
	node := seed.Node(b, env, "n1", "127.0.0.1", "online")
	ids := seed.BulkDeployments(b, env, node, "r", "running", routes, 32000)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := ingresspub.New(st, ingresspub.Options{Log: zerolog.Nop(), Recheck: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	feed := changefeed.New(st, changefeed.Options{Channels: []string{store.RoutesChannel}, Log: zerolog.Nop()})
	p.Follow(feed)
	go p.Run(ctx)
	go feed.Run(ctx)
	<-feed.Ready()
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer wcancel()
	if _, ok := p.WaitNewer(wctx, 0); !ok {
		b.Fatal("no route table")
	}
	status := map[int64]string{}
	change := func(i int) time.Duration {
		id := ids[i%len(ids)]
		next := "deploying"
		if status[id] == "deploying" {
			next = "running"
		}
		status[id] = next
		cur := p.Current().Version
		start := time.Now()
		seed.SetDeploymentStatus(b, id, next)
		if _, ok := p.WaitNewer(wctx, cur); !ok {
			b.Fatalf("no new version after deployment %d became %s", id, next)
		}
		return time.Since(start)
	}
	// Warm up: the first changes after the start may meet the recompute of
	// the feed's first connection.
	for i := range 3 {
		change(len(ids) - 1 - i)
	}
	pgCPU, err := testutil.NewBackendCPU(context.Background(), st.Pool)
	if err != nil {
		b.Fatal(err)
	}
	selfBefore := testutil.SelfCPU()
	times := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		times = append(times, change(i))
	}
	b.StopTimer()
	self := testutil.SelfCPU() - selfBefore
	pg, err := pgCPU.Spent(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	slices.Sort(times)
	pct := func(q float64) float64 { return float64(times[int(q*float64(len(times)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(self.Microseconds())/float64(b.N), "server-cpu-µs/change")
	b.ReportMetric(float64(pg.Microseconds())/float64(b.N), "pg-cpu-µs/change")
	b.ReportMetric(testutil.LoadAverage(), "load1")
}
