package api_test

import (
	"context"
	"strings"
	"testing"

	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/api/apitest"
	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/store"
)

// Users with read on an environment see its nodes' names, status and
// labels, but not where they are, what they hold or how they are pinned.
func TestUsersDoNotSeeNodeCapacityHostOrThumbprint(t *testing.T) {
	env := apitest.New(t)
	ctx := context.Background()
	envID := env.Environment("qa")
	n, err := store.CreateNode(ctx, env.Store.Pool, store.NewNode{EnvironmentID: envID, Name: "box-1", Host: "10.9.8.7", Port: 5123,
		Labels: map[string]string{"zone": "a"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Store.SetNodeUntrusted(ctx, n.ID, fixtureThumbprint, "dial 10.9.8.7:5123: certificate mismatch"); err != nil {
		t.Fatal(err)
	}
	if err := env.Store.SetNodeMetrics(ctx, n.ID, protocol.Capacity{CPUs: 7.5, MemoryMB: 65432, DiskMB: 123456},
		protocol.Usage{CPUsUsed: 1.25, MemoryUsedMB: 4321}); err != nil {
		t.Fatal(err)
	}
	u := env.UserClient("ops-viewer", false)
	env.Grant(env.Team("viewers", u.User.ID), store.ScopeEnvironment, envID, auth.Read)

	secret := []string{"10.9.8.7", fixtureThumbprint, `"capacity"`, `"usage"`, `"cpus"`, `"memory_mb"`,
		`"host"`, `"port"`, `"expected_thumbprint"`, `"seen_thumbprint"`, `"status_reason"`, `"agent_instance"`}
	for _, path := range []string{apitest.Path("/nodes/%d", n.ID), apitest.Path("/environments/%d/nodes", envID)} {
		r := u.Get(path).Want(t, 200)
		for _, s := range secret {
			if strings.Contains(string(r.Body), s) {
				t.Errorf("user sees %s in GET %s: %s", s, path, r.Body)
			}
		}
		for _, s := range []string{`"name":"box-1"`, `"status":"untrusted"`, `"zone":"a"`} {
			if !strings.Contains(string(r.Body), s) {
				t.Errorf("user does not see %s in GET %s: %s", s, path, r.Body)
			}
		}
		a := env.Admin.Get(path).Want(t, 200)
		for _, s := range []string{"10.9.8.7", fixtureThumbprint, `"memory_mb":65432`, `"memory_used_mb":4321`} {
			if !strings.Contains(string(a.Body), s) {
				t.Errorf("admin does not see %s in GET %s: %s", s, path, a.Body)
			}
		}
	}
}
