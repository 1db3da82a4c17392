package agents_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/server/store"
)

// startProxy runs toxiproxy in-process: 127.0.0.1:<free> → upstream.
func startProxy(t *testing.T, upstream string) (*toxiproxy.Proxy, int) {
	t.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	port := testutil.FreePort(t)
	p := toxiproxy.NewProxy(srv, "agent", fmt.Sprintf("127.0.0.1:%d", port), upstream)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p, port
}

// cut makes the network drop every byte in both directions without closing
// anything (toxiproxy's timeout toxic with timeout 0): only the liveness
// deadline can notice.
func cut(t *testing.T, p *toxiproxy.Proxy) {
	t.Helper()
	for _, dir := range []string{"upstream", "downstream"} {
		body := fmt.Sprintf(`{"name":"cut-%s","type":"timeout","stream":"%s","toxicity":1,"attributes":{"timeout":0}}`, dir, dir)
		if _, err := p.Toxics.AddToxicJson(strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
}

func restore(t *testing.T, p *toxiproxy.Proxy) {
	t.Helper()
	for _, dir := range []string{"upstream", "downstream"} {
		if err := p.Toxics.RemoveToxic(context.Background(), "cut-"+dir); err != nil {
			t.Fatal(err)
		}
	}
}

// A network cut longer than the liveness deadline: offline; restored:
// online again, and the events the agent journaled during the cut (some of
// them written into the dead connection) arrive exactly once, in order.
func TestNetworkCutOfflineThenOnlineWithoutLosingEvents(t *testing.T) {
	e := newEnv(t)
	agentPort := testutil.FreePort(t)
	proxy, proxyPort := startProxy(t, fmt.Sprintf("127.0.0.1:%d", agentPort))
	n, tok := e.addNode("node-1", proxyPort, "")
	a := startAgent(t, t.TempDir(), tok, agentPort)
	e.waitStatus(n.ID, store.NodeOnline, 10*time.Second)
	for i := 0; i < 3; i++ {
		a.emit(fmt.Sprintf("before cut %d", i))
	}
	assertExactlyOnceInOrder(t, e.waitEvents(n.ID, 3, 10*time.Second), 3)

	cut(t, proxy)
	start := time.Now()
	// Events emitted right after the cut are sent into the dead connection.
	for i := 0; i < 3; i++ {
		a.emit(fmt.Sprintf("during cut %d", i))
	}
	n, took := e.waitStatus(n.ID, store.NodeOffline, pingInterval+pingTimeout+3*time.Second)
	t.Logf("offline %s after the cut: %s", took, n.StatusReason)
	if !strings.Contains(n.StatusReason, "no answer to ping") {
		t.Errorf("offline reason %q", n.StatusReason)
	}
	for i := 3; i < 6; i++ {
		a.emit(fmt.Sprintf("during cut %d", i))
	}
	// Stay cut well beyond the deadline: redials hang in the handshake.
	time.Sleep(2 * pingTimeout)
	if e.node(n.ID).Status == store.NodeOnline || e.mgr.Connected(n.ID) {
		t.Fatal("online while the network is cut")
	}
	if got := len(e.events(n.ID)); got != 3 {
		t.Fatalf("%d events recorded during the cut, want 3", got)
	}
	t.Logf("cut lasted %s", time.Since(start))

	restore(t, proxy)
	n, took = e.waitStatus(n.ID, store.NodeOnline, 15*time.Second)
	t.Logf("online %s after the network came back", took)
	e.waitEvents(n.ID, 9, 10*time.Second)
	time.Sleep(500 * time.Millisecond) // let any duplicate arrive
	evs := e.events(n.ID)
	assertExactlyOnceInOrder(t, evs, 9)
	for i, ev := range evs[3:] {
		if !strings.Contains(string(ev.Body), fmt.Sprintf("during cut %d", i)) {
			t.Fatalf("event %d body %s", ev.Seq, ev.Body)
		}
	}
	if e.node(n.ID).LastAckedSeq != 9 {
		t.Fatalf("node row last acked seq %d, want 9", e.node(n.ID).LastAckedSeq)
	}
}
