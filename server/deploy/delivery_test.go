package deploy_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/changefeed"
	"github.com/nullops/nullops/server/deploy"
	"github.com/nullops/nullops/server/store"
)

// gate is a Withdrawer that holds every withdrawal until released.
type gate struct {
	called  chan struct{}
	release chan struct{}
}

func (g *gate) Withdraw(ctx context.Context) {
	select {
	case g.called <- struct{}{}:
	default:
	}
	select {
	case <-g.release:
	case <-ctx.Done():
	}
}

// A delete answers at once; the agent is asked only after the routes were
// withdrawn; a delivery that does not get through is remembered as pending
// and retried until it does.
func TestDeleteWithdrawsRoutesFirstThenRetriesDelivery(t *testing.T) {
	f := newFixture(t, 4)
	ctx := testutil.Context(t, time.Minute)
	g := &gate{called: make(chan struct{}, 1), release: make(chan struct{})}
	f.svc.Withdraw = g
	f.svc.RetryInterval = 50 * time.Millisecond
	d := f.create(t, "gone", "v1")
	node := *d.NodeID
	f.apply(t, node, protocol.TypeStepStatus, protocol.StepStatus{DeploymentID: d.ID, Step: "setup", Kind: "component", Status: "succeeded"})
	f.apply(t, node, protocol.TypeStepStatus, protocol.StepStatus{DeploymentID: d.ID, Step: "web", Kind: "service", Status: "succeeded"})
	f.apply(t, node, protocol.TypeDeploymentStatus, protocol.DeploymentStatus{DeploymentID: d.ID, Status: "running"})

	f.agents.mu.Lock()
	f.agents.fail = errors.New("node 1: delete: connection closed while waiting for delete reply")
	f.agents.mu.Unlock()
	del, err := f.svc.Delete(ctx, f.actor(), d.ID)
	if err != nil || del.Status != "deleting" || del.DeletePending {
		t.Fatalf("delete: %+v %v", del, err)
	}
	select {
	case <-g.called:
	case <-ctx.Done():
		t.Fatal("the routes were never withdrawn")
	}
	f.agents.mu.Lock()
	early := f.agents.attempts[protocol.TypeDelete]
	f.agents.mu.Unlock()
	if early != 0 {
		t.Fatal("the agent was asked to delete before the routes were withdrawn")
	}
	close(g.release)

	testutil.WaitFor(t, ctx, 10*time.Millisecond, "the undelivered delete to be pending", func() bool {
		got := f.get(t, d.ID)
		return got.DeletePending && strings.Contains(got.StatusReason, "did not answer")
	})
	f.agents.mu.Lock()
	f.agents.fail = nil
	f.agents.mu.Unlock()
	if s := f.agents.waitSent(t, protocol.TypeDelete, 1); s[0].body.(protocol.DeleteRequest).DeploymentID != d.ID {
		t.Fatalf("delete requests %+v", s)
	}
	testutil.WaitFor(t, ctx, 10*time.Millisecond, "pending cleared once delivered", func() bool { return !f.get(t, d.ID).DeletePending })
	f.apply(t, node, protocol.TypeDeploymentStatus, protocol.DeploymentStatus{DeploymentID: d.ID, Status: "deleted"})
	if got := f.get(t, d.ID); got.Status != "deleted" {
		t.Fatalf("after the agent's deleted: %+v", got)
	}
}

// A node that stops answering keeps its deployments running (and routed)
// for the grace; they go offline after it, saying since when.
func TestUnreachableNodeKeepsDeploymentsForTheGrace(t *testing.T) {
	f := newFixture(t, 4)
	ctx := testutil.Context(t, time.Minute)
	const grace = 500 * time.Millisecond
	f.svc.OfflineGrace = grace
	d := f.create(t, "steady", "v1")
	node := *d.NodeID
	f.apply(t, node, protocol.TypeStepStatus, protocol.StepStatus{DeploymentID: d.ID, Step: "setup", Kind: "component", Status: "succeeded"})
	f.apply(t, node, protocol.TypeStepStatus, protocol.StepStatus{DeploymentID: d.ID, Step: "web", Kind: "service", Status: "succeeded"})
	f.apply(t, node, protocol.TypeDeploymentStatus, protocol.DeploymentStatus{DeploymentID: d.ID, Status: "running"})

	if _, err := f.st.SetNodeStatus(ctx, node, "offline", "no answer to ping within 30s"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.NodeOffline(ctx, node, "offline: no answer to ping within 30s"); err != nil {
		t.Fatal(err)
	}
	got := f.get(t, d.ID)
	if got.Status != "running" || got.NodeUnreachableSince == nil {
		t.Fatalf("within the grace: %s, node unreachable since %v; want running with the time", got.Status, got.NodeUnreachableSince)
	}
	since := *got.NodeUnreachableSince
	testutil.WaitFor(t, ctx, 10*time.Millisecond, "offline after the grace", func() bool { return f.get(t, d.ID).Status == "offline" })
	got = f.get(t, d.ID)
	if got.UpdatedAt.Sub(since) < grace {
		t.Fatalf("offline %s after the node became unreachable, want at least the %s grace", got.UpdatedAt.Sub(since), grace)
	}
	if !strings.Contains(got.StatusReason, "node offline since") || !strings.Contains(got.StatusReason, "no answer to ping") {
		t.Fatalf("offline reason %q", got.StatusReason)
	}
	// Back: running again, no longer unreachable.
	if _, err := f.st.SetNodeStatus(ctx, node, "online", ""); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.NodeSynced(ctx, node); err != nil {
		t.Fatal(err)
	}
	if got = f.get(t, d.ID); got.Status != "running" || got.NodeUnreachableSince != nil {
		t.Fatalf("after the node is back: %s, unreachable since %v", got.Status, got.NodeUnreachableSince)
	}
}

// With several replicas, the deploy is handed to the agent by the replica
// that holds the node's connection, not by the one that served the create:
// that one may stop right after its commit. A replica that takes a node
// over sends what its sync did not carry, once.
func TestDeployIsDeliveredByTheReplicaHoldingTheNode(t *testing.T) {
	f := newFixture(t, 4) // replica A: serves the API, holds no node
	ctx := testutil.Context(t, time.Minute)
	f.svc.RetryInterval = 50 * time.Millisecond
	f.agents.mu.Lock()
	for id := range f.agents.connected {
		f.agents.connected[id] = false
	}
	f.agents.mu.Unlock()

	// Replica B holds every node.
	b := &recorder{connected: map[int64]bool{}, attempts: map[string]int{}}
	for _, id := range f.nodes {
		b.connected[id] = true
	}
	svcB := deploy.New(deploy.Config{Store: f.st, Agents: b, Resolver: resolver{}, Log: zerolog.Nop()})
	feedB := changefeed.New(f.st, changefeed.Options{Channels: []string{store.DeploymentEventsChannel}, Log: zerolog.Nop()})
	svcB.Follow(feedB)
	ctxB, stopB := context.WithCancel(ctx)
	done := make(chan struct{}, 2)
	go func() { svcB.Run(ctxB); done <- struct{}{} }()
	go func() { feedB.Run(ctxB); done <- struct{}{} }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			stopB()
			<-done
			<-done
		}
	}
	t.Cleanup(stop)
	<-feedB.Ready()

	d1 := f.create(t, "one", "v1")
	if s := b.waitSent(t, protocol.TypeDeploy, 1); s[0].body.(protocol.DeployRequest).Spec.DeploymentID != d1.ID ||
		s[0].body.(protocol.DeployRequest).Spec.Secrets["token"] != "s3cret" {
		t.Fatalf("replica B sent %+v", s)
	}

	// B stops; d2 is committed while no replica holds the node.
	stop()
	d2 := f.create(t, "two", "v1")
	// A takes the node over: its sync carries d1 and d2; d3 is committed
	// after the sync read the desired state, before A holds the node.
	specs, err := f.svc.DesiredState(ctx, *d1.NodeID)
	if err != nil || len(specs) != 2 {
		t.Fatalf("desired state: %d specs, %v", len(specs), err)
	}
	d3 := f.create(t, "three", "v1")
	f.agents.mu.Lock()
	f.agents.connected[*d3.NodeID] = true
	f.agents.mu.Unlock()
	s := f.agents.waitSent(t, protocol.TypeDeploy, 1)
	if id := s[0].body.(protocol.DeployRequest).Spec.DeploymentID; id != d3.ID {
		t.Fatalf("replica A sent deployment %d first, want %d (d1 and d2 went with the sync)", id, d3.ID)
	}
	// Later passes (woken by every status event) send nothing again.
	f.apply(t, *d3.NodeID, protocol.TypeDeploymentStatus, protocol.DeploymentStatus{DeploymentID: d2.ID, Status: "running"})
	d4 := f.create(t, "four", "v1")
	s = f.agents.waitSent(t, protocol.TypeDeploy, 2)
	if len(s) != 2 || s[1].body.(protocol.DeployRequest).Spec.DeploymentID != d4.ID {
		t.Fatalf("replica A sent %d deploys (last %+v), want d3 then d4", len(s), s[len(s)-1].body)
	}
}
