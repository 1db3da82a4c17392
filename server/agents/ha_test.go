package agents_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/agents"
	"github.com/nullops/nullops/server/store"
)

// replica is one connection manager of several sharing the env's
// database, as one nullops-server process of a highly available control
// plane would run it.
type replica struct {
	id   string
	m    *agents.Manager
	url  string
	logs *testutil.SyncBuffer

	mu      sync.Mutex
	changes []agents.StatusChange
}

func (r *replica) statusChanges(nodeID int64) []agents.StatusChange {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []agents.StatusChange
	for _, c := range r.changes {
		if c.NodeID == nodeID {
			out = append(out, c)
		}
	}
	return out
}

// holds reports whether the replica holds the node and is connected to it.
func (r *replica) holds(nodeID int64) bool {
	st, ok := r.m.State(nodeID)
	return ok && st.Connected && slices.Contains(r.m.Held(), nodeID)
}

// startReplica starts a manager with its own replica id, lease TTL and
// (with forward) its forwarding endpoint on a loopback HTTP server.
func (e *env) startReplica(id string, ttl time.Duration, forward bool, tweak ...func(*agents.Options)) *replica {
	e.t.Helper()
	r := &replica{id: id, logs: &testutil.SyncBuffer{}}
	o := e.opts
	o.ReplicaID, o.LeaseTTL = id, ttl
	o.Log = zerolog.New(r.logs).Level(zerolog.DebugLevel).With().Str("replica", id).Logger()
	if forward {
		o.ForwardKey = agents.ForwardKey(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32)))
	}
	for _, f := range tweak {
		f(&o)
	}
	r.m = agents.New(o)
	if forward {
		srv := httptest.NewServer(r.m.ForwardHandler())
		e.t.Cleanup(srv.Close)
		r.url = srv.URL
		r.m.SetAdvertiseURL(srv.URL)
	}
	r.m.OnStatusChange(func(_ context.Context, c agents.StatusChange) {
		r.mu.Lock()
		r.changes = append(r.changes, c)
		r.mu.Unlock()
	})
	if err := r.m.Start(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(r.m.Stop)
	e.t.Cleanup(func() {
		if e.t.Failed() {
			e.t.Logf("replica %s log:\n%s", id, r.logs.String())
		}
	})
	return r
}

// nodesWithAgents adds n nodes named prefix0, prefix1, … each with its
// agent process running, and returns their ids and agents.
func (e *env) nodesWithAgents(prefix string, n int) ([]int64, []*agentProc) {
	e.t.Helper()
	var nodes []int64
	var procs []*agentProc
	for i := 0; i < n; i++ {
		port := testutil.FreePort(e.t)
		node, tok := e.addNode(fmt.Sprintf("%s%d", prefix, i), port, "")
		nodes = append(nodes, node.ID)
		procs = append(procs, startAgent(e.t, e.t.TempDir(), tok, port))
	}
	return nodes, procs
}

// waitHeld waits until every node is held and connected by exactly one of
// the replicas, and returns the owner of each.
func waitHeld(t *testing.T, e *env, nodes []int64, within time.Duration, reps ...*replica) map[int64]*replica {
	t.Helper()
	start := time.Now()
	for {
		owners := map[int64]*replica{}
		ok := true
		for _, id := range nodes {
			var hs []*replica
			for _, r := range reps {
				if r.holds(id) {
					hs = append(hs, r)
				}
			}
			if len(hs) != 1 {
				ok = false
				break
			}
			owners[id] = hs[0]
		}
		if ok {
			if took := time.Since(start); took > within {
				t.Logf("nodes held after %s (expected within %s on an idle machine)", took, within)
			}
			return owners
		}
		if time.Since(start) > within+busyMachineSlack {
			t.Fatalf("nodes not held by exactly one replica each after %s", within+busyMachineSlack)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func liveIDs(reps ...*replica) []string {
	var ids []string
	for _, r := range reps {
		ids = append(ids, r.id)
	}
	return ids
}

// Three replicas split the nodes by rendezvous hashing, each node
// connected exactly once; a replica killed without a goodbye loses its
// nodes to the others within the 15 s failover target (lease TTL 10 s, the
// default); a replica stopped gracefully hands them over at once. Events
// are applied exactly once across the owners, and the status hooks fire on
// the owner only: one online per connection, never an offline (the agents
// never went away).
func TestReplicasSplitNodesFailOverAndHandOver(t *testing.T) {
	e := newEnv(t)
	e.mgr.Stop()
	const nNodes = 6
	nodes, procs := e.nodesWithAgents("n", nNodes)
	const ttl = 10 * time.Second
	reps := []*replica{e.startReplica("r1", ttl, false), e.startReplica("r2", ttl, false), e.startReplica("r3", ttl, false)}
	// The first replica took every node before the others started; they
	// move to the replica they prefer once it is seen live.
	owners := waitHeld(t, e, nodes, 10*time.Second, reps...)
	for _, id := range nodes {
		if want := agents.Preferred(id, liveIDs(reps...)); owners[id].id != want {
			// A replica that started first may hold a node until the one
			// it prefers is seen live: wait for the hand-over.
			testutil.WaitFor(t, e.ctx, 20*time.Millisecond, "node on its preferred replica", func() bool {
				for _, r := range reps {
					if r.id == want {
						return r.holds(id)
					}
				}
				return false
			})
		}
	}
	owners = waitHeld(t, e, nodes, 10*time.Second, reps...)
	spread := map[string]int{}
	for _, id := range nodes {
		spread[owners[id].id]++
	}
	t.Logf("spread of %d nodes over 3 replicas: %v", nNodes, spread)
	for i, id := range nodes {
		procs[i].emit("first")
		waitStepLogs(t, e, id, 1)
	}

	// kill -9 of one replica (one that holds nodes).
	victim := owners[nodes[0]]
	var lost []int64
	for _, id := range nodes {
		if owners[id] == victim {
			lost = append(lost, id)
		}
	}
	var rest []*replica
	for _, r := range reps {
		if r != victim {
			rest = append(rest, r)
		}
	}
	// Right after a renewal: the worst case, a whole TTL to wait.
	renewed := victim.m.LastRenewal()
	testutil.WaitFor(t, e.ctx, time.Millisecond, "a lease renewal", func() bool { return victim.m.LastRenewal() != renewed })
	start := time.Now()
	victim.m.Crash()
	owners = waitHeld(t, e, nodes, 15*time.Second, rest...)
	failover := time.Since(start)
	t.Logf("failover of %d node(s) after a crash right after a lease renewal: %s (lease TTL %s)", len(lost), failover, ttl)
	if failover > 15*time.Second+busyMachineSlack {
		t.Fatalf("failover took %s", failover)
	}
	for i, id := range nodes {
		procs[i].emit("second")
		waitStepLogs(t, e, id, 2)
	}

	// Graceful stop of another replica: its nodes move at once.
	leaving := owners[nodes[len(nodes)-1]]
	var last *replica
	for _, r := range rest {
		if r != leaving {
			last = r
		}
	}
	start = time.Now()
	leaving.m.Stop()
	waitHeld(t, e, nodes, 3*time.Second, last)
	t.Logf("hand-over after a graceful stop: %s", time.Since(start))
	for i, id := range nodes {
		procs[i].emit("third")
		waitStepLogs(t, e, id, 3)
	}

	for i, id := range nodes {
		connects := strings.Count(procs[i].logs.String(), "control plane connected")
		onlines := 0
		for _, r := range reps {
			for _, c := range r.statusChanges(id) {
				if c.Status != store.NodeOnline {
					t.Fatalf("node %d: replica %s reported %s (%s)", id, r.id, c.Status, c.Reason)
				}
				onlines++
			}
		}
		// One online report per connection the agent accepted, and never
		// two connections at once (no replacement, no refusal).
		if onlines != connects {
			t.Fatalf("node %d: %d connections accepted by the agent, %d online reports", id, connects, onlines)
		}
		if l := procs[i].logs.String(); strings.Contains(l, "replaced by a newer one") || strings.Contains(l, "connection refused") {
			t.Fatalf("node %d: the agent saw competing connections:\n%s", id, l)
		}
		if n := e.node(id); n.Status != store.NodeOnline || n.OwnerReplica != last.id || !n.LeaseLive {
			t.Fatalf("node %d: status %s owner %q live %t", id, n.Status, n.OwnerReplica, n.LeaseLive)
		}
	}
}

// A paused owner (its lease loop and pings stand still, its sockets stay
// open, as under SIGSTOP) loses its node to another replica once its lease
// expires: the agent lets the newer epoch replace the silent connection.
// When the old owner resumes, it can neither apply an event (the
// transaction's epoch check rolls it back), nor dial with its epoch (the
// agent refuses it as stale), nor record a status or fire a hook: it lets
// go of the node.
func TestPausedOwnerIsFenced(t *testing.T) {
	e := newEnv(t)
	e.mgr.Stop()
	port := testutil.FreePort(t)
	n, tok := e.addNode("n", port, "")
	proc := startAgent(t, t.TempDir(), tok, port)
	const ttl = 2 * time.Second
	a := e.startReplica("a", ttl, false)
	waitHeld(t, e, []int64{n.ID}, 10*time.Second, a)
	bid := ""
	for i := 0; bid == ""; i++ {
		if c := fmt.Sprintf("b%d", i); agents.Preferred(n.ID, []string{"a", c}) == "a" {
			bid = c
		}
	}
	b := e.startReplica(bid, ttl, false)
	proc.emit("before")
	waitStepLogs(t, e, n.ID, 1)
	row := e.node(n.ID)
	epochA, instance := row.ConnEpoch, row.AgentInstance

	start := time.Now()
	a.m.Freeze()
	waitHeld(t, e, []int64{n.ID}, 3*ttl, b)
	t.Logf("taken over %s after the owner froze (lease TTL %s)", time.Since(start), ttl)
	if !strings.Contains(proc.logs.String(), "unhealthy control-plane connection replaced") {
		t.Fatalf("the agent did not replace the silent connection:\n%s", proc.logs.String())
	}
	if row = e.node(n.ID); row.ConnEpoch <= epochA || row.OwnerReplica != b.id {
		t.Fatalf("after the take-over: epoch %d (was %d), owner %q", row.ConnEpoch, epochA, row.OwnerReplica)
	}

	// The old owner's event transaction is fenced and rolled back.
	ev := protocol.Envelope{Type: protocol.TypeStepLog, Seq: 1000,
		Body: []byte(`{"deployment_id":1,"step":"build","attempt":1,"chunk":"stale","at":"2026-01-01T00:00:00Z"}`)}
	if err := a.m.ApplyEventAt(e.ctx, n.ID, epochA, instance, ev); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("stale apply: %v", err)
	}
	for _, x := range e.events(n.ID) {
		if x.Seq == 1000 {
			t.Fatal("the stale owner's event was recorded")
		}
	}
	// Its epoch is stale for the agent.
	if err := agents.DialAt(e.ctx, "127.0.0.1", port, tok, row.ExpectedThumbprint, epochA); !agents.IsStaleRefusal(err) {
		t.Fatalf("dial with the old epoch: %v", err)
	}
	// Its dial epochs are conditional on the lease.
	if _, err := e.st.NextConnEpoch(e.ctx, n.ID, "a"); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("epoch for a replica without the lease: %v", err)
	}

	hooks := len(a.statusChanges(n.ID))
	a.m.Thaw()
	testutil.WaitFor(t, e.ctx, 20*time.Millisecond, "the old owner to let go", func() bool {
		_, ok := a.m.State(n.ID)
		return !ok
	})
	if got := a.statusChanges(n.ID); len(got) != hooks {
		t.Fatalf("the old owner reported %+v after it lost the node", got[hooks:])
	}
	for _, c := range a.statusChanges(n.ID) {
		if c.Status != store.NodeOnline {
			t.Fatalf("the old owner reported %s", c.Status)
		}
	}
	if row = e.node(n.ID); row.Status != store.NodeOnline || row.OwnerReplica != b.id || !b.holds(n.ID) {
		t.Fatalf("after the old owner resumed: status %s owner %q, b holds %t", row.Status, row.OwnerReplica, b.holds(n.ID))
	}
	proc.emit("after")
	waitStepLogs(t, e, n.ID, 2)
}

// waitStepLogs waits until the node's journal shows want step logs (the
// test's emits) and checks that every event the agent journaled, channel
// events included, was applied exactly once, in order.
func waitStepLogs(t *testing.T, e *env, nodeID int64, want int) {
	t.Helper()
	var evs []store.AgentEvent
	testutil.WaitFor(t, e.ctx, 20*time.Millisecond, fmt.Sprintf("%d step logs of node %d", want, nodeID), func() bool {
		evs = e.events(nodeID)
		k := 0
		for _, ev := range evs {
			if ev.Type == protocol.TypeStepLog {
				k++
			}
		}
		return k >= want
	})
	assertExactlyOnceInOrder(t, evs, len(evs))
	k := 0
	for _, ev := range evs {
		if ev.Type == protocol.TypeStepLog {
			k++
		}
	}
	if k != want {
		t.Fatalf("node %d: %d step logs, want %d", nodeID, k, want)
	}
}

// countingAgent counts plugins.update requests by plugin name.
type countingAgent struct{ recordingAgent }

func (c *countingAgent) count(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := 0
	for _, u := range c.plugins {
		for _, p := range u.Plugins {
			if p.Name == name {
				k++
			}
		}
	}
	return k
}

// recordBodies keeps the bodies of forwarded requests (to replay one).
type recordBodies struct {
	mu     sync.Mutex
	bodies [][]byte
}

func (r *recordBodies) RoundTrip(req *http.Request) (*http.Response, error) {
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.bodies = append(r.bodies, b)
	r.mu.Unlock()
	req.Body = io.NopCloser(bytes.NewReader(b))
	return http.DefaultTransport.RoundTrip(req)
}

// A replica that does not hold a node reaches its agent through the owner:
// a call arrives once, an agent's error comes back as the agent's error,
// a followed log stream flows, a broadcast covers it, and the node counts
// as connected. The forwarding endpoint refuses what is not sealed with
// the replicas' key, and a replayed request.
func TestForwardedCallsAndLogs(t *testing.T) {
	e := newEnv(t)
	e.mgr.Stop()
	h := &countingAgent{}
	n, _ := e.addFakeNode("n", "0.1.0-dev", h)
	const ttl = 3 * time.Second
	b := e.startReplica("owner", ttl, true)
	waitHeld(t, e, []int64{n.ID}, 10*time.Second, b)
	aid := ""
	for i := 0; aid == ""; i++ {
		if c := fmt.Sprintf("a%d", i); agents.Preferred(n.ID, []string{"owner", c}) == "owner" {
			aid = c
		}
	}
	rec := &recordBodies{}
	a := e.startReplica(aid, ttl, true, func(o *agents.Options) { o.ForwardClient = &http.Client{Transport: rec} })
	testutil.WaitFor(t, e.ctx, 20*time.Millisecond, "replica a sees the node online elsewhere", func() bool { return a.m.Connected(n.ID) })
	if owner, err := a.m.Owner(e.ctx, n.ID); err != nil || owner.ID != "owner" || owner.APIURL != b.url {
		t.Fatalf("owner seen from a: %+v %v", owner, err)
	}

	if _, err := protocol.CallPluginsUpdate.Do(e.ctx, a.m.Node(n.ID), protocol.PluginsUpdate{
		Plugins: []protocol.PluginImage{{Name: "via-a", Image: "r/via-a:1"}}}); err != nil {
		t.Fatal(err)
	}
	if k := h.count("via-a"); k != 1 {
		t.Fatalf("the forwarded call reached the agent %d times", k)
	}
	var remote *protocol.RemoteError
	if _, err := protocol.CallDeploy.Do(e.ctx, a.m.Node(n.ID), protocol.DeployRequest{}); !errors.As(err, &remote) {
		t.Fatalf("the agent's refusal through the owner: %v", err)
	}
	errs := a.m.Broadcast(e.ctx, func(ctx context.Context, r protocol.Requester) error {
		_, err := protocol.CallPluginsUpdate.Do(ctx, r, protocol.PluginsUpdate{Plugins: []protocol.PluginImage{{Name: "bc", Image: "r/bc:1"}}})
		return err
	})
	if len(errs) != 1 || errs[n.ID] != nil || h.count("bc") != 1 {
		t.Fatalf("broadcast from a: %v (agent got it %d times)", errs, h.count("bc"))
	}

	if _, err := a.m.OpenLogs(e.ctx, n.ID, protocol.LogsOpen{DeploymentID: 1, Service: "db"}, 0); err == nil ||
		!strings.Contains(err.Error(), "no service db") {
		t.Fatalf("refused stream through the owner: %v", err)
	}
	st, err := a.m.OpenLogs(e.ctx, n.ID, protocol.LogsOpen{DeploymentID: 1, Service: "api", Follow: true}, 16)
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
			t.Fatal("no log frame through the owner")
		}
	}
	if err := st.Close(e.ctx); err != nil {
		t.Fatal(err)
	}
	// The owner shutting down ends the streams it serves to others (its
	// HTTP server does not wait for them).
	st2, err := a.m.OpenLogs(e.ctx, n.ID, protocol.LogsOpen{DeploymentID: 1, Service: "api", Follow: true}, 16)
	if err != nil {
		t.Fatal(err)
	}
	<-st2.C
	b.m.CloseForwardedStreams()
	testutil.WaitFor(t, e.ctx, 5*time.Millisecond, "the forwarded stream to end", func() bool {
		for {
			select {
			case _, ok := <-st2.C:
				if !ok {
					return true
				}
			default:
				return false
			}
		}
	})
	_ = st2.Close(e.ctx)

	// Not sealed with the key, or replayed: 401.
	post := func(body []byte) int {
		resp, err := http.Post(b.url+agents.PathForward, "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post([]byte(`{"op":"call","node":1,"type":"sync"}`)); code != http.StatusUnauthorized {
		t.Fatalf("unsealed request: %d", code)
	}
	rec.mu.Lock()
	first := rec.bodies[0]
	rec.mu.Unlock()
	if code := post(first); code != http.StatusUnauthorized {
		t.Fatalf("replayed request: %d", code)
	}
	other := agents.New(agents.Options{Store: e.st, Box: e.box, ForwardKey: agents.ForwardKey(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))})
	srv := httptest.NewServer(other.ForwardHandler())
	defer srv.Close()
	resp, err := http.Post(srv.URL+agents.PathForward, "application/octet-stream", bytes.NewReader(first))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("request sealed with another key: %d", resp.StatusCode)
	}
}

// An admin's change made through a replica that does not hold the node
// reaches the owner at once (forwarded refresh), not at its next periodic
// re-read: revoking there disconnects the agent on the owner.
func TestAdminChangeOnAnotherReplicaReachesTheOwner(t *testing.T) {
	e := newEnv(t)
	e.mgr.Stop()
	e.opts.RescanInterval = time.Hour
	n, fa := e.addFakeNode("n", "0.1.0-dev", nil)
	const ttl = 3 * time.Second
	b := e.startReplica("owner", ttl, true)
	waitHeld(t, e, []int64{n.ID}, 10*time.Second, b)
	aid := ""
	for i := 0; aid == ""; i++ {
		if c := fmt.Sprintf("a%d", i); agents.Preferred(n.ID, []string{"owner", c}) == "owner" {
			aid = c
		}
	}
	a := e.startReplica(aid, ttl, true)
	adminA := &agents.Admin{Store: e.st, Box: e.box, Manager: a.m}
	start := time.Now()
	if _, err := adminA.Revoke(e.ctx, store.SystemActor, n.ID); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, e.ctx, 5*time.Millisecond, "the owner to disconnect the revoked node", func() bool { return !fa.srv.Stats().Connected })
	// Without the forwarded refresh the owner would only notice at its
	// next re-read, an hour away here.
	t.Logf("revoked through the other replica: disconnected after %s", time.Since(start))
}

// Nodes prefer only replicas that have been registered for a lease TTL
// (while none has, every live one): a replica that restarts over and over
// does not pull nodes towards it each time.
func TestCandidatesAreSettledReplicas(t *testing.T) {
	const settle = 10 * time.Second
	rep := func(id string, up time.Duration) store.Replica { return store.Replica{ID: id, Up: up} }
	for _, c := range []struct {
		name string
		reps []store.Replica
		self string
		want string
	}{
		{"all new: every live one", []store.Replica{rep("a", time.Second), rep("b", 0)}, "a", "a,b"},
		{"self not listed yet", []store.Replica{rep("b", time.Second)}, "a", "b,a"},
		{"a newcomer waits", []store.Replica{rep("a", time.Minute), rep("b", 2*time.Second), rep("c", settle)}, "b", "a,c"},
		{"settled self", []store.Replica{rep("a", time.Minute)}, "a", "a"},
	} {
		if got := strings.Join(agents.Candidates(c.reps, c.self, settle), ","); got != c.want {
			t.Errorf("%s: candidates %s, want %s", c.name, got, c.want)
		}
	}
}

// A replica that joins a settled one gets the nodes that prefer it only
// once it has been up for a lease TTL.
func TestJoiningReplicaGetsNodesOnceSettled(t *testing.T) {
	e := newEnv(t)
	e.mgr.Stop()
	nodes, _ := e.nodesWithAgents("s", 6)
	const ttl = 3 * time.Second
	r1 := e.startReplica("s-r1", ttl, false)
	waitHeld(t, e, nodes, 30*time.Second, r1)
	testutil.WaitFor(t, e.ctx, 50*time.Millisecond, "s-r1 registered for a lease TTL", func() bool {
		reps, err := e.st.LiveReplicas(e.ctx, ttl)
		return err == nil && len(reps) == 1 && reps[0].Up >= ttl
	})
	var moving []int64
	for _, id := range nodes {
		if agents.Preferred(id, []string{"s-r1", "s-r2"}) == "s-r2" {
			moving = append(moving, id)
		}
	}
	if len(moving) == 0 {
		t.Fatal("no node prefers s-r2; pick other node ids")
	}
	start := time.Now()
	r2 := e.startReplica("s-r2", ttl, false)
	testutil.WaitFor(t, e.ctx, 20*time.Millisecond, "the nodes that prefer s-r2 on it", func() bool {
		for _, id := range moving {
			if !r2.holds(id) {
				return false
			}
		}
		return true
	})
	if took := time.Since(start); took < ttl {
		t.Fatalf("%d node(s) moved to the new replica after %s, before it was up for the lease TTL (%s)", len(moving), took, ttl)
	} else {
		t.Logf("%d of %d nodes moved to the new replica %s after it started (lease TTL %s)", len(moving), len(nodes), took, ttl)
	}
}

// The lease loop has a pool of its own: a main pool taken up by other
// work (thousands of node connections starting at once) does not delay a
// renewal past the lease TTL, which would drop every connection.
func TestLeaseRenewalDoesNotQueueBehindTheMainPool(t *testing.T) {
	e := newEnv(t)
	e.mgr.Stop()
	nodes, _ := e.nodesWithAgents("p", 2)
	const ttl = 2 * time.Second
	r := e.startReplica("p-r1", ttl, false)
	waitHeld(t, e, nodes, 30*time.Second, r)

	var release []func()
	for range e.st.Pool.Config().MaxConns {
		c, err := e.st.Pool.Acquire(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		release = append(release, c.Release)
	}
	since := time.Now()
	testutil.WaitFor(t, e.ctx, 20*time.Millisecond, "lease renewals for two TTLs with the main pool exhausted", func() bool {
		return r.m.LastRenewal().After(since.Add(2 * ttl))
	})
	for _, id := range nodes {
		if !r.holds(id) {
			t.Fatalf("node %d dropped while the main pool was exhausted", id)
		}
	}
	for _, r := range release {
		r()
	}
}
