package agents_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/nullops/nullops/agent/certs"
	"github.com/nullops/nullops/agent/channel"
	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/agents"
	"github.com/nullops/nullops/server/store"
)

// addFakeNode adds a node and starts an in-process agent with its token.
func (e *env) addFakeNode(name, version string, h channel.Handler) (store.Node, *fakeAgent) {
	e.t.Helper()
	// The port is only known once the agent listens, and the agent needs
	// the token first: create the node at a closed port, then move it.
	n, tok := e.addNode(name, testutil.FreePort(e.t), "")
	fa := startFakeAgent(e.t, tok, version, h)
	port := fa.port
	n, err := e.admin.Update(e.ctx, store.SystemActor, n.ID, store.NodePatch{Port: &port})
	if err != nil {
		e.t.Fatal(err)
	}
	return n, fa
}

// An agent of another release, or speaking another protocol version, is
// marked incompatible with both versions in the reason, and disconnected.
func TestIncompatibleAgentsAreRefused(t *testing.T) {
	e := newEnv(t)
	n, fa := e.addFakeNode("old", "0.0.9", nil)
	n, _ = e.waitStatus(n.ID, store.NodeIncompatible, 10*time.Second)
	if n.AgentVersion != "0.0.9" || !contains(n.StatusReason, "0.0.9", "0.1.0-dev", "mixed versions are not supported") {
		t.Fatalf("incompatible node: version %q reason %q", n.AgentVersion, n.StatusReason)
	}
	if e.mgr.Connected(n.ID) {
		t.Fatal("incompatible node connected")
	}
	testutil.WaitFor(t, e.ctx, 20*time.Millisecond, "agent disconnected", func() bool { return !fa.srv.Stats().Connected })

	// An agent speaking another protocol version.
	m, port := startOtherProtocolAgent(t)
	n2, _ := e.addNode("future", port, "")
	n2, _ = e.waitStatus(n2.ID, store.NodeIncompatible, 10*time.Second)
	if !contains(n2.StatusReason, "protocol version 999") || n2.ProtocolVersion != 999 {
		t.Fatalf("protocol mismatch: %q (protocol %d)", n2.StatusReason, n2.ProtocolVersion)
	}
	select {
	case <-m:
	case <-time.After(busyMachineSlack):
		t.Fatal("the other-protocol agent was not disconnected")
	}
	// A development build ("dev") on either side accepts the other: only
	// the protocol version decides. Builds named by a commit must match.
	for _, pair := range [][2]string{{"dev", "0.1.0"}, {"0.1.0", "dev"}, {"dev", "5ca1fdf-dirty"}, {"5ca1fdf-dirty", "5ca1fdf-dirty"}} {
		if err := agents.SameRelease(pair[0])(pair[1]); err != nil {
			t.Fatalf("server %s refused agent %s: %v", pair[0], pair[1], err)
		}
	}
	for _, pair := range [][2]string{{"0.1.0", "5ca1fdf-dirty"}, {"5ca1fdf", "0.1.0"}, {"5ca1fdf", "77aa001"}} {
		if err := agents.SameRelease(pair[0])(pair[1]); err == nil {
			t.Fatalf("server %s accepted agent %s", pair[0], pair[1])
		}
	}
	if err := agents.SameRelease("v0.2.0")("0.2.0-rc1"); err != nil {
		t.Fatalf("same release refused: %v", err)
	}
	if err := agents.SameRelease("0.2.0")("0.1.9"); err == nil {
		t.Fatal("older release accepted")
	}
}

// Revoke disconnects at once and stops dialling; rotating brings it back;
// disable/enable keep the connection (a disabled node drains); delete stops
// everything.
func TestRevokeDisableEnableDelete(t *testing.T) {
	e := newEnv(t)
	n, fa := e.addFakeNode("n1", "0.1.0-dev", nil)
	e.waitStatus(n.ID, store.NodeOnline, 10*time.Second)

	if _, err := e.admin.Revoke(e.ctx, store.SystemActor, n.ID); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, e.ctx, 5*time.Millisecond, "revoked node disconnected", func() bool { return !fa.srv.Stats().Connected })
	n = e.node(n.ID)
	if n.Status != store.NodeRevoked || len(n.TokenEnc) != 0 || !n.Revoked {
		t.Fatalf("revoked node: %+v", n)
	}
	accepted := fa.srv.Stats().Accepted
	// Once the manager stops running the node nothing can dial it again;
	// until then, no redial may have happened.
	testutil.WaitFor(t, e.ctx, 10*time.Millisecond, "the manager to stop running the revoked node", func() bool {
		_, ok := e.mgr.State(n.ID)
		return !ok
	})
	if st := fa.srv.Stats(); st.Accepted != accepted || st.Refused != 0 {
		t.Fatalf("a revoked node was dialled again: %+v", st)
	}

	// Rotation un-revokes: the agent (still on the old token) refuses.
	_, tok, err := e.admin.RotateToken(e.ctx, store.SystemActor, n.ID)
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, e.ctx, 20*time.Millisecond, "401 after rotation", func() bool { return fa.srv.Stats().Refused > 0 })
	// The restarted agent has a new certificate: the admin pins it while
	// pointing the node at it.
	fb := startFakeAgent(t, tok, "0.1.0-dev", nil)
	if _, err := e.admin.Update(e.ctx, store.SystemActor, n.ID, store.NodePatch{Port: &fb.port, ExpectedThumbprint: &fb.thumbprint}); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(n.ID, store.NodeOnline, 10*time.Second)

	// Disabling drains: the node stays connected and online (deletes and
	// events keep flowing); the admin's flag keeps new deployments away.
	accepted = fb.srv.Stats().Accepted
	if _, err := e.admin.SetEnabled(e.ctx, store.SystemActor, n.ID, false); err != nil {
		t.Fatal(err)
	}
	if n = e.node(n.ID); n.Enabled || n.Status != store.NodeOnline {
		t.Fatalf("disabled node: enabled %t, status %s; want draining and online", n.Enabled, n.Status)
	}
	if _, err := protocol.CallDelete.Do(e.ctx, e.mgr.Node(n.ID), protocol.DeleteRequest{DeploymentID: 1}); err != nil {
		var re *protocol.RemoteError
		if !errors.As(err, &re) {
			t.Fatalf("request to a disabled (draining) node did not reach the agent: %v", err)
		}
	}
	if _, err := e.admin.SetEnabled(e.ctx, store.SystemActor, n.ID, true); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(n.ID, store.NodeOnline, 10*time.Second)
	if st := fb.srv.Stats(); st.Accepted != accepted || !st.Connected {
		t.Fatalf("disable/enable reconnected the node: %+v (accepted before: %d)", st, accepted)
	}

	if err := e.admin.Delete(e.ctx, store.SystemActor, n.ID); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, e.ctx, 5*time.Millisecond, "deleted node disconnected", func() bool { return !fb.srv.Stats().Connected })
	testutil.WaitFor(t, e.ctx, 5*time.Millisecond, "manager forgets it", func() bool { _, ok := e.mgr.State(n.ID); return !ok })
	if _, err := e.st.GetNode(e.ctx, n.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted node: %v", err)
	}
}

// recordingAgent handles requests like an execution engine would.
type recordingAgent struct {
	channel.DefaultHandler
	mu      sync.Mutex
	synced  []protocol.SyncRequest
	plugins []protocol.PluginsUpdate
}

func (r *recordingAgent) Sync(_ context.Context, req protocol.SyncRequest) (protocol.SyncReply, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.synced = append(r.synced, req)
	out := protocol.SyncReply{Deployments: []protocol.DeploymentState{}}
	for _, d := range req.Deployments {
		out.Deployments = append(out.Deployments, protocol.DeploymentState{DeploymentID: d.DeploymentID, Status: protocol.StatusRunning})
	}
	return out, nil
}

func (r *recordingAgent) UpdatePlugins(_ context.Context, u protocol.PluginsUpdate) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.plugins = append(r.plugins, u)
	return nil
}

func (r *recordingAgent) Logs(ctx context.Context, req protocol.LogsOpen) (<-chan protocol.LogsData, error) {
	if req.Service != "api" {
		return nil, errors.New("no service " + req.Service)
	}
	ch := make(chan protocol.LogsData)
	go func() {
		defer close(ch)
		for i := 0; ; i++ {
			select {
			case ch <- protocol.LogsData{Stream: "stdout", Data: "line\n"}:
			case <-ctx.Done():
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return ch, nil
}

// waitCatalog waits until each agent got the plugin catalog n times.
func waitCatalog(t *testing.T, e *env, n int, hs ...*recordingAgent) {
	t.Helper()
	for _, h := range hs {
		testutil.WaitFor(t, e.ctx, 20*time.Millisecond, fmt.Sprintf("plugin catalog delivered %d time(s)", n), func() bool {
			h.mu.Lock()
			defer h.mu.Unlock()
			return len(h.plugins) >= n && len(h.plugins[n-1].Plugins) == 1 && h.plugins[n-1].Plugins[0].Name == "catalog-p"
		})
	}
}

type desired map[int64][]protocol.DeploySpec

func (d desired) DesiredState(_ context.Context, nodeID int64) ([]protocol.DeploySpec, error) {
	return d[nodeID], nil
}

// Every (re)connect sends the node's full desired state; the agent's answer
// reaches the online hook. Broadcast and streams reach the agents.
func TestSyncBroadcastAndStreams(t *testing.T) {
	want := desired{}
	e := newEnv(t, func(o *agents.Options) {
		o.Desired = want
		o.Plugins = func(context.Context) (protocol.PluginsUpdate, error) {
			return protocol.PluginsUpdate{Plugins: []protocol.PluginImage{{Name: "catalog-p", Image: "r/catalog-p:1"}}}, nil
		}
	})
	spec := protocol.DeploySpec{DeploymentID: 42, Name: "pr-42", Graph: protocol.Graph{Nodes: []protocol.Node{{ID: "api", Kind: protocol.KindService}}},
		Services: map[string]protocol.ServiceImage{"api": {Image: "demo/api:1"}}}
	// Node ids are assigned in order on a fresh database: 1 and 2.
	want[1] = []protocol.DeploySpec{spec}
	h1, h2 := &recordingAgent{}, &recordingAgent{}
	n1, _ := e.addFakeNode("n1", "0.1.0-dev", h1)
	n2, _ := e.addFakeNode("n2", "0.1.0-dev", h2)
	if n1.ID != 1 {
		t.Fatalf("node id %d", n1.ID)
	}
	e.waitStatus(n1.ID, store.NodeOnline, 10*time.Second)
	e.waitStatus(n2.ID, store.NodeOnline, 10*time.Second)
	h1.mu.Lock()
	if len(h1.synced) != 1 || len(h1.synced[0].Deployments) != 1 || h1.synced[0].Deployments[0].Name != "pr-42" {
		t.Fatalf("agent 1 synced %+v", h1.synced)
	}
	h1.mu.Unlock()
	ch := e.statusChanges(n1.ID)
	if s := ch[len(ch)-1].Sync; s == nil || len(s.Deployments) != 1 || s.Deployments[0].DeploymentID != 42 {
		t.Fatalf("online hook sync reply %+v", s)
	}

	// The first connect delivered the plugin catalog.
	waitCatalog(t, e, 1, h1, h2)

	// A reconnect (here: a server restart) syncs again.
	e.mgr.Stop()
	e.startManager()
	testutil.WaitFor(t, e.ctx, 20*time.Millisecond, "second sync", func() bool {
		h1.mu.Lock()
		defer h1.mu.Unlock()
		return len(h1.synced) == 2 && len(h1.synced[1].Deployments) == 1
	})
	e.waitStatus(n2.ID, store.NodeOnline, 10*time.Second)
	testutil.WaitFor(t, e.ctx, 20*time.Millisecond, "node 2 connected", func() bool { return e.mgr.Connected(n2.ID) })
	testutil.WaitFor(t, e.ctx, 20*time.Millisecond, "node 1 connected", func() bool { return e.mgr.Connected(n1.ID) })

	// Each connect also delivered the plugin catalog: again at the
	// reconnect, though the catalog never changed.
	waitCatalog(t, e, 2, h1, h2)
	h2.mu.Lock()
	h2.plugins = nil
	h2.mu.Unlock()

	errs := e.mgr.Broadcast(e.ctx, func(ctx context.Context, r protocol.Requester) error {
		_, err := protocol.CallPluginsUpdate.Do(ctx, r, protocol.PluginsUpdate{Plugins: []protocol.PluginImage{{Name: "p", Image: "r/p:1"}}})
		return err
	})
	if len(errs) != 2 || errs[n1.ID] != nil || errs[n2.ID] != nil {
		t.Fatalf("broadcast to both online nodes: %v", errs)
	}
	h2.mu.Lock()
	got := slices.ContainsFunc(h2.plugins, func(u protocol.PluginsUpdate) bool { return len(u.Plugins) == 1 && u.Plugins[0].Name == "p" })
	h2.mu.Unlock()
	if !got {
		t.Fatalf("agent 2 got %+v", h2.plugins)
	}

	// Streams: frames flow until closed; a refused open is an error.
	if _, err := e.mgr.OpenLogs(e.ctx, n2.ID, protocol.LogsOpen{DeploymentID: 1, Service: "db"}, 0); err == nil ||
		!strings.Contains(err.Error(), "no service db") {
		t.Fatalf("refused stream: %v", err)
	}
	st, err := e.mgr.OpenLogs(e.ctx, n2.ID, protocol.LogsOpen{DeploymentID: 1, Service: "api", Follow: true}, 16)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		select {
		case f := <-st.C:
			if d, err := protocol.DecodeBody[protocol.LogsData](f); err != nil || d.Data != "line\n" {
				t.Fatalf("frame %+v %v", f, err)
			}
		case <-time.After(busyMachineSlack):
			t.Fatal("no log frame")
		}
	}
	if err := st.Close(e.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := protocol.CallSync.Do(e.ctx, e.mgr.Node(999), protocol.SyncRequest{}); !errors.Is(err, agents.ErrNotConnected) {
		t.Fatalf("request to an unknown node: %v", err)
	}
}

// Appliers run inside the event's transaction: a failing applier rolls the
// event back, the connection is dropped and the replayed event is applied
// exactly once.
func TestFailedApplierRollsBackAndTheEventIsReplayed(t *testing.T) {
	var mu sync.Mutex
	var applied []uint64
	failOnce := true
	e := newEnv(t)
	e.mgr.Stop()
	e.opts.Desired = nil
	e.startManager()
	e.mgr.RegisterApplier(protocol.TypeStepLog, func(ctx context.Context, tx *store.Store, nodeID int64, env protocol.Envelope) error {
		mu.Lock()
		defer mu.Unlock()
		if env.Seq == 2 && failOnce {
			failOnce = false
			return errors.New("database said no")
		}
		applied = append(applied, env.Seq)
		return nil
	})
	n, fa := e.addFakeNode("n1", "0.1.0-dev", nil)
	e.waitStatus(n.ID, store.NodeOnline, 10*time.Second)
	for i := 0; i < 3; i++ {
		if _, err := fa.journal.Emit(protocol.StepLog{DeploymentID: 1, Step: "s", Chunk: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	e.waitEvents(n.ID, 3, 10*time.Second)
	// No duplicates: an event emitted now is applied after anything
	// replayed before it, so once it is there the count is final.
	if _, err := fa.journal.Emit(protocol.StepLog{DeploymentID: 1, Step: "s", Chunk: "marker"}); err != nil {
		t.Fatal(err)
	}
	assertExactlyOnceInOrder(t, e.waitEvents(n.ID, 4, 10*time.Second), 4)
	mu.Lock()
	defer mu.Unlock()
	if len(applied) != 4 || applied[0] != 1 || applied[1] != 2 || applied[2] != 3 || applied[3] != 4 {
		t.Fatalf("applied %v, want [1 2 3 4]", applied)
	}
	if !strings.Contains(e.logs.String(), "database said no") {
		t.Fatal("the failure was not logged")
	}
	// The acknowledgement travels back after the events are stored.
	testutil.WaitFor(t, e.ctx, 10*time.Millisecond, "the agent's journal acknowledged up to 4", func() bool {
		return fa.journal.LastAcked() == 4
	})
}

// startOtherProtocolAgent answers hello with protocol version 999; the
// channel is closed when the server hangs up.
func startOtherProtocolAgent(t *testing.T) (<-chan struct{}, int) {
	t.Helper()
	dir := t.TempDir()
	id, err := certs.Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{}, 16)
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		p := protocol.NewPeer(c, "a", func(ctx context.Context, p *protocol.Peer, e protocol.Envelope) {
			if e.Type == protocol.TypeHello {
				_ = p.Reply(ctx, e, protocol.HelloReply{AgentVersion: "0.1.0-dev", ProtocolVersion: 999, InstanceID: "x"})
			}
		})
		_ = p.Run(context.Background())
		closed <- struct{}{}
	}))
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{id.Certificate}}
	hs.Config.ErrorLog = log.New(io.Discard, "", 0)
	hs.StartTLS()
	t.Cleanup(hs.Close)
	return closed, hs.Listener.Addr().(*net.TCPAddr).Port
}
