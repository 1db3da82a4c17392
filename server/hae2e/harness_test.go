// Package hae2e holds the end-to-end tests of a highly available control
// plane: several real nullops-server processes on one PostgreSQL database
// behind a real HAProxy (internal/testutil/hacluster), real nullops-agent
// processes, a real registry and real Docker, driven through the load
// balancer's HTTP API only (docs/high-availability.md). The tests run in
// parallel: most of their time is waiting (drains, lease expiry, agents
// deploying), each has its own database, ports, registry and node names.
package hae2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/internal/testutil/agentproc"
	"github.com/nullops/nullops/internal/testutil/hacluster"
	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/store/storetest"
)

const (
	adminUser    = "admin"
	adminPass    = "hae2e-admin-password-1"
	secretKey    = "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI="
	ingressToken = "hae2e-ingress-token-123"
)

// world is one HA installation: the cluster, an admin client through the
// load balancer, a registry with the demo web image, an environment and a
// project whose pipeline is one web service.
type world struct {
	c       *hacluster.Cluster
	db      string
	admin   *client
	envID   int64
	project int64
	unique  string
	agents  []*agent
	nodeIDs []int64
}

// startWorld starts n replicas (args: extra server flags) and the catalog.
func startWorld(t *testing.T, n int, args ...string) *world {
	t.Helper()
	w := &world{db: storetest.URL(t), unique: fmt.Sprintf("%x", time.Now().UnixNano()&0xffffff)}
	base := []string{
		"--log.level=info", "--cleanup.schedule=@every 1s",
		"--agents.pinginterval=500ms", "--agents.pingtimeout=2s", "--agents.backoffmin=200ms", "--agents.backoffmax=1s",
		// HAProxy checks every 250 ms and takes a replica out after 2
		// failures: 1 s of unreadiness drains it.
		"--http.draindelay=1s",
	}
	w.c = hacluster.Start(t, hacluster.Options{Replicas: n, DatabaseURL: w.db, Args: append(base, args...),
		Env: []string{"NULLOPS_SECRET_KEY=" + secretKey, "NULLOPS_ADMIN_USERNAME=" + adminUser, "NULLOPS_ADMIN_PASSWORD=" + adminPass,
			"NULLOPS_INGRESS_TOKEN=" + ingressToken}})
	w.admin = login(t, w.c.URL, adminUser, adminPass)

	reg := testutil.StartRegistry(t, "hae2e", "hae2e-registry-pw")
	web := testutil.ScratchImage(t, "./scripts/images/demo-web", "nullops-hae2e/demo-web:build")
	reg.Push(t, web, "hae2e/web", "v1.0.0")
	regID := idOf(t, w.admin.must(t, "POST", "/registries", map[string]any{
		"name": "local", "url": "http://" + reg.Host, "username": "hae2e", "password": "hae2e-registry-pw", "insecure": true,
	}, 201))
	w.admin.must(t, "POST", "/services", map[string]any{
		"name": "web", "registry_id": regID, "image": "hae2e/web", "tag_mode": "pinned", "tag": "v1.0.0",
		"ports": []int{8080}, "health": map[string]any{"http": "/healthz"},
	}, 201)
	w.envID = idOf(t, w.admin.must(t, "POST", "/environments", map[string]any{"name": "qa", "base_domain": "hae2e.test", "default_ttl": "1h"}, 201))
	w.project = idOf(t, w.admin.must(t, "POST", "/projects", map[string]any{"name": "shop", "cpu": 0.05, "memory_mb": 16}, 201))
	w.admin.must(t, "PUT", fmt.Sprintf("/projects/%d/pipeline", w.project), map[string]any{
		"nodes": []map[string]any{{"id": "web", "kind": "service", "service": "web", "port": 8080, "ingress": true}},
		"edges": [][2]string{},
	}, 201)
	return w
}

// addNodes adds n nodes through the API and starts their agents.
func (w *world) addNodes(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		port := testutil.FreePort(t)
		name := fmt.Sprintf("node-%d", len(w.agents)+1)
		r := w.admin.must(t, "POST", fmt.Sprintf("/environments/%d/nodes", w.envID), map[string]any{"name": name, "host": "127.0.0.1", "port": port}, 201)
		var out struct {
			ID    int64  `json:"id"`
			Token string `json:"token"`
			Node  struct {
				ID int64 `json:"id"`
			} `json:"node"`
		}
		if err := json.Unmarshal(r, &out); err != nil {
			t.Fatal(err)
		}
		id := out.ID
		if id == 0 {
			id = out.Node.ID
		}
		w.agents = append(w.agents, startAgent(t, fmt.Sprintf("hae2e-%s-%d", w.unique, i+1), port, out.Token))
		w.nodeIDs = append(w.nodeIDs, id)
	}
	ctx := testutil.Context(t, 2*time.Minute)
	testutil.WaitFor(t, ctx, 100*time.Millisecond, "every node online", func() bool { return w.onlineNodes(t) == len(w.nodeIDs) })
}

// onlineNodes counts the nodes the API says are online.
func (w *world) onlineNodes(t *testing.T) int {
	t.Helper()
	st, b, err := w.admin.do("GET", fmt.Sprintf("/environments/%d/nodes?per_page=100", w.envID), nil)
	if err != nil || st != 200 {
		return -1
	}
	var page struct {
		Items []struct {
			Status string `json:"status"`
		} `json:"items"`
	}
	if json.Unmarshal(b, &page) != nil {
		return -1
	}
	n := 0
	for _, it := range page.Items {
		if it.Status == "online" {
			n++
		}
	}
	return n
}

// --- client ---------------------------------------------------------------------

// client calls the API with an API token; do reports transport errors
// instead of failing the test (the load loops count them).
type client struct {
	base  string
	token string
	http  *http.Client
}

func (c *client) do(method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+restapi.Prefix+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	res, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

// must is do that fails the test unless the status is want.
func (c *client) must(t *testing.T, method, path string, body any, want int) []byte {
	t.Helper()
	st, b, err := c.do(method, path, body)
	if err != nil || st != want {
		t.Fatalf("%s %s: %d %s %v (want %d)", method, path, st, b, err, want)
	}
	return b
}

func idOf(t *testing.T, b []byte) int64 {
	t.Helper()
	var v struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal(b, &v); err != nil || v.ID == 0 {
		t.Fatalf("no id in %s", b)
	}
	return v.ID
}

// login logs in with a password and returns a client using a fresh API
// token of that user.
func login(t *testing.T, base, username, password string) *client {
	t.Helper()
	ctx := testutil.Context(t, time.Minute)
	s, _, err := restapi.Login(ctx, base, &http.Client{Timeout: time.Minute}, username, password)
	if err != nil {
		t.Fatalf("login %s: %v", username, err)
	}
	tok, err := s.CreateToken(ctx, restapi.TokenRequest{Name: "hae2e"})
	if err != nil {
		t.Fatalf("create token: %v", err)
	}
	return &client{base: base, token: tok.Token, http: &http.Client{Timeout: time.Minute}}
}

func (w *world) deployment(t *testing.T, id int64) (restapi.Deployment, error) {
	st, b, err := w.admin.do("GET", fmt.Sprintf("/deployments/%d", id), nil)
	if err != nil {
		return restapi.Deployment{}, err
	}
	if st != 200 {
		return restapi.Deployment{}, fmt.Errorf("GET deployment %d: %d %s", id, st, b)
	}
	var d restapi.Deployment
	return d, json.Unmarshal(b, &d)
}

// waitStatus waits until deployment id has status want (failing on
// failed), saying where it stands when it does not get there.
func (w *world) waitStatus(t *testing.T, ctx context.Context, id int64, want string) restapi.Deployment {
	t.Helper()
	var d restapi.Deployment
	var err error
	for {
		d, err = w.deployment(t, id)
		if err == nil && d.Status == want {
			return d
		}
		if err == nil && d.Status == "failed" && want != "failed" {
			t.Fatalf("deployment %d failed: %s", id, d.Reason)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("deployment %d is %s (reason %q, node %s %s, delete pending %v; %v), want %s",
				id, d.Status, d.Reason, d.Node, d.NodeStatus, d.DeletePending, err, want)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// --- agents ---------------------------------------------------------------------

// TestMain removes the binaries built for this test process.
func TestMain(m *testing.M) {
	code := m.Run()
	testutil.RemoveGoBinaries()
	os.Exit(code)
}

// agent is a nullops-agent process of one node (its node name is the
// nullops.node label of its Docker objects).
type agent struct {
	node string
	proc *agentproc.Agent
}

func startAgent(t *testing.T, node string, port int, token string) *agent {
	t.Helper()
	a := &agent{node: node, proc: agentproc.New(t, node, port)}
	a.proc.Start(token, "--metricsinterval=5s", "--debug.zerousage=true", "--capacity.cpus=4", "--capacity.memorymb=4096")
	return a
}

// runningContainers counts the running containers of the world's nodes
// by deployment id.
func (w *world) runningContainers(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, a := range w.agents {
		s := testutil.Docker(t, "ps", "--filter", "label=nullops.node="+a.node, "--format", `{{.Label "nullops.deployment"}}`)
		for _, l := range strings.Fields(s) {
			out[l]++
		}
	}
	return out
}

// errTransport tells a transport failure from an HTTP answer in counts.
var errTransport = errors.New("transport")
