package api

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	"github.com/nullops/nullops/server/config"
	"github.com/nullops/nullops/server/ingresspub"
	"github.com/nullops/nullops/server/store/storetest"
)

// BenchmarkRoutePropagation measures the time from a deployment becoming
// running in PostgreSQL (and Changed() being called) to the first
// successful response for its host through nullops-ingress, with 1,000 and
// 10,000 other routes configured. It reports p50 and p99 in milliseconds.
//
//	go test ./server/api -run '^$' -bench RoutePropagation -benchtime 100x
func BenchmarkRoutePropagation(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) { benchPropagation(b, n) })
	}
}

func benchPropagation(b *testing.B, routes int) {
	const token = "bench-token"
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer svc.Close()
	port := svc.Listener.Addr().(*net.TCPAddr).Port

	st := storetest.New(b)
	seed := storetest.NewRouteSeed(b, st)
	env := seed.Environment(b, "qa", "example.test", "", true)
	node := seed.Node(b, env, "n1", "127.0.0.1", "online")
	seed.BulkDeployments(b, env, node, "r", "running", routes, port)
	waiting := seed.BulkDeployments(b, env, node, "w", "deploying", b.N, port)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub, err := ingresspub.New(st, ingresspub.Options{Log: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	go pub.Run(ctx)
	cfg := config.Defaults()
	cfg.Ingress.Token = token
	e := echo.New()
	e.HTTPErrorHandler = ErrorHandler(zerolog.Nop())
	registerIngress(e.Group("/api/v1"), &Deps{Config: cfg, Store: st, Log: zerolog.Nop(), Ingress: pub})
	srv := httptest.NewServer(e)
	defer srv.Close()

	ing := startIngress(b, srv.URL, token, b.TempDir())
	defer ing.stop()
	deadline := time.Now().Add(2 * time.Minute)
	for ing.app.Proxy.Current().Hosts() != routes+b.N {
		if time.Now().After(deadline) {
			b.Fatalf("ingress has %d hosts, want %d", ing.app.Proxy.Current().Hosts(), routes+b.N)
		}
		time.Sleep(10 * time.Millisecond)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	durations := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		host := fmt.Sprintf("web.w%d.qa.example.test", i+1)
		start := time.Now()
		seed.SetDeploymentStatus(b, waiting[i], "running")
		pub.Changed()
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
		durations = append(durations, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(durations, func(i, j int) bool { return durations[i] < durations[j] })
	pct := func(p float64) float64 {
		return float64(durations[int(p*float64(len(durations)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
}
