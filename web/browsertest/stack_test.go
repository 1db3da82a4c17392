package browsertest

// The full stack for the deployment journey: nullops-server serving on
// loopback with its background jobs (agent connections, live events,
// cleanup), a real nullops-agent process driving real Docker, a real
// docker-registry, and nullops-ingress in process. The browser reaches
// deployment URLs through the ingress used as its HTTP proxy, so
// http://web.<deployment>.qa.ui.test works without DNS.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	ptypes "github.com/traefik/paerser/types"

	ingressapp "github.com/nullops/nullops/ingress/app"
	ingressconfig "github.com/nullops/nullops/ingress/config"
	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/internal/testutil/agentproc"
	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/app"
	"github.com/nullops/nullops/server/config"
	"github.com/nullops/nullops/server/store/storetest"
)

const (
	stackAdminPass = "ui-admin-password-1"
	stackUserPass  = "ui-user-password-12"
	ingressToken   = "ui-ingress-token-123"
)

// liveServer runs server/app with Serve (background jobs included).
func liveServer(t *testing.T) string {
	t.Helper()
	cfg := config.Defaults()
	cfg.Listen = "127.0.0.1:0"
	cfg.Database.URL = storetest.URL(t)
	cfg.Database.MaxConns = 12
	cfg.Secret.Key = "Q0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0M="
	cfg.Admin = config.Admin{Username: adminUser, Password: stackAdminPass}
	cfg.Ingress.Token = ingressToken
	cfg.Agents.PingInterval = ptypes.Duration(500 * time.Millisecond)
	cfg.Agents.PingTimeout = ptypes.Duration(3 * time.Second)
	cfg.Agents.BackoffMin = ptypes.Duration(200 * time.Millisecond)
	cfg.Agents.BackoffMax = ptypes.Duration(time.Second)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "server.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, zerolog.New(logf).With().Timestamp().Logger())
	if err != nil {
		cancel()
		t.Fatalf("app.New: %v", err)
	}
	if err := a.Listen(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
			t.Error("server did not stop within 2 minutes")
		}
		logf.Close()
		if t.Failed() {
			// Keep the whole log next to the screenshots for diagnosis.
			b, _ := os.ReadFile(logPath)
			dir := filepath.Join(testutil.RepoRoot(t), "test-artifacts", "logs")
			_ = os.MkdirAll(dir, 0o755)
			_ = os.WriteFile(filepath.Join(dir, sanitize(t.Name())+"-server.log"), b, 0o644)
			t.Logf("server log (end; all of it in test-artifacts/logs):\n%s", tail(string(b), 3000))
		}
	})
	return "http://" + a.Addr()
}

// startIngress runs nullops-ingress against the server; it returns its
// listen address.
func startIngress(t *testing.T, serverURL string) string {
	t.Helper()
	cfg := ingressconfig.Defaults()
	cfg.Listen = "127.0.0.1:0"
	cfg.Metrics.Listen = ""
	cfg.AccessLog = false
	cfg.Server.URL = serverURL
	cfg.Server.Wait = ptypes.Duration(5 * time.Second)
	cfg.Token = ingressToken
	cfg.StateDir = t.TempDir()
	cfg.UI.URL = serverURL // the ingress's own pages link back to the UI
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := ingressapp.New(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
			t.Error("ingress did not stop")
		}
	})
	return a.Addr()
}

// TestMain removes the agent binary built for this test process.
func TestMain(m *testing.M) {
	code := m.Run()
	testutil.RemoveGoBinaries()
	os.Exit(code)
}

// startAgent runs nullops-agent with the node token; its Docker objects
// (labelled with the unique node name) are removed at the end.
func startAgent(t *testing.T, node string, port int, token string) {
	t.Helper()
	// A fixed advertised capacity and no OS usage: placement must not
	// depend on how busy the shared test machine is.
	agentproc.New(t, node, port).Start(token, "--metricsinterval=1s",
		"--capacity.cpus=4", "--capacity.memorymb=4096", "--debug.zerousage=true")
}

// apiClient is a logged-in session for setting up fixtures through the API.
type apiClient struct {
	t    *testing.T
	base string
	hc   *http.Client
	csrf string
}

func apiLogin(t *testing.T, base, user, pass string) *apiClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &apiClient{t: t, base: base, hc: &http.Client{Jar: jar, Timeout: 60 * time.Second}}
	var me restapi.Me
	c.call("POST", "/auth/login", map[string]string{"username": user, "password": pass}, 200, &me)
	c.csrf = me.CSRFToken
	return c
}

// call sends a request, fails the test unless the status is want, and
// decodes the answer into out (when not nil). It returns the status.
func (c *apiClient) call(method, path string, body any, want int, out any) int {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+"/api/v1"+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if want != 0 && res.StatusCode != want {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, res.StatusCode, want, b)
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
	return res.StatusCode
}

func (c *apiClient) id(method, path string, body any, want int) int64 {
	c.t.Helper()
	var v struct {
		ID int64 `json:"id"`
	}
	c.call(method, path, body, want, &v)
	return v.ID
}

// deploymentStack is an installation ready for users to deploy: project
// "shop" (one service "web" from the registry, selectable tags v1.*,
// exposed through ingress) in environment "qa" with one online node, and
// two users: dev (full access) and reader (read access).
type deploymentStack struct {
	URL, Proxy string
	Admin      *apiClient
	ProjectID  int64
	EnvID      int64
	NodeName   string // the agent's node name (label nullops.node of its Docker objects)
}

func newDeploymentStack(t *testing.T) *deploymentStack {
	t.Helper()
	reg := testutil.StartRegistry(t, "ui", "ui-registry-pass")
	ref := testutil.ScratchImage(t, "./scripts/images/demo-web", fmt.Sprintf("nullops-uitest/demo-web:%d", os.Getpid()))
	reg.Push(t, ref, "ui/web", "v1.0.0", "v1.1.0", "other-1")

	base := liveServer(t)
	admin := apiLogin(t, base, adminUser, stackAdminPass)
	regID := admin.id("POST", "/registries", map[string]any{"name": "local", "url": "http://" + reg.Host,
		"username": reg.Username, "password": reg.Password, "insecure": true}, 201)
	admin.call("POST", "/services", map[string]any{"name": "web", "registry_id": regID, "image": "ui/web",
		"tag_mode": "selectable", "tag_pattern": "v1.*", "ports": []int{8080}, "health": map[string]any{"http": "/healthz"}}, 201, nil)
	envID := admin.id("POST", "/environments", map[string]any{"name": "qa", "base_domain": "ui.test", "default_ttl": "2h"}, 201)
	projectID := admin.id("POST", "/projects", map[string]any{"name": "shop", "cpu": 0.25, "memory_mb": 128}, 201)
	admin.call("PUT", fmt.Sprintf("/projects/%d/pipeline", projectID), map[string]any{
		"nodes": []map[string]any{{"id": "web", "kind": "service", "service": "web", "port": 8080, "ingress": true,
			"env": map[string]string{"SERVICE_NAME": "web"}, "position": map[string]int{"x": 40, "y": 40}}},
		"edges": [][2]string{},
	}, 201, nil)

	port := testutil.FreePort(t)
	var node restapi.NodeCreated
	admin.call("POST", fmt.Sprintf("/environments/%d/nodes", envID), map[string]any{"name": "node-1", "host": "127.0.0.1", "port": port}, 201, &node)
	nodeName := fmt.Sprintf("ui-node-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	startAgent(t, nodeName, port, node.Token)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var n restapi.Node
		admin.call("GET", fmt.Sprintf("/nodes/%d", node.Node.ID), nil, 200, &n)
		if n.Status == "online" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node is %s (%s) after 3 minutes", n.Status, n.StatusReason)
		}
		time.Sleep(200 * time.Millisecond)
	}

	user := func(name, scope string, target int64, level string) {
		uid := admin.id("POST", "/users", map[string]any{"username": name, "password": stackUserPass}, 201)
		team := admin.id("POST", "/teams", map[string]any{"name": name + "-team"}, 201)
		admin.call("PUT", fmt.Sprintf("/teams/%d/members/%d", team, uid), nil, 204, nil)
		admin.call("PUT", fmt.Sprintf("/%s/%d/access/%d", scope, target, team), map[string]any{"level": level}, 200, nil)
	}
	user("dev", "environments", envID, "full")
	user("reader", "projects", projectID, "read")

	return &deploymentStack{URL: base, Proxy: startIngress(t, base), Admin: admin, ProjectID: projectID, EnvID: envID, NodeName: nodeName}
}
