package proxy

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// kindUnknown labels requests for hosts without a route; kindGone those for
// hosts of recently removed deployments.
const (
	kindUnknown = 4
	kindGone    = 5
)

var kindNames = [6]string{"backend", "offline", "deploying", "no-server", "unknown", "gone"}

var (
	metricRequests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "nullops_ingress_requests_total",
		Help: "Requests handled, by route kind (backend, offline, deploying, no-server, unknown, gone) and status code class.",
	}, []string{"kind", "code"})
	metricDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "nullops_ingress_request_duration_seconds",
		Help:    "Time to answer a request (for WebSockets: the connection's lifetime), by route kind.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
	}, []string{"kind"})
	metricSwaps = promauto.NewCounter(prometheus.CounterOpts{
		Name: "nullops_ingress_table_swaps_total",
		Help: "Routing tables swapped in.",
	})
	metricHosts = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "nullops_ingress_hosts",
		Help: "Hosts in the routing table, by kind.",
	}, []string{"kind"})

	// Resolved once: the request path only does atomic adds.
	requestCounters [6][6]prometheus.Counter // [kind][status/100]
	durationObs     [6]prometheus.Observer
)

func init() {
	for k, name := range kindNames {
		durationObs[k] = metricDuration.WithLabelValues(name)
		for c := 1; c <= 5; c++ {
			requestCounters[k][c] = metricRequests.WithLabelValues(name, strconv.Itoa(c)+"xx")
		}
	}
}

func observe(kind, status int, d time.Duration) {
	c := status / 100
	if c < 1 || c > 5 {
		c = 5
	}
	requestCounters[kind][c].Inc()
	durationObs[kind].Observe(d.Seconds())
}
