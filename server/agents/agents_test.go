package agents_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/agent/certs"
	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/agents"
	"github.com/nullops/nullops/server/store"
)

// Happy path: add a node, start the agent with its token: online within a
// second or two, the agent's thumbprint pinned, its figures recorded, and
// commands reach it.
func TestNodeComesOnlineWithItsThumbprintPinned(t *testing.T) {
	e := newEnv(t)
	port := testutil.FreePort(t)
	n, tok := e.addNode("node-1", port, "")
	if n.Status != store.NodeOffline || n.ExpectedThumbprint != "" || len(n.TokenEnc) == 0 || strings.Contains(string(n.TokenEnc), tok) {
		t.Fatalf("new node: %+v", n)
	}
	a := startAgent(t, t.TempDir(), tok, port)
	n, took := e.waitStatus(n.ID, store.NodeOnline, 10*time.Second)
	t.Logf("online %s after the agent started", took)
	if n.ExpectedThumbprint != a.thumbprint() || n.SeenThumbprint != a.thumbprint() {
		t.Fatalf("thumbprint: expected %q seen %q; the agent's is %q", n.ExpectedThumbprint, n.SeenThumbprint, a.thumbprint())
	}
	if n.AgentVersion != "dev" || n.ProtocolVersion != protocol.Version || n.AgentInstance == "" || n.LastSeenAt == nil {
		t.Fatalf("hello not recorded: %+v", n)
	}
	if n.Capacity.CPUs <= 0 || n.Capacity.MemoryMB <= 0 || n.Capacity.DiskMB <= 0 || n.Usage.MemoryUsedMB <= 0 {
		t.Fatalf("capacity/usage not recorded: %+v %+v", n.Capacity, n.Usage)
	}
	if !e.mgr.Connected(n.ID) {
		t.Fatal("manager does not report the node connected")
	}
	st, ok := e.mgr.State(n.ID)
	if !ok || st.Status != store.NodeOnline || !st.Connected || st.AgentVersion != "dev" {
		t.Fatalf("state %+v", st)
	}
	// The online hook carried the agent's answer to sync (an empty state).
	// It runs after the status is committed, so it may trail the poll above.
	var ch []agents.StatusChange
	wctx, cancel := context.WithTimeout(e.ctx, busyMachineSlack)
	defer cancel()
	testutil.WaitFor(t, wctx, 10*time.Millisecond, "online hook", func() bool {
		ch = e.statusChanges(n.ID)
		return len(ch) > 0 && ch[len(ch)-1].Status == store.NodeOnline
	})
	last := ch[len(ch)-1]
	if last.Status != store.NodeOnline || last.Sync == nil || len(last.Sync.Deployments) != 0 || last.EnvironmentID != e.envID {
		t.Fatalf("status changes %+v", ch)
	}
	// A command reaches the agent, which validates it and answers.
	var re *protocol.RemoteError
	_, err := protocol.CallDelete.Do(e.ctx, e.mgr.Node(n.ID), protocol.DeleteRequest{})
	if !errors.As(err, &re) || !strings.Contains(re.Message, "deployment_id must be positive") {
		t.Fatalf("request: %v", err)
	}
	// Metrics pushes keep the usage current.
	mctx, mcancel := context.WithTimeout(e.ctx, busyMachineSlack)
	defer mcancel()
	testutil.WaitFor(t, mctx, 50*time.Millisecond, "last seen advanced by metrics", func() bool {
		n2 := e.node(n.ID)
		return n2.LastSeenAt != nil && n2.LastSeenAt.After(*n.LastSeenAt)
	})
	if strings.Contains(e.logs.String(), tok) || strings.Contains(a.logs.String(), tok) {
		t.Fatal("the token appears in a log")
	}
}

// A wrong token: the agent answers 401 and logs the refusal, the node shows
// why, and no command gets through.
func TestWrongTokenIsRefused(t *testing.T) {
	e := newEnv(t)
	port := testutil.FreePort(t)
	n, tok := e.addNode("node-1", port, "")
	wrong := "nullops-node_this-is-not-the-token-of-this-node"
	a := startAgent(t, t.TempDir(), wrong, port)
	testutil.WaitFor(t, e.ctx, 20*time.Millisecond, "node shows the 401", func() bool {
		return strings.Contains(e.node(n.ID).StatusReason, "(HTTP 401)")
	})
	n = e.node(n.ID)
	if n.Status != store.NodeOffline || !strings.Contains(n.StatusReason, "refused the token") {
		t.Fatalf("node %s: %s", n.Status, n.StatusReason)
	}
	if _, err := protocol.CallDelete.Do(e.ctx, e.mgr.Node(n.ID), protocol.DeleteRequest{DeploymentID: 1}); !errors.Is(err, agents.ErrNotConnected) {
		t.Fatalf("request to a refused node: %v", err)
	}
	testutil.WaitFor(t, e.ctx, 20*time.Millisecond, "agent logs the refusal", func() bool {
		return contains(a.logs.String(), "control-plane connection refused: 401", `"reason":"wrong token"`)
	})
	if strings.Contains(a.logs.String(), "control plane connected") {
		t.Fatal("the agent accepted a connection")
	}
	if strings.Contains(a.logs.String(), tok) || strings.Contains(e.logs.String(), tok) {
		t.Fatal("a token appears in a log")
	}
}

// The agent's certificate regenerated (deleted from the data dir, agent
// restarted): untrusted, the token is never sent to it; approving the new
// thumbprint brings it online.
func TestRegeneratedCertificateIsUntrustedUntilApproved(t *testing.T) {
	e := newEnv(t)
	port := testutil.FreePort(t)
	n, tok := e.addNode("node-1", port, "")
	dir := t.TempDir()
	a := startAgent(t, dir, tok, port)
	n, _ = e.waitStatus(n.ID, store.NodeOnline, 10*time.Second)
	old := n.ExpectedThumbprint

	a.kill9()
	for _, f := range []string{certs.CertFile, certs.KeyFile} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	a = startAgent(t, dir, tok, port)
	n, _ = e.waitStatus(n.ID, store.NodeUntrusted, 10*time.Second)
	if n.ExpectedThumbprint != old || n.SeenThumbprint != a.thumbprint() || n.SeenThumbprint == old ||
		!strings.Contains(n.StatusReason, "approve the new thumbprint") {
		t.Fatalf("untrusted node: expected %s seen %s (agent %s) reason %q", n.ExpectedThumbprint, n.SeenThumbprint, a.thumbprint(), n.StatusReason)
	}
	if e.mgr.Connected(n.ID) {
		t.Fatal("an untrusted node is connected")
	}
	// Retries keep failing the handshake: no connection ever reaches the
	// agent's HTTP layer, so it never sees the token. (Each dial takes a
	// new connection epoch: two more dials are two more retries.)
	epoch := e.node(n.ID).ConnEpoch
	rctx, rcancel := context.WithTimeout(e.ctx, busyMachineSlack)
	defer rcancel()
	testutil.WaitFor(t, rctx, 20*time.Millisecond, "two more dials of the untrusted node", func() bool {
		return e.node(n.ID).ConnEpoch >= epoch+2
	})
	if contains(a.logs.String(), "control plane connected") || contains(a.logs.String(), "connection refused: 401") {
		t.Fatalf("the untrusted agent got a connection:\n%s", a.logs.String())
	}
	if e.node(n.ID).Status != store.NodeUntrusted {
		t.Fatal("untrusted status did not stick")
	}

	start := time.Now()
	if _, err := e.admin.ApproveThumbprint(e.ctx, store.SystemActor, n.ID, ""); err != nil {
		t.Fatal(err)
	}
	n, _ = e.waitStatus(n.ID, store.NodeOnline, 10*time.Second)
	t.Logf("online %s after approval", time.Since(start))
	if n.ExpectedThumbprint != a.thumbprint() {
		t.Fatalf("approved thumbprint %s, agent's %s", n.ExpectedThumbprint, a.thumbprint())
	}
}

// Rotating the token hands the running agent the new token's verifier and
// drops the current connection at once; the server reconnects with the new
// token, the rotation is no longer pending, and the agent keeps refusing
// the old token, also when restarted with it.
func TestRotateTokenReachesTheRunningAgent(t *testing.T) {
	e := newEnv(t)
	port := testutil.FreePort(t)
	n, tok := e.addNode("node-1", port, "")
	dir := t.TempDir()
	a := startAgent(t, dir, tok, port)
	e.waitStatus(n.ID, store.NodeOnline, 10*time.Second)

	start := time.Now()
	rotated, newTok, err := e.admin.RotateToken(e.ctx, store.SystemActor, n.ID)
	if err != nil {
		t.Fatal(err)
	}
	if newTok == tok || rotated.TokenGeneration != n.TokenGeneration+1 || !rotated.TokenRotationPending {
		t.Fatalf("rotation: same token, generation %d or not pending", rotated.TokenGeneration)
	}
	testutil.WaitFor(t, e.ctx, 5*time.Millisecond, "connection dropped", func() bool { return !e.mgr.Connected(n.ID) })
	t.Logf("disconnected %s after the rotation", time.Since(start))
	n, _ = e.waitStatus(n.ID, store.NodeOnline, 10*time.Second)
	if n.TokenRotationPending || len(n.TokenPrevEnc) != 0 {
		t.Fatal("rotation still pending (or the previous token kept) after the agent accepted the new token")
	}
	if !contains(a.logs.String(), "only the new token is accepted") {
		t.Fatal("the agent did not log the rotation")
	}

	// Restarted with the old token in its configuration, the agent still
	// refuses it and accepts the new one.
	a.kill9()
	e.waitStatus(n.ID, store.NodeOffline, pingInterval+pingTimeout+5*time.Second)
	startAgent(t, dir, tok, port)
	e.waitStatus(n.ID, store.NodeOnline, 10*time.Second)
}

// kill -9 of the agent: offline within the liveness deadline; restarted,
// online again without anyone doing anything.
func TestKilledAgentGoesOfflineAndComesBack(t *testing.T) {
	e := newEnv(t)
	port := testutil.FreePort(t)
	n, tok := e.addNode("node-1", port, "")
	dir := t.TempDir()
	a := startAgent(t, dir, tok, port)
	e.waitStatus(n.ID, store.NodeOnline, 10*time.Second)

	a.kill9()
	n, took := e.waitStatus(n.ID, store.NodeOffline, pingInterval+pingTimeout+2*time.Second)
	t.Logf("offline %s after kill -9 (%s)", took, n.StatusReason)
	if e.mgr.Connected(n.ID) {
		t.Fatal("still connected")
	}
	startAgent(t, dir, tok, port)
	_, took = e.waitStatus(n.ID, store.NodeOnline, 10*time.Second)
	t.Logf("online %s after restart", took)
	var sawOffline, sawOnlineAgain bool
	for _, c := range e.statusChanges(n.ID) {
		if c.Status == store.NodeOffline && c.Previous == store.NodeOnline {
			sawOffline = true
		}
		if sawOffline && c.Status == store.NodeOnline {
			sawOnlineAgain = true
		}
	}
	if !sawOffline || !sawOnlineAgain {
		t.Fatalf("hooks saw %+v", e.statusChanges(n.ID))
	}
}

// Events journaled while the node is disconnected survive a kill -9 of the
// agent and are delivered exactly once after the restart.
func TestJournaledEventsSurviveAgentKill(t *testing.T) {
	e := newEnv(t)
	port := testutil.FreePort(t)
	n, tok := e.addNode("node-1", port, "")
	dir := t.TempDir()
	a := startAgent(t, dir, tok, port)
	e.waitStatus(n.ID, store.NodeOnline, 10*time.Second)
	for i := 0; i < 3; i++ {
		a.emit("online")
	}
	assertExactlyOnceInOrder(t, e.waitEvents(n.ID, 3, 10*time.Second), 3)

	// Point the node elsewhere: the server cannot reach the agent.
	nowhere := testutil.FreePort(t)
	if _, err := e.admin.Update(e.ctx, store.SystemActor, n.ID, store.NodePatch{Port: &nowhere}); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(n.ID, store.NodeOffline, 5*time.Second)
	testutil.WaitFor(t, e.ctx, 20*time.Millisecond, "disconnected", func() bool { return !e.mgr.Connected(n.ID) })
	for i := 0; i < 4; i++ {
		a.emit("while away")
	}
	a.kill9()
	a = startAgent(t, dir, tok, port)
	a.emit("after restart")
	if len(e.events(n.ID)) != 3 {
		t.Fatal("events delivered while the node was unreachable")
	}
	if _, err := e.admin.Update(e.ctx, store.SystemActor, n.ID, store.NodePatch{Port: &port}); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(n.ID, store.NodeOnline, 10*time.Second)
	evs := e.waitEvents(n.ID, 8, 10*time.Second)
	// No duplicates: an event emitted now is recorded after anything the
	// agent (re)sent before it, so once it is there the count is final.
	a.emit("marker")
	assertExactlyOnceInOrder(t, e.waitEvents(n.ID, 9, 10*time.Second), 9)
	if evs[7].Type != protocol.TypeStepLog || !strings.Contains(string(evs[7].Body), "after restart") {
		t.Fatalf("last event %+v", evs[7])
	}
	if got := e.node(n.ID).LastAckedSeq; got != 9 {
		t.Fatalf("last acked seq on the node row: %d, want 9", got)
	}
}

// A server restart (a new manager on the same database) while agents run:
// every node reconnects and syncs; events journaled meanwhile arrive once.
func TestServerRestartReconnectsEveryNode(t *testing.T) {
	e := newEnv(t)
	var nodes []store.Node
	var procs []*agentProc
	for i := 0; i < 3; i++ {
		port := testutil.FreePort(t)
		n, tok := e.addNode("node-"+string(rune('a'+i)), port, "")
		nodes = append(nodes, n)
		procs = append(procs, startAgent(t, t.TempDir(), tok, port))
	}
	for _, n := range nodes {
		e.waitStatus(n.ID, store.NodeOnline, 10*time.Second)
	}
	procs[0].emit("before")
	e.waitEvents(nodes[0].ID, 1, 10*time.Second)

	e.mgr.Stop()
	for _, n := range nodes {
		if e.mgr.Connected(n.ID) {
			t.Fatal("connected after Stop")
		}
	}
	procs[0].emit("server away 1")
	procs[0].emit("server away 2")

	before := len(e.statusChanges(nodes[0].ID))
	start := time.Now()
	e.startManager()
	for _, n := range nodes {
		testutil.WaitFor(t, e.ctx, 20*time.Millisecond, "reconnected", func() bool { return e.mgr.Connected(n.ID) })
	}
	t.Logf("all %d nodes reconnected %s after the restart", len(nodes), time.Since(start))
	// Connected turns true before the status change after the sync is
	// reported: wait for that report.
	testutil.WaitFor(t, e.ctx, 20*time.Millisecond, "the new manager to report the node online after its sync", func() bool {
		after := e.statusChanges(nodes[0].ID)
		return len(after) > before && after[len(after)-1].Status == store.NodeOnline && after[len(after)-1].Sync != nil
	})
	assertExactlyOnceInOrder(t, e.waitEvents(nodes[0].ID, 3, 10*time.Second), 3)
}
