package deploy_test

import (
	"errors"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/protocol"
)

// A deploy that finds no connection to the node (with several replicas:
// its owner is stopping, the next one not connected yet) is retried until
// the node takes it, not left to a sync that may have happened already.
func TestDeployIsRetriedUntilTheNodeTakesIt(t *testing.T) {
	f := newFixture(t, 4)
	ctx := testutil.Context(t, time.Minute)
	f.agents.mu.Lock()
	f.agents.fail = errors.New("node 1: node is not connected")
	f.agents.mu.Unlock()
	d := f.create(t, "crossing", "v1")
	testutil.WaitFor(t, ctx, 5*time.Millisecond, "the deploy tried twice", func() bool {
		f.agents.mu.Lock()
		defer f.agents.mu.Unlock()
		return f.agents.attempts[protocol.TypeDeploy] >= 2
	})
	f.agents.mu.Lock()
	f.agents.fail = nil
	f.agents.mu.Unlock()
	got := f.agents.waitSent(t, protocol.TypeDeploy, 1)
	if req, ok := got[0].body.(protocol.DeployRequest); !ok || req.Spec.DeploymentID != d.ID {
		t.Fatalf("sent %+v", got[0])
	}
	if s := f.get(t, d.ID).Status; s != "deploying" {
		t.Fatalf("status %s", s)
	}
}

// A deployment deleted on the API whose agent then reports it running (its
// deploy arrived after its delete) is deleted on the node again at once.
func TestStrayDeploymentOfADeletedOneIsDeletedAgain(t *testing.T) {
	f := newFixture(t, 4)
	ctx := testutil.Context(t, time.Minute)
	d := f.create(t, "stray", "v1")
	node := *d.NodeID
	f.agents.waitSent(t, protocol.TypeDeploy, 1)
	if _, err := f.svc.Delete(ctx, f.actor(), d.ID); err != nil {
		t.Fatal(err)
	}
	f.agents.waitSent(t, protocol.TypeCancel, 1)
	f.apply(t, node, protocol.TypeDeploymentStatus, protocol.DeploymentStatus{DeploymentID: d.ID, Status: "deleted"})
	if s := f.get(t, d.ID).Status; s != "deleted" {
		t.Fatalf("status %s after the agent reported it deleted", s)
	}
	f.apply(t, node, protocol.TypeDeploymentStatus, protocol.DeploymentStatus{DeploymentID: d.ID, Status: "running"})
	got := f.agents.waitSent(t, protocol.TypeDelete, 1)
	if req, ok := got[0].body.(protocol.DeleteRequest); !ok || req.DeploymentID != d.ID || got[0].node != node {
		t.Fatalf("sent %+v", got[0])
	}
	if n := f.svc.Redeletes(); n != 1 {
		t.Fatalf("redeletes %d", n)
	}
	if s := f.get(t, d.ID).Status; s != "deleted" {
		t.Fatalf("status %s after the stray report", s)
	}
}
