package deploy_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/nullops/nullops/server/deploy"
	"github.com/nullops/nullops/server/errs"
	"github.com/nullops/nullops/server/store"
)

// TestDryRunAgreesWithCreate asks the placement dry run before each create
// on a node with room for two deployments: it says "fits" exactly when the
// create then succeeds, says why not (without the node's name or figures)
// when the create then fails with no_capacity, and creates nothing itself.
func TestDryRunAgreesWithCreate(t *testing.T) {
	f := newFixture(t, 1)
	ctx := context.Background()
	req := func(name string) deploy.CreateRequest {
		return deploy.CreateRequest{ProjectID: f.project, EnvironmentID: f.env, Name: name, Tags: map[string]string{"demo-web": "v1"}}
	}
	for i, name := range []string{"pr-1", "pr-2", "pr-3"} {
		v, err := f.svc.DryRun(ctx, req(""))
		if err != nil {
			t.Fatalf("dry run before %s: %v", name, err)
		}
		if v.CPU != 0.5 || v.MemoryMB != 256 {
			t.Errorf("dry run reports %g CPU / %d MB, want the project's 0.5 / 256", v.CPU, v.MemoryMB)
		}
		_, cerr := f.svc.Create(ctx, f.actor(), req(name))
		var le *errs.Error
		full := errors.As(cerr, &le) && le.Kind == errs.Conflict && le.Code == "no_capacity"
		if cerr != nil && !full {
			t.Fatalf("create %s: %v", name, cerr)
		}
		if v.Fits != (cerr == nil) {
			t.Fatalf("before create %d the dry run said fits=%v (%s); the create answered %v", i+1, v.Fits, v.Reason, cerr)
		}
		if !v.Fits {
			if want := "no node in environment qa has 0.5 CPUs free"; v.Reason != want {
				t.Errorf("reason %q, want %q", v.Reason, want)
			}
			if strings.Contains(v.Reason, "node-1") || !strings.Contains(le.Message, "node-1") {
				t.Errorf("the dry run's reason %q must not name the node (the create's %q does)", v.Reason, le.Message)
			}
		}
	}
	// Dry runs created nothing: the two deployments that fit are all.
	_, total, _, err := f.st.ListDeployments(ctx, store.DeploymentFilter{})
	if err != nil || total != 2 {
		t.Fatalf("%d deployments (%v), want the 2 created", total, err)
	}

	// Bad input fails like a create, before placement.
	if _, err := f.svc.DryRun(ctx, deploy.CreateRequest{ProjectID: f.project, EnvironmentID: f.env + 100}); err == nil {
		t.Errorf("dry run in a missing environment succeeded")
	}
	if _, err := f.svc.DryRun(ctx, deploy.CreateRequest{ProjectID: f.project, EnvironmentID: f.env, Name: "Not A Label"}); err == nil {
		t.Errorf("dry run with an invalid name succeeded")
	}
}
