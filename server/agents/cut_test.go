package agents_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/server/store"
)

// A network cut longer than the liveness deadline: offline; restored:
// online again, and the events the agent journaled during the cut (some of
// them written into the dead connection) arrive exactly once, in order.
func TestNetworkCutOfflineThenOnlineWithoutLosingEvents(t *testing.T) {
	e := newEnv(t)
	agentPort := testutil.FreePort(t)
	proxy := testutil.StartLinkProxy(t, fmt.Sprintf("127.0.0.1:%d", agentPort))
	n, tok := e.addNode("node-1", proxy.Port, "")
	a := startAgent(t, t.TempDir(), tok, agentPort)
	e.waitStatus(n.ID, store.NodeOnline, 10*time.Second)
	for i := 0; i < 3; i++ {
		a.emit(fmt.Sprintf("before cut %d", i))
	}
	assertExactlyOnceInOrder(t, e.waitEvents(n.ID, 3, 10*time.Second), 3)

	proxy.Cut(t)
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

	proxy.Restore(t)
	n, took = e.waitStatus(n.ID, store.NodeOnline, 15*time.Second)
	t.Logf("online %s after the network came back", took)
	e.waitEvents(n.ID, 9, 10*time.Second)
	// No duplicates: an event emitted now is recorded after anything the
	// agent (re)sent before it, so once it is there the count is final.
	a.emit("marker")
	evs := e.waitEvents(n.ID, 10, 10*time.Second)
	assertExactlyOnceInOrder(t, evs, 10)
	evs = evs[:9]
	for i, ev := range evs[3:] {
		if !strings.Contains(string(ev.Body), fmt.Sprintf("during cut %d", i)) {
			t.Fatalf("event %d body %s", ev.Seq, ev.Body)
		}
	}
	if e.node(n.ID).LastAckedSeq != 10 {
		t.Fatalf("node row last acked seq %d, want 10", e.node(n.ID).LastAckedSeq)
	}
}
