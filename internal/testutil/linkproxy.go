package testutil

import (
	"context"
	"fmt"
	"strings"
	"testing"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// LinkProxy is an in-process toxiproxy between a client and upstream, so a
// test can cut the link without closing it.
type LinkProxy struct {
	p    *toxiproxy.Proxy
	Port int // where clients connect, on 127.0.0.1
}

// StartLinkProxy proxies 127.0.0.1:<free port> to upstream until the test ends.
func StartLinkProxy(t testing.TB, upstream string) *LinkProxy {
	t.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	port := FreePort(t)
	p := toxiproxy.NewProxy(srv, "link", fmt.Sprintf("127.0.0.1:%d", port), upstream)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return &LinkProxy{p: p, Port: port}
}

// Cut makes the link drop every byte in both directions without closing
// anything (a half-open link: only liveness deadlines notice).
func (l *LinkProxy) Cut(t testing.TB) {
	t.Helper()
	for _, dir := range []string{"upstream", "downstream"} {
		body := fmt.Sprintf(`{"name":"cut-%s","type":"timeout","stream":"%s","toxicity":1,"attributes":{"timeout":0}}`, dir, dir)
		if _, err := l.p.Toxics.AddToxicJson(strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
}

// Restore undoes Cut.
func (l *LinkProxy) Restore(t testing.TB) {
	t.Helper()
	for _, dir := range []string{"upstream", "downstream"} {
		if err := l.p.Toxics.RemoveToxic(context.Background(), "cut-"+dir); err != nil {
			t.Fatal(err)
		}
	}
}
