package e2e

// Blips, deletes and maintenance, end to end: a real server, a real agent
// reached through toxiproxy (to make the link half-open), a real
// nullops-ingress in front of the deployment's container, real Docker.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	ptypes "github.com/traefik/paerser/types"

	ingressapp "github.com/nullops/nullops/ingress/app"
	ingressconfig "github.com/nullops/nullops/ingress/config"
	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/config"
)

// ingressProc is an in-process nullops-ingress following the server.
type ingressProc struct {
	app  *ingressapp.App
	stop func()
}

func startIngressFor(t *testing.T, serverURL, token string) *ingressProc {
	t.Helper()
	cfg := ingressconfig.Defaults()
	cfg.Listen = "127.0.0.1:0"
	cfg.Metrics.Listen = ""
	cfg.AccessLog = false
	cfg.Server.URL = serverURL
	cfg.Server.Wait = ptypes.Duration(20 * time.Second)
	cfg.Token = token
	cfg.StateDir = t.TempDir()
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
	done := make(chan struct{})
	go func() { _ = a.Serve(ctx); close(done) }()
	var once sync.Once
	p := &ingressProc{app: a, stop: func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(2 * time.Minute):
			}
		})
	}}
	t.Cleanup(p.stop)
	return p
}

var ingressClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}

// get requests / of host through the ingress.
func (p *ingressProc) get(host string) (int, string) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+p.app.Addr()+"/", nil)
	req.Host = host
	res, err := ingressClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	return res.StatusCode, string(b)
}

func (p *ingressProc) waitStatus(t *testing.T, host string, status int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		code, body := p.get(host)
		if code == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s through the ingress: %d %q after %s, want %d", host, code, body, timeout, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// requestLoop requests host through the ingress until stop is closed and
// returns the status codes in order, runs of equal codes folded ("200×31").
func (p *ingressProc) requestLoop(host string, stop <-chan struct{}) <-chan []string {
	out := make(chan []string, 1)
	go func() {
		var runs []string
		last, n := -1, 0
		flush := func() {
			if n > 0 {
				runs = append(runs, fmt.Sprintf("%d×%d", last, n))
			}
		}
		for {
			select {
			case <-stop:
				flush()
				out <- runs
				return
			default:
			}
			code, _ := p.get(host)
			if code != last {
				flush()
				last, n = code, 0
			}
			n++
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return out
}

// onlyCodes reports whether runs consist of the given codes, in this order
// (each at least once).
func onlyCodes(runs []string, codes ...int) bool {
	if len(runs) != len(codes) {
		return false
	}
	for i, r := range runs {
		if !strings.HasPrefix(r, fmt.Sprintf("%d×", codes[i])) {
			return false
		}
	}
	return true
}

// nodeBehindProxy adds a node whose address is a toxiproxy in front of a
// real agent process.
func (w *world) nodeBehindProxy(t *testing.T, envID int64, name string) (*agent, int64, *testutil.LinkProxy) {
	t.Helper()
	agentPort := testutil.FreePort(t)
	proxy := testutil.StartLinkProxy(t, fmt.Sprintf("127.0.0.1:%d", agentPort))
	id, token := w.createNode(t, envID, name, "127.0.0.1", proxy.Port)
	a := newAgent(t, name+"-"+w.unique, agentPort, token, 0, 0)
	w.waitNode(t, id, "online")
	return a, id, proxy
}

type nodeState struct {
	Status           string     `json:"status"`
	Reason           string     `json:"status_reason"`
	Enabled          bool       `json:"enabled"`
	UnreachableSince *time.Time `json:"unreachable_since"`
}

type deploymentNode struct {
	Status               string     `json:"status"`
	NodeStatus           string     `json:"node_status"`
	NodeUnreachableSince *time.Time `json:"node_unreachable_since"`
}

// TestBlipsDeletesAndDrain: with a 60 s offline grace and a nullops-ingress
// in front, a kill -9 and restart of the agent keeps the deployment served
// (the API says since when the node is unreachable); a delete answers at
// once and withdraws the route before the containers stop (a request loop
// sees 200s, then 404s: no 502); over a half-open link a delete still
// answers at once and is carried out once the link is back, also when the
// server restarts meanwhile; a disabled node drains (stays connected, takes
// no new deployments, keeps serving, deletes work, can be removed when
// empty).
func TestBlipsDeletesAndDrain(t *testing.T) {
	t.Parallel()
	var listen string
	w := setupWith(t, func(c *config.Config) {
		c.Agents.OfflineGrace = ptypes.Duration(60 * time.Second)
	})
	listen = strings.TrimPrefix(w.srv.URL, "http://")
	parent := t
	env := idOf(t, w.admin.post("/environments", map[string]any{"name": "blips", "base_domain": "e2e.test", "default_ttl": "1h"}).want(t, 201))
	project := w.newProject(t, "blips", 0.25, "", webOnlyGraph())
	ag, nodeID, proxy := w.nodeBehindProxy(t, env, "blip-1")
	ing := startIngressFor(t, w.srv.URL, w.srv.App.Config.Ingress.Token)
	host := func(name string) string { return "web." + name + ".blips.e2e.test" }

	t.Run("agent restart keeps serving", func(t *testing.T) {
		d := create(t, w.admin, project, env, "restart", "v1.0.0")
		waitStatus(t, w.admin, d.ID, "running", 120*time.Second)
		ing.waitStatus(t, host("restart"), 200, 30*time.Second)

		stop := make(chan struct{})
		codes := ing.requestLoop(host("restart"), stop)
		ag.kill()
		n := w.waitNodeFor(t, nodeID, "offline", 30*time.Second)
		var st nodeState
		w.admin.get(fmt.Sprintf("/nodes/%d", nodeID)).want(t, 200).decode(t, &st)
		var dn deploymentNode
		w.admin.get(fmt.Sprintf("/deployments/%d", d.ID)).want(t, 200).decode(t, &dn)
		if st.UnreachableSince == nil || dn.NodeUnreachableSince == nil || dn.Status != "running" || dn.NodeStatus != "offline" {
			t.Fatalf("node unreachable (%s): node %+v, deployment %+v; want running with node_unreachable_since", n.Reason, st, dn)
		}
		ag.start()
		w.waitNodeFor(t, nodeID, "online", 60*time.Second)
		close(stop)
		runs := <-codes
		t.Logf("requests during the agent restart: %v", runs)
		if !onlyCodes(runs, 200) {
			t.Fatalf("requests during the agent restart: %v, want only 200", runs)
		}
		w.admin.get(fmt.Sprintf("/deployments/%d", d.ID)).want(t, 200).decode(t, &dn)
		if dn.NodeUnreachableSince != nil || dn.Status != "running" {
			t.Fatalf("after the restart: %+v", dn)
		}

		// Delete: answered at once; the route goes before the container.
		stop = make(chan struct{})
		codes = ing.requestLoop(host("restart"), stop)
		time.Sleep(300 * time.Millisecond) // some 200s first
		start := time.Now()
		w.admin.del(fmt.Sprintf("/deployments/%d", d.ID)).want(t, 202)
		if took := time.Since(start); took > time.Second {
			t.Errorf("DELETE took %s", took)
		}
		waitStatus(t, w.admin, d.ID, "deleted", 60*time.Second)
		waitNoObjects(t, ag.node, d.ID)
		time.Sleep(300 * time.Millisecond) // some requests after the container is gone
		close(stop)
		runs = <-codes
		t.Logf("requests during the delete: %v", runs)
		// After the route is withdrawn the host answers 410 "deleted"
		// (ingress.goneretention), never a 502.
		if !onlyCodes(runs, 200, 410) {
			t.Fatalf("requests during the delete: %v, want 200s then 410s", runs)
		}
	})

	t.Run("half-open link and server restart", func(t *testing.T) {
		d := create(t, w.admin, project, env, "halfopen", "v1.0.0")
		waitStatus(t, w.admin, d.ID, "running", 120*time.Second)
		proxy.Cut(t)
		start := time.Now()
		var got restapi.Deployment
		w.admin.del(fmt.Sprintf("/deployments/%d", d.ID)).want(t, 202).decode(t, &got)
		if took := time.Since(start); took > time.Second {
			t.Errorf("DELETE over a half-open link took %s", took)
		}
		if got.Status != "deleting" {
			t.Fatalf("after DELETE: %+v", got)
		}
		start = time.Now()
		w.admin.post(fmt.Sprintf("/deployments/%d/extend", d.ID), nil)
		if took := time.Since(start); took > time.Second {
			t.Errorf("extend over a half-open link took %s", took)
		}
		w.waitNodeFor(t, nodeID, "offline", 30*time.Second)
		if objs := dockerObjects(t, ag.node, d.ID); len(objs) == 0 {
			t.Fatal("the containers went away although the agent was cut off")
		}

		// The server restarts while the delete waits; then the link is back.
		w.srv.stop(t)
		proxy.Restore(t)
		w.srv = startServer(parent, func(c *config.Config) {
			c.Listen = listen
			c.Database.URL = w.srv.App.Config.Database.URL
			c.Agents.OfflineGrace = ptypes.Duration(60 * time.Second)
		})
		w.waitNodeFor(t, nodeID, "online", 60*time.Second)
		waitStatus(t, w.admin, d.ID, "deleted", 60*time.Second)
		waitNoObjects(t, ag.node, d.ID)
	})

	t.Run("disable drains", func(t *testing.T) {
		d := create(t, w.admin, project, env, "drain", "v1.0.0")
		waitStatus(t, w.admin, d.ID, "running", 120*time.Second)
		ing.waitStatus(t, host("drain"), 200, 30*time.Second)
		w.admin.post(fmt.Sprintf("/nodes/%d/disable", nodeID), nil).want(t, 200)
		var st nodeState
		w.admin.get(fmt.Sprintf("/nodes/%d", nodeID)).want(t, 200).decode(t, &st)
		if st.Enabled || st.Status != "online" {
			t.Fatalf("disabled node: %+v, want draining and online", st)
		}
		if got := getDeployment(t, w.admin, d.ID); got.Status != "running" {
			t.Fatalf("deployment on a draining node: %s (%s)", got.Status, got.Reason)
		}
		if code, body := ing.get(host("drain")); code != 200 {
			t.Fatalf("deployment on a draining node through the ingress: %d %s", code, body)
		}
		r := w.admin.post("/deployments", map[string]any{"project_id": project, "environment_id": env, "name": "nope", "tags": map[string]string{"e2e-web": "v1.0.0"}})
		if r.Status != 409 {
			t.Fatalf("create on a draining node's environment: %d %s, want 409", r.Status, r.Body)
		}
		w.admin.del(fmt.Sprintf("/nodes/%d", nodeID)).want(t, 409)
		w.admin.del(fmt.Sprintf("/deployments/%d", d.ID)).want(t, 202)
		waitStatus(t, w.admin, d.ID, "deleted", 60*time.Second)
		waitNoObjects(t, ag.node, d.ID)
		ing.waitStatus(t, host("drain"), 410, 30*time.Second) // deleted, within the retention
		w.admin.del(fmt.Sprintf("/nodes/%d", nodeID)).want(t, 204)
	})
}
