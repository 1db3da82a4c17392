package executor

import (
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/protocol"
)

// ownTestPlugin builds the test plugin under a tag of this test alone (the
// shared tag may be rebuilt by another test process meanwhile).
func ownTestPlugin(t *testing.T) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	ref := testImage(t, "./scripts/images/test-plugin", "nullops-test/test-plugin:own-"+hex.EncodeToString(b[:]))
	t.Cleanup(func() { _, _ = testutil.DockerErr("rmi", "-f", ref) })
	return ref
}

// lastOutputs is the outputs of a step's last status event.
func lastOutputs(t *testing.T, e *env, id int64, step string) map[string]string {
	t.Helper()
	s := e.rec.steps(id, step)
	if len(s) == 0 {
		t.Fatalf("no events of step %s", step)
	}
	last := s[len(s)-1]
	if last.Status != protocol.StepSucceeded {
		t.Fatalf("step %s: %+v\nlog: %s", step, last, e.rec.stepLogs(id, step))
	}
	return last.Outputs
}

// TestPluginGetsOnlyTheSecretsItsParamsReference: a pipeline with three
// secrets; each plugin step receives (in the input's "secrets") exactly
// the ones its own parameters reference, wherever in them, and an earlier
// step's output built from a secret the step does not reference reaches
// it as the ${secrets.NAME} placeholder, not the value.
func TestPluginGetsOnlyTheSecretsItsParamsReference(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := testutil.Context(t, 3*time.Minute)
	img := ownTestPlugin(t)
	id := int64(time.Now().UnixNano()%1e6 + 8000000)
	spec := specOf(id, []protocol.Node{
		pluginNode("none", map[string]any{"outputs": map[string]any{"x": "plain"}}),
		pluginNode("one", map[string]any{"stderr": "pw is ${secrets.db_password}", "outputs": map[string]any{"dsn": "pg://u:${secrets.db_password}@db/app"}}),
		pluginNode("nested", map[string]any{"list": []any{"a", map[string]any{"k": "${secrets.api_key}-${secrets.db_password}"}}, "missing": "${HOME}"}),
		pluginNode("later", map[string]any{"k": "${secrets.api_key}"}),
	}, [][2]string{{"none", "one"}, {"one", "nested"}, {"one", "later"}}, demoWebImage, nil)
	spec.Secrets = map[string]string{"db_password": "pw-value-1234", "api_key": "key-value-5678", "unused": "unused-value-90"}
	for _, n := range spec.Graph.Nodes {
		pi := spec.Plugins[n.ID]
		pi.Image = img
		spec.Plugins[n.ID] = pi
	}
	if err := e.ex.Deploy(ctx, protocol.DeployRequest{Spec: spec}); err != nil {
		t.Fatal(err)
	}
	if ds := e.rec.waitDeployment(t, ctx, id, protocol.StatusRunning, protocol.StatusFailed); ds.Status != protocol.StatusRunning {
		t.Fatalf("deployment %s: %s (step %s)", ds.Status, ds.Reason, ds.FailedStep)
	}
	for step, want := range map[string][2]string{
		"none":   {"", ""},
		"one":    {"db_password", ""},
		"nested": {"api_key,db_password", ""}, // references db_password: gets one's dsn as it is
		"later":  {"api_key", "db_password"},  // does not: one's dsn holds the placeholder
	} {
		out := lastOutputs(t, e, id, step)
		if got := out["secret_names"]; got != want[0] {
			t.Errorf("step %s received secrets %q, want %q", step, got, want[0])
		}
		if got := out["earlier_placeholders"]; got != want[1] {
			t.Errorf("step %s received earlier outputs with placeholders for %q, want %q", step, got, want[1])
		}
	}
}
