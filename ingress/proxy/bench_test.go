package proxy_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/ingress/activity"
	"github.com/nullops/nullops/ingress/proxy"
)

// BenchmarkProxyRequest measures one proxied request end to end on loopback:
// a client with keep-alive, the proxy's http.Server, routing, the transport to
// a real backend answering 1 KiB, and the copy back. Compare -benchmem figures
// and CPU profiles (-cpuprofile) before and after a change of the request path;
// scripts/bench-ingress.sh compares the binary with nginx and HAProxy.
//
// "direct" is the default request path (direct.go); "transport" forces
// every request through httputil.ReverseProxy and net/http.Transport.
func BenchmarkProxyRequest(b *testing.B) {
	b.Run("direct", func(b *testing.B) { benchProxyRequest(b, nil) })
	b.Run("transport", func(b *testing.B) { benchProxyRequest(b, proxy.NewTransport()) })
}

func benchProxyRequest(b *testing.B, tr http.RoundTripper) {
	body := make([]byte, 1024)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(body)
	}))
	defer be.Close()
	p := proxy.New(proxy.Options{Log: zerolog.Nop(), Activity: activity.NewTracker(), Transport: tr})
	if _, err := p.Apply(doc(b, routeSpec{name: "d1-web", host: "web.pr-1.qa.example.test", url: be.URL}), "v1"); err != nil {
		b.Fatal(err)
	}
	s := httptest.NewServer(p)
	defer s.Close()
	ct := &http.Transport{MaxIdleConnsPerHost: 256}
	defer ct.CloseIdleConnections()
	c := &http.Client{Transport: ct}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/", nil)
		req.Host = "web.pr-1.qa.example.test"
		for pb.Next() {
			res, err := c.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
}
