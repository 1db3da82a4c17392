package executor

import (
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/protocol"
)

// TestPostgresPluginUnderTheSandbox: the bundled postgres plugin (read-only
// root, no capabilities, no-new-privileges, pids limit) creates a database
// in a real PostgreSQL service container (no-new-privileges, pids limit;
// the stand-in postgres:16 image of scripts/postgres-image.sh, which drops
// to the postgres user with setpriv).
func TestPostgresPluginUnderTheSandbox(t *testing.T) {
	requireDocker(t, "the postgres:16 stand-in image and Docker's sandbox")
	if out, err := exec.Command("bash", testutil.RepoRoot(t)+"/scripts/postgres-image.sh", "postgres:16").CombinedOutput(); err != nil {
		t.Fatalf("scripts/postgres-image.sh (run make test, which sets it up): %v\n%s", err, out)
	}
	e := newEnv(t, Config{})
	ctx := testutil.Context(t, 4*time.Minute)
	var b [4]byte
	_, _ = rand.Read(b[:])
	plugin := testutil.ScratchImage(t, "./plugins/postgres", "nullops-test/plugin-postgres:own-"+hex.EncodeToString(b[:]))
	t.Cleanup(func() { _, _ = testutil.DockerErr("rmi", "-f", plugin) })

	id := int64(time.Now().UnixNano()%1e6 + 9500000)
	db := protocol.Node{ID: "db", Kind: protocol.KindService, Port: 5432}
	mkdb := protocol.Node{ID: "mkdb", Kind: protocol.KindComponent, Plugin: "postgres", Params: map[string]any{
		"host": "db", "admin_password": "${secrets.pg_admin}", "database": "app", "password": "app-pass-4411",
		"sql": "CREATE TABLE IF NOT EXISTS t (x int);", "timeout": "90s",
	}}
	spec := specOf(id, []protocol.Node{db, mkdb}, [][2]string{{"db", "mkdb"}}, "postgres:16", nil)
	spec.Services["db"] = protocol.ServiceImage{Image: "postgres:16", Ports: []int{5432}, Env: map[string]string{"POSTGRES_PASSWORD": "${secrets.pg_admin}"}}
	spec.Plugins["mkdb"] = protocol.PluginImage{Name: "postgres", Image: plugin, JoinNetwork: true, Resources: protocol.Resources{CPU: 0.25, MemoryMB: 64}}
	spec.Resources = protocol.Resources{CPU: 1, MemoryMB: 512}
	spec.Secrets = map[string]string{"pg_admin": "pg-admin-pass-8213"}
	if err := e.ex.Deploy(ctx, protocol.DeployRequest{Spec: spec}); err != nil {
		t.Fatal(err)
	}
	ds := e.rec.waitDeployment(t, ctx, id, protocol.StatusRunning, protocol.StatusFailed)
	if ds.Status != protocol.StatusRunning {
		t.Fatalf("deployment %s at %s: %s\nplugin log: %s", ds.Status, ds.FailedStep, ds.Reason, e.rec.stepLogs(id, "mkdb"))
	}
	if url := lastOutputs(t, e, id, "mkdb")["url"]; !strings.HasPrefix(url, "postgres://app:") || !strings.Contains(url, "@db:5432/app") {
		t.Errorf("postgres plugin url output %q", url)
	}
}
