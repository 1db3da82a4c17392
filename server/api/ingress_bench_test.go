package api

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	ingressconfig "github.com/nullops/nullops/ingress/config"
	"github.com/nullops/nullops/server/changefeed"
	"github.com/nullops/nullops/server/config"
	"github.com/nullops/nullops/server/ingresspub"
	"github.com/nullops/nullops/server/store"
	"github.com/nullops/nullops/server/store/storetest"
)

var propagationModes = flag.String("propagation.modes", "full,delta", "ingress modes BenchmarkRoutePropagation alternates (full: whole documents, delta: deltas)")

// BenchmarkRoutePropagation measures the time from a deployment becoming
// running in PostgreSQL (the UPDATE's commit; the publisher learns of it
// through the trigger's NOTIFY and the change feed, as in the server) to
// the first successful response for its host through nullops-ingress, with
// 1,000 and
// 10,000 other routes configured, for an ingress taking whole documents
// (server.deltas=false, how every update travelled before deltas) and one
// taking deltas, against the same server in the same run: the two
// alternate in rounds (one ingress running at a time). It reports p50, p99
// and max in milliseconds and the bytes received per update, per mode, and
// the load average at the end. -propagation.modes=delta runs only the delta
// ingress.
//
//	go test ./server/api -run '^$' -bench RoutePropagation -benchtime 200x
func BenchmarkRoutePropagation(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) { benchPropagation(b, n) })
	}
}

func benchPropagation(b *testing.B, routes int) {
	const token = "bench-token"
	const rounds = 4
	modes := strings.Split(*propagationModes, ",")
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer svc.Close()
	port := svc.Listener.Addr().(*net.TCPAddr).Port

	st := storetest.New(b)
	seed := storetest.NewRouteSeed(b, st)
	env := seed.Environment(b, "qa", "example.test", "", true)
	node := seed.Node(b, env, "n1", "127.0.0.1", "online")
	seed.BulkDeployments(b, env, node, "r", "running", routes, port)
	perRound := (b.N + rounds - 1) / rounds
	changes := perRound * rounds * len(modes)
	waiting := seed.BulkDeployments(b, env, node, "w", "deploying", changes, port)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub, err := ingresspub.New(st, ingresspub.Options{Log: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	feed := changefeed.New(st, changefeed.Options{Channels: []string{store.RoutesChannel}, Log: zerolog.Nop()})
	pub.Follow(feed)
	go pub.Run(ctx)
	go feed.Run(ctx)
	<-feed.Ready()
	first, cancelFirst := context.WithTimeout(ctx, time.Minute)
	_, ok := pub.WaitNewer(first, 0)
	cancelFirst()
	if !ok {
		b.Fatal("no route table after a minute")
	}
	cfg := config.Defaults()
	cfg.Ingress.Token = token
	e := echo.New()
	e.HTTPErrorHandler = ErrorHandler(zerolog.Nop())
	registerIngress(e.Group("/api/v1"), &Deps{Config: cfg, Store: st, Log: zerolog.Nop(), Ingress: pub})
	srv := httptest.NewServer(e)
	defer srv.Close()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	durations := map[string][]time.Duration{}
	bytes := map[string]int64{}
	updates := map[string]int64{}
	wholeDocs := map[string]int64{}
	refused := map[string]int64{}
	next := 0
	b.ResetTimer()
	for range rounds {
		for _, mode := range modes {
			b.StopTimer()
			ing := startIngressWith(b, srv.URL, token, b.TempDir(), func(c *ingressconfig.Config) { c.Server.Deltas = mode == "delta" })
			want := pub.Current()
			deadline := time.Now().Add(2 * time.Minute)
			// Converged once the table is served and the watcher has
			// counted the document it came in (it counts after applying).
			for ing.app.Proxy.Current().Version != want.ETag || ing.app.Watcher.Stats().Full == 0 {
				if time.Now().After(deadline) {
					b.Fatalf("ingress at %s, want %s", ing.app.Proxy.Current().Version, want.ETag)
				}
				time.Sleep(10 * time.Millisecond)
				want = pub.Current()
			}
			before := ing.app.Watcher.Stats()
			b.StartTimer()
			for range perRound {
				host := fmt.Sprintf("web.w%d.qa.example.test", next+1)
				start := time.Now()
				seed.SetDeploymentStatus(b, waiting[next], "running")
				next++
				for {
					req, _ := http.NewRequest(http.MethodGet, "http://"+ing.app.Addr()+"/", nil)
					req.Host = host
					res, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode == http.StatusOK {
						break
					}
					if time.Since(start) > 30*time.Second {
						b.Fatalf("%s not routed after 30s (status %d)", host, res.StatusCode)
					}
					time.Sleep(2 * time.Millisecond)
				}
				durations[mode] = append(durations[mode], time.Since(start))
			}
			b.StopTimer()
			after := ing.app.Watcher.Stats()
			bytes[mode] += after.FullBytes + after.DeltaBytes - before.FullBytes - before.DeltaBytes
			updates[mode] += after.Full + after.Delta - before.Full - before.Delta
			wholeDocs[mode] += after.Full - before.Full
			refused[mode] += after.Refused - before.Refused
			ing.stop()
			client.CloseIdleConnections()
			b.StartTimer()
		}
	}
	b.StopTimer()
	for _, mode := range modes {
		d := durations[mode]
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		pct := func(p float64) float64 {
			return float64(d[int(p*float64(len(d)-1))].Microseconds()) / 1000
		}
		b.ReportMetric(pct(0.50), mode+"-p50-ms")
		b.ReportMetric(pct(0.99), mode+"-p99-ms")
		b.ReportMetric(pct(1), mode+"-max-ms")
		if updates[mode] > 0 {
			b.ReportMetric(float64(bytes[mode])/float64(updates[mode]), mode+"-bytes/update")
		}
		if mode == "delta" {
			b.ReportMetric(float64(wholeDocs[mode]), "delta-mode-whole-docs")
			b.ReportMetric(float64(refused[mode]), "delta-mode-refused")
		}
	}
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(data)); len(f) > 0 {
			if v, err := strconv.ParseFloat(f[0], 64); err == nil {
				b.ReportMetric(v, "load1")
			}
		}
	}
	b.ReportMetric(0, "ns/op")
}
