package ingresspub_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

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
	pids := backendPIDs(b, st)
	pgBefore := procCPU(pids)
	selfBefore := selfCPU()
	times := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		times = append(times, change(i))
	}
	b.StopTimer()
	self := selfCPU() - selfBefore
	for _, pid := range backendPIDs(b, st) {
		if !slices.Contains(pids, pid) {
			pids = append(pids, pid) // opened during the run: count all of it
		}
	}
	pg := procCPU(pids) - pgBefore
	slices.Sort(times)
	pct := func(q float64) float64 { return float64(times[int(q*float64(len(times)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(self.Microseconds())/float64(b.N), "server-cpu-µs/change")
	b.ReportMetric(float64(pg.Microseconds())/float64(b.N), "pg-cpu-µs/change")
	b.ReportMetric(loadAverage(), "load1")
}

// backendPIDs are the PostgreSQL backends connected to the test's database
// (its pool and the change feed's connection).
func backendPIDs(b *testing.B, st *store.Store) []int {
	rows, err := st.Pool.Query(context.Background(), `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			b.Fatal(err)
		}
		out = append(out, pid)
	}
	return out
}

// procCPU sums user and system time of processes (clock ticks of 10 ms).
func procCPU(pids []int) time.Duration {
	var sum time.Duration
	for _, pid := range pids {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the command (which may hold spaces) in parentheses.
		f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		sum += time.Duration(ut+stime) * 10 * time.Millisecond
	}
	return sum
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
