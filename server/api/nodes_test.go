package api_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/api/apitest"
	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/store"
)

const fixtureThumbprint = "ab12000000000000000000000000000000000000000000000000000000000000"

// The node routes in the authorization matrix: reading is for anyone with
// read on the node's environment, every change is admin-only.
func init() {
	fixtures = append(fixtures, func(f *fixture) {
		ctx := context.Background()
		n, err := store.CreateNode(ctx, f.Env.Store.Pool, store.NewNode{EnvironmentID: f.Environment, Name: "m-" + randSuffix(), Host: "127.0.0.1", Port: 1})
		if err != nil {
			f.T.Fatal(err)
		}
		if _, err := f.Env.Store.SetNodeUntrusted(ctx, n.ID, fixtureThumbprint, "fixture"); err != nil {
			f.T.Fatal(err)
		}
		f.Set("node", n.ID)
	})
	matrix = append(matrix,
		route{Route: "GET /api/v1/environments/:id/nodes", Rule: envRead, OK: 200},
		route{Route: "POST /api/v1/environments/:id/nodes", Rule: adminOnly, OK: 201, Body: `{"name":"new-{team}","host":"127.0.0.1","port":5001}`},
		route{Route: "GET /api/v1/nodes/:id", Rule: envRead, OK: 200},
		route{Route: "GET /api/v1/nodes/:id/events", Rule: adminOnly, OK: 200},
		route{Route: "PATCH /api/v1/nodes/:id", Rule: adminOnly, OK: 200, Body: `{"labels":{"zone":"a"}}`},
		route{Route: "DELETE /api/v1/nodes/:id", Rule: adminOnly, OK: 204},
		route{Route: "POST /api/v1/nodes/:id/rotate-token", Rule: adminOnly, OK: 200},
		route{Route: "POST /api/v1/nodes/:id/revoke", Rule: adminOnly, OK: 200},
		route{Route: "POST /api/v1/nodes/:id/approve-thumbprint", Rule: adminOnly, OK: 200},
		route{Route: "POST /api/v1/nodes/:id/disable", Rule: adminOnly, OK: 200},
		route{Route: "POST /api/v1/nodes/:id/enable", Rule: adminOnly, OK: 200},
	)
}

// The token is shown once, on create and on rotate, with the docker run
// command; never by any read; and it is stored encrypted.
func TestNodeTokenShownOnceAndStoredEncrypted(t *testing.T) {
	env := apitest.New(t)
	envID := env.Environment("qa")
	var created restapi.NodeCreated
	env.Admin.Post(apitest.Path("/environments/%d/nodes", envID), map[string]any{
		"name": "node-1", "host": "10.0.0.5", "port": 5050, "labels": map[string]string{"zone": "a"},
	}).Want(t, 201).Decode(t, &created)
	tok := created.Token
	if !strings.HasPrefix(tok, "nullops-node_") || len(tok) < 40 {
		t.Fatalf("token %q", tok)
	}
	if want := "-p 5050:5000 -e AGENT_TOKEN=" + tok + " "; !strings.Contains(created.DockerRun, want) ||
		!strings.Contains(created.DockerRun, " -v /var/lib/nullops-agent:/data nullops/agent:latest") {
		t.Fatalf("docker run %q", created.DockerRun)
	}
	if want := `sed -i "s/^AGENT_TOKEN=.*/AGENT_TOKEN=` + tok + `/" .env && docker-compose up -d agent`; created.Compose != want {
		t.Fatalf("compose command %q, want %q", created.Compose, want)
	}
	n := created.Node
	if n.Status != "offline" || !n.Enabled || n.Labels["zone"] != "a" || n.Port != 5050 {
		t.Fatalf("created %+v", n)
	}

	for _, path := range []string{apitest.Path("/nodes/%d", n.ID), apitest.Path("/environments/%d/nodes", envID)} {
		r := env.Admin.Get(path).Want(t, 200)
		if strings.Contains(string(r.Body), tok) || strings.Contains(string(r.Body), "token_enc") {
			t.Fatalf("GET %s reveals the token: %s", path, r.Body)
		}
	}
	row, err := env.Store.GetNode(context.Background(), n.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(row.TokenEnc) == 0 || strings.Contains(string(row.TokenEnc), tok) || row.TokenKeyID == "" {
		t.Fatal("token not stored encrypted")
	}

	var rotated restapi.NodeCreated
	env.Admin.Post(apitest.Path("/nodes/%d/rotate-token", n.ID), nil).Want(t, 200).Decode(t, &rotated)
	if rotated.Token == "" || rotated.Token == tok || !strings.Contains(rotated.DockerRun, rotated.Token) {
		t.Fatalf("rotate: %+v", rotated)
	}
	if r := env.Admin.Get(apitest.Path("/nodes/%d", n.ID)); strings.Contains(string(r.Body), rotated.Token) {
		t.Fatal("GET reveals the rotated token")
	}
	// The audit log records the actions without the token.
	r := env.Admin.Get(apitest.Path("/audit?action=node.*")).Want(t, 200)
	if !strings.Contains(string(r.Body), "node.create") || !strings.Contains(string(r.Body), "node.rotate_token") ||
		strings.Contains(string(r.Body), tok) || strings.Contains(string(r.Body), rotated.Token) {
		t.Fatalf("audit: %s", r.Body)
	}
}

func TestNodeValidationAndAdminActions(t *testing.T) {
	env := apitest.New(t)
	envID := env.Environment("qa")
	bad := env.Admin.Post(apitest.Path("/environments/%d/nodes", envID), map[string]any{
		"name": "", "host": "http://x:5000", "port": 70000, "expected_thumbprint": "zz", "labels": map[string]string{"-bad": "x"},
	}).Want(t, 400)
	for _, f := range []string{"name", "host", "port", "expected_thumbprint", "labels"} {
		if !strings.Contains(string(bad.Body), `"`+f+`"`) {
			t.Errorf("400 does not name %s: %s", f, bad.Body)
		}
	}
	env.Admin.Post(apitest.Path("/environments/%d/nodes", 99999), map[string]any{"name": "n", "host": "h"}).Want(t, 404)

	var c restapi.NodeCreated
	env.Admin.Post(apitest.Path("/environments/%d/nodes", envID), map[string]any{
		"name": "n1", "host": "agent-1.internal", "expected_thumbprint": strings.ToUpper("AB:" + fixtureThumbprint[2:]),
	}).Want(t, 201).Decode(t, &c)
	if c.Node.Port != 5000 || c.Node.ExpectedThumbprint != fixtureThumbprint {
		t.Fatalf("defaults/normalisation: %+v", c.Node)
	}
	env.Admin.Post(apitest.Path("/environments/%d/nodes", envID), map[string]any{"name": "n1", "host": "h"}).Want(t, 409)

	id := c.Node.ID
	var n restapi.Node
	env.Admin.Post(apitest.Path("/nodes/%d/approve-thumbprint", id), nil).Want(t, 409) // nothing seen yet
	env.Admin.Post(apitest.Path("/nodes/%d/disable", id), nil).Want(t, 200).Decode(t, &n)
	if n.Status != "offline" || n.Enabled {
		t.Fatalf("disable: %+v", n)
	}
	env.Admin.Post(apitest.Path("/nodes/%d/enable", id), nil).Want(t, 200).Decode(t, &n)
	if n.Status != "offline" || !n.Enabled {
		t.Fatalf("enable: %+v", n)
	}
	env.Admin.Post(apitest.Path("/nodes/%d/revoke", id), nil).Want(t, 200).Decode(t, &n)
	if n.Status != "revoked" || !n.Revoked {
		t.Fatalf("revoke: %+v", n)
	}
	env.Admin.Patch(apitest.Path("/nodes/%d", id), map[string]any{"host": "10.1.1.1", "port": 6000, "labels": map[string]string{"gpu": "no"}}).
		Want(t, 200).Decode(t, &n)
	if n.Host != "10.1.1.1" || n.Port != 6000 || n.Labels["gpu"] != "no" || n.Name != "n1" {
		t.Fatalf("patch: %+v", n)
	}
	env.Admin.Patch(apitest.Path("/nodes/%d", id), map[string]any{"port": 0}).Want(t, 400)
	env.Admin.Delete(apitest.Path("/nodes/%d", id)).Want(t, 204)
	env.Admin.Get(apitest.Path("/nodes/%d", id)).Want(t, 404)

	// A user who can read the environment sees its nodes, but changes none.
	u := env.User("reader", false)
	team := env.Team("readers", u.ID)
	env.Grant(team, store.ScopeEnvironment, envID, auth.Read)
	reader := env.Session(u)
	reader.Get(apitest.Path("/environments/%d/nodes", envID)).Want(t, 200)
	reader.Post(apitest.Path("/environments/%d/nodes", envID), map[string]any{"name": "x", "host": "h"}).Want(t, 403)
}

// End to end through the API: add a node, run the real agent with the
// token from the response; the node shows online with its thumbprint,
// version and capacity; rotating the token reaches the running agent and
// the node is online again with the new token.
func TestNodeOnlineThroughTheAPI(t *testing.T) {
	env := apitest.New(t)
	ctx := testutil.Context(t, 2*time.Minute)
	if err := env.App.Agents.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.App.Agents.Stop)
	bin := filepath.Join(t.TempDir(), "nullops-agent")
	testutil.BuildStatic(t, "./cmd/nullops-agent", bin)

	port := testutil.FreePort(t)
	var c restapi.NodeCreated
	env.Admin.Post(apitest.Path("/environments/%d/nodes", env.Environment("qa")), map[string]any{"name": "n1", "host": "127.0.0.1", "port": port}).
		Want(t, 201).Decode(t, &c)
	agent := exec.Command(bin, fmt.Sprintf("--listen=127.0.0.1:%d", port), "--datadir="+t.TempDir())
	agent.Env = []string{"AGENT_TOKEN=" + c.Token}
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agent.Process.Signal(syscall.SIGKILL); _ = agent.Wait() })

	var n restapi.Node
	testutil.WaitFor(t, ctx, 50*time.Millisecond, "node online through the API", func() bool {
		env.Admin.Get(apitest.Path("/nodes/%d", c.Node.ID)).Want(t, 200).Decode(t, &n)
		return n.Status == "online"
	})
	if !n.Connected || len(n.ExpectedThumbprint) != 64 || n.AgentVersion == "" || n.Capacity.CPUs <= 0 || n.Capacity.MemoryMB <= 0 || n.LastSeenAt == nil {
		t.Fatalf("online node: %+v", n)
	}
	var rotated restapi.NodeCreated
	env.Admin.Post(apitest.Path("/nodes/%d/rotate-token", c.Node.ID), nil).Want(t, 200).Decode(t, &rotated)
	if rotated.Token == c.Token || !rotated.Node.TokenRotationPending {
		t.Fatalf("rotation: %+v", rotated.Node)
	}
	// The running agent is handed the new token and the node is online
	// again with it, the rotation completed.
	testutil.WaitFor(t, ctx, 20*time.Millisecond, "online again with the rotated token", func() bool {
		env.Admin.Get(apitest.Path("/nodes/%d", c.Node.ID)).Want(t, 200).Decode(t, &n)
		return n.Connected && n.Status == "online" && !n.TokenRotationPending
	})
}
