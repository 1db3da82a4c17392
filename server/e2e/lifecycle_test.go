// Package e2e holds the end-to-end tests of the deployment lifecycle: a real
// server, real agent processes, a real registry and real Docker, driven
// through the HTTP API only.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/config"
)

func getDeployment(t *testing.T, c *client, id int64) restapi.Deployment {
	t.Helper()
	var d restapi.Deployment
	c.get(fmt.Sprintf("/deployments/%d", id)).want(t, 200).decode(t, &d)
	return d
}

// waitStatus polls until the deployment has status want; a deployment that
// fails while waiting for anything else stops the test with its reason.
func waitStatus(t *testing.T, c *client, id int64, want string, timeout time.Duration) restapi.Deployment {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var d restapi.Deployment
	for {
		d = getDeployment(t, c, id)
		if d.Status == want {
			return d
		}
		if d.Status == "failed" && want != "failed" {
			t.Fatalf("deployment %s failed at step %q: %s", d.Name, d.FailedStep, d.Reason)
		}
		if time.Now().After(deadline) {
			t.Fatalf("deployment %s is %s (%s) after %s, want %s", d.Name, d.Status, d.Reason, timeout, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func waitNoObjects(t *testing.T, node string, id int64) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		objs := dockerObjects(t, node, id)
		if len(objs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Docker objects of deployment %d left on %s: %v", id, node, objs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// world is the shared installation of one test run.
type world struct {
	srv     *server
	admin   *client
	regID   int64
	envID   int64
	project int64
	node    *agent
	nodeID  int64
	dev     *client // full access to the environment
	reader  *client // read access to the project
	nobody  *client // no grants
	unique  string
}

func pipelineGraph(pluginMode string) map[string]any {
	return map[string]any{
		"nodes": []map[string]any{
			{"id": "setup", "kind": "component", "plugin": "e2e-setup",
				"params": map[string]any{"mode": pluginMode, "stderr": "setup says hello", "outputs": map[string]any{"greeting": "hi"}}},
			{"id": "web", "kind": "service", "service": "e2e-web", "port": 8080, "ingress": true,
				"env": map[string]any{"MESSAGE": "${steps.setup.outputs.greeting}", "SERVICE_NAME": "web"}},
		},
		"edges": [][2]string{{"setup", "web"}},
	}
}

func webOnlyGraph() map[string]any {
	return map[string]any{
		"nodes": []map[string]any{{"id": "web", "kind": "service", "service": "e2e-web", "port": 8080, "ingress": true}},
		"edges": [][2]string{},
	}
}

// addNode adds a node through the API and starts its agent.
func (w *world) addNode(t *testing.T, envID int64, name string, cpus float64, memMB int64, opts ...agentOption) (*agent, int64) {
	t.Helper()
	port := testutil.FreePort(t)
	r := w.admin.post(fmt.Sprintf("/environments/%d/nodes", envID), map[string]any{"name": name, "host": "127.0.0.1", "port": port}).want(t, 201)
	var out struct {
		ID    int64  `json:"id"`
		Token string `json:"token"`
		Node  struct {
			ID int64 `json:"id"`
		} `json:"node"`
	}
	r.decode(t, &out)
	id := out.ID
	if id == 0 {
		id = out.Node.ID
	}
	if id == 0 || out.Token == "" {
		t.Fatalf("node creation returned no id or token: %s", r.Body)
	}
	a := newAgent(t, name+"-"+w.unique, port, out.Token, cpus, memMB, opts...)
	w.waitNode(t, id, "online")
	return a, id
}

func (w *world) waitNode(t *testing.T, id int64, want string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var n struct {
			Status string `json:"status"`
			Reason string `json:"status_reason"`
		}
		w.admin.get(fmt.Sprintf("/nodes/%d", id)).want(t, 200).decode(t, &n)
		if n.Status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d is %s (%s), want %s", id, n.Status, n.Reason, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// project creates a project with a pipeline and returns its id.
func (w *world) newProject(t *testing.T, name string, cpu float64, ttl string, graph map[string]any) int64 {
	t.Helper()
	body := map[string]any{"name": name, "cpu": cpu, "memory_mb": 128}
	if ttl != "" {
		body["ttl"] = ttl
	}
	id := idOf(t, w.admin.post("/projects", body).want(t, 201))
	w.admin.put(fmt.Sprintf("/projects/%d/pipeline", id), graph).want(t, 201)
	return id
}

// newUser creates a user in a new team holding level on a project or
// environment ("" = no grant) and logs them in.
func (w *world) newUser(t *testing.T, name, scope string, target int64, level string) *client {
	t.Helper()
	uid := idOf(t, w.admin.post("/users", map[string]any{"username": name, "password": userPass}).want(t, 201))
	if level != "" {
		team := idOf(t, w.admin.post("/teams", map[string]any{"name": name + "-team"}).want(t, 201))
		w.admin.put(fmt.Sprintf("/teams/%d/members/%d", team, uid), nil).want(t, 204)
		w.admin.put(fmt.Sprintf("/%s/%d/access/%d", scope, target, team), map[string]any{"level": level}).want(t, 200)
	}
	return login(t, w.srv.URL, name, userPass)
}

func setup(t *testing.T) *world {
	t.Helper()
	return setupWith(t)
}

// setupWith is setup with changes to the server's configuration.
func setupWith(t *testing.T, opts ...func(*config.Config)) *world {
	t.Helper()
	w := &world{unique: newUnique()}
	w.srv = startServer(t, opts...)
	w.admin = login(t, w.srv.URL, adminUser, adminPass)

	reg := testutil.StartRegistry(t, "e2e", "e2e-registry-pw")
	web := testutil.ScratchImage(t, "./scripts/images/demo-web", "nullops-e2e/demo-web:build")
	plugin := testutil.ScratchImage(t, "./scripts/images/test-plugin", "nullops-e2e/test-plugin:build")
	reg.Push(t, web, "e2e/web", "v1.0.0", "v1.1.0", "other-1")
	reg.Push(t, plugin, "e2e/plugin", "1")

	w.regID = idOf(t, w.admin.post("/registries", map[string]any{
		"name": "local", "url": "http://" + reg.Host, "username": "e2e", "password": "e2e-registry-pw", "insecure": true,
	}).want(t, 201))
	w.admin.post("/services", map[string]any{
		"name": "e2e-web", "registry_id": w.regID, "image": "e2e/web", "tag_mode": "selectable", "tag_pattern": "v*",
		"ports": []int{8080}, "health": map[string]any{"http": "/healthz"},
	}).want(t, 201)
	w.admin.post("/plugins", map[string]any{
		"name": "e2e-setup", "registry_id": w.regID, "image": "e2e/plugin", "tag": "1", "cpu": 0.1, "memory_mb": 32, "timeout": "60s",
	}).want(t, 201)
	w.envID = idOf(t, w.admin.post("/environments", map[string]any{"name": "qa", "base_domain": "e2e.test", "default_ttl": "1h"}).want(t, 201))
	w.project = w.newProject(t, "shop", 0.25, "", pipelineGraph("ok"))
	w.node, w.nodeID = w.addNode(t, w.envID, "node-1", 0, 0)

	w.dev = w.newUser(t, "dev", "environments", w.envID, "full")
	w.reader = w.newUser(t, "reader", "projects", w.project, "read")
	w.nobody = w.newUser(t, "nobody", "", 0, "")
	return w
}

// create asks for a deployment as c and returns it (202).
func create(t *testing.T, c *client, project, env int64, name, tag string) restapi.Deployment {
	t.Helper()
	var d restapi.Deployment
	c.post("/deployments", map[string]any{"project_id": project, "environment_id": env, "name": name, "tags": map[string]string{"e2e-web": tag}}).
		want(t, 202).decode(t, &d)
	return d
}

func TestDeploymentLifecycle(t *testing.T) {
	t.Parallel()
	w := setup(t)
	// The shortest TTL a project accepts is 1m: the expiring deployment is
	// created first and checked last, while the other subtests run.
	var expiring restapi.Deployment
	t.Run("ttl: create", func(t *testing.T) { expiring = w.ttlCreate(t) })
	t.Run("journey", w.journey)
	t.Run("failing pipeline, fix, retry", w.failAndRetry)
	t.Run("agent killed and back", w.agentRestart)
	t.Run("placement under concurrency", w.placement)
	t.Run("each container gets its share", w.shares)
	t.Run("a deployment keeps its definition", w.keepsDefinition)
	t.Run("ttl: cleanup", func(t *testing.T) { w.ttlCleanup(t, expiring) })
}

// journey: create with a chosen tag → running → the service answers →
// logs → live events → clone with another tag → extend → delete.
func (w *world) journey(t *testing.T) {
	dev := w.dev
	all, cancelAll := context.WithCancel(context.Background())
	defer cancelAll()
	events := readSSE(dev.stream(all, "/events", "").Body)
	if ev := <-events; ev.Event != "hello" {
		t.Fatalf("first event of /events is %q", ev.Event)
	}

	d := create(t, dev, w.project, w.envID, "pr-1", "v1.0.0")
	if d.Status != "deploying" || d.PipelineVersion != 1 || d.Tags["e2e-web"] != "v1.0.0" || d.CPU != 0.25 {
		t.Fatalf("created %+v", d)
	}
	d = waitStatus(t, dev, d.ID, "running", 90*time.Second)
	if d.Node != "node-1" || len(d.Services) != 1 || d.Services[0].HostPort == 0 || d.Services[0].Tag != "v1.0.0" {
		t.Fatalf("running deployment %+v", d)
	}
	if d.URLs["web"] != "http://web.pr-1.qa.e2e.test" {
		t.Fatalf("urls %v", d.URLs)
	}
	for _, s := range d.Steps {
		if s.Status != "succeeded" || s.StartedAt == nil || s.FinishedAt == nil {
			t.Fatalf("step %+v", s)
		}
	}
	// The exposed service answers on its published port, with the output
	// of the plugin step in its environment.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", d.Services[0].HostPort))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "hello from web") || !strings.Contains(string(body), "message: hi") {
		t.Fatalf("service answered %q", body)
	}

	// Live events: the status changes of pr-1 arrived on /events.
	sawRunning := false
	for !sawRunning {
		select {
		case ev := <-events:
			var e struct {
				DeploymentID int64  `json:"deployment_id"`
				Status       string `json:"status"`
			}
			_ = json.Unmarshal([]byte(ev.Data), &e)
			sawRunning = ev.Event == "deployment.status" && e.DeploymentID == d.ID && e.Status == "running"
		case <-time.After(10 * time.Second):
			t.Fatal("no deployment.status running event on /events")
		}
	}

	// Health and metrics of the service container (pushed by the agent).
	deadline := time.Now().Add(20 * time.Second)
	for {
		cur := getDeployment(t, dev, d.ID)
		if cur.Services[0].MemoryBytes > 0 && cur.Services[0].Health == "healthy" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no container metrics/health in the deployment: %+v", cur.Services)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Stored step logs (the plugin's stderr).
	var logs struct {
		Items []struct {
			Chunk string `json:"chunk"`
		} `json:"items"`
	}
	dev.get(fmt.Sprintf("/deployments/%d/steps/setup/logs", d.ID)).want(t, 200).decode(t, &logs)
	var all2 strings.Builder
	for _, l := range logs.Items {
		all2.WriteString(l.Chunk)
	}
	if !strings.Contains(all2.String(), "setup says hello") {
		t.Fatalf("step logs %q lack the plugin's stderr", all2.String())
	}

	// Service logs: tail, then follow (new lines arrive while following).
	r := dev.get(fmt.Sprintf("/deployments/%d/logs?service=web&tail=50", d.ID)).want(t, 200)
	if !strings.Contains(string(r.Body), "listening") {
		t.Fatalf("service logs %q", r.Body)
	}
	fctx, stopFollow := context.WithCancel(context.Background())
	fresp := dev.stream(fctx, fmt.Sprintf("/deployments/%d/logs?service=web&tail=1&follow=true", d.ID), "")
	chunks := make(chan string, 16)
	go func() {
		defer close(chunks)
		buf := make([]byte, 4096)
		for {
			n, err := fresp.Body.Read(buf)
			if n > 0 {
				chunks <- string(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case s := <-chunks:
		if !strings.Contains(s, "listening") {
			t.Fatalf("followed logs start with %q, want the last line", s)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no data on the followed log stream")
	}
	// Following: the stream stays open (a plain tail ends at once).
	select {
	case s, ok := <-chunks:
		if !ok {
			t.Fatal("the followed log stream ended by itself")
		}
		t.Logf("followed logs: %q", s)
	case <-time.After(1500 * time.Millisecond):
	}
	stopFollow()
	fresp.Body.Close()

	// Read access: sees, cannot change; no grants: sees nothing.
	var list struct {
		Items []restapi.Deployment `json:"items"`
		Total int                  `json:"total"`
	}
	w.reader.get("/deployments").want(t, 200).decode(t, &list)
	if list.Total != 1 || list.Items[0].ID != d.ID {
		t.Fatalf("reader lists %+v", list)
	}
	w.reader.get(fmt.Sprintf("/deployments/%d", d.ID)).want(t, 200)
	w.reader.get(fmt.Sprintf("/deployments/%d/logs?service=web&tail=5", d.ID)).want(t, 200)
	w.reader.del(fmt.Sprintf("/deployments/%d", d.ID)).want(t, 403)
	w.reader.post("/deployments", map[string]any{"project_id": w.project, "environment_id": w.envID, "name": "nope", "tags": map[string]string{"e2e-web": "v1.0.0"}}).want(t, 403)
	w.nobody.get("/deployments").want(t, 200).decode(t, &list)
	if list.Total != 0 || len(list.Items) != 0 {
		t.Fatalf("user without grants lists %+v", list)
	}
	w.nobody.get(fmt.Sprintf("/deployments/%d", d.ID)).want(t, 404)
	w.nobody.del(fmt.Sprintf("/deployments/%d", d.ID)).want(t, 404)

	// A tag that does not exist, or does not match the pattern, is refused.
	for _, tag := range []string{"v9.9.9", "other-1"} {
		r := dev.post("/deployments", map[string]any{"project_id": w.project, "environment_id": w.envID, "name": "bad-tag", "tags": map[string]string{"e2e-web": tag}}).want(t, 400)
		if !strings.Contains(r.errorMessage(), tag) {
			t.Fatalf("bad tag %s: %s", tag, r.Body)
		}
	}

	// Clone with another tag.
	var cl restapi.Deployment
	dev.post(fmt.Sprintf("/deployments/%d/clone", d.ID), map[string]any{"name": "pr-1-copy", "tags": map[string]string{"e2e-web": "v1.1.0"}}).
		want(t, 202).decode(t, &cl)
	if cl.ClonedFrom == nil || *cl.ClonedFrom != d.ID || cl.Tags["e2e-web"] != "v1.1.0" {
		t.Fatalf("clone %+v", cl)
	}
	cl = waitStatus(t, dev, cl.ID, "running", 90*time.Second)
	if cl.Services[0].Tag != "v1.1.0" || cl.Services[0].HostPort == d.Services[0].HostPort {
		t.Fatalf("clone services %+v", cl.Services)
	}

	// Extend moves expires_at.
	time.Sleep(1100 * time.Millisecond)
	var ext restapi.Deployment
	dev.post(fmt.Sprintf("/deployments/%d/extend", d.ID), nil).want(t, 200).decode(t, &ext)
	if !ext.ExpiresAt.After(d.ExpiresAt) {
		t.Fatalf("extend: expires_at %s not after %s", ext.ExpiresAt, d.ExpiresAt)
	}

	// Delete leaves nothing in Docker.
	for _, id := range []int64{d.ID, cl.ID} {
		var del restapi.Deployment
		dev.del(fmt.Sprintf("/deployments/%d", id)).want(t, 202).decode(t, &del)
		if del.Status != "deleting" && del.Status != "deleted" {
			t.Fatalf("after DELETE: %s", del.Status)
		}
	}
	for _, id := range []int64{d.ID, cl.ID} {
		waitStatus(t, dev, id, "deleted", 60*time.Second)
		waitNoObjects(t, w.node.node, id)
	}

	// History and audit say who did what.
	var hist struct {
		Items []struct {
			Action string          `json:"action"`
			Actor  string          `json:"actor"`
			Detail json.RawMessage `json:"detail"`
		} `json:"items"`
	}
	dev.get(fmt.Sprintf("/deployments/%d/history", d.ID)).want(t, 200).decode(t, &hist)
	var actions []string
	for _, h := range hist.Items {
		actions = append(actions, h.Actor+":"+h.Action)
	}
	if strings.Join(actions, ",") != "dev:created,dev:extended,dev:deleted,system:removed" {
		t.Fatalf("history %v", actions)
	}
	if !strings.Contains(string(hist.Items[0].Detail), `"pipeline_version":1`) || !strings.Contains(string(hist.Items[0].Detail), `"v1.0.0"`) {
		t.Fatalf("created detail %s", hist.Items[0].Detail)
	}
	var audit struct {
		Items []struct {
			Action string `json:"action"`
			Actor  string `json:"actor"`
		} `json:"items"`
	}
	w.admin.get("/audit?action=deployment.*").want(t, 200).decode(t, &audit)
	var auditActions []string
	for _, a := range audit.Items {
		auditActions = append(auditActions, a.Actor+":"+a.Action)
	}
	sort.Strings(auditActions)
	for _, want := range []string{"dev:deployment.create", "dev:deployment.clone", "dev:deployment.extend", "dev:deployment.delete"} {
		if !strings.Contains(strings.Join(auditActions, ","), want) {
			t.Fatalf("audit %v lacks %s", auditActions, want)
		}
	}
}

// failAndRetry: a failing plugin → failed with step and reason, rolled
// back; the admin fixes the pipeline; retry → running on version 2.
func (w *world) failAndRetry(t *testing.T) {
	project := w.newProject(t, "broken", 0.25, "", pipelineGraph("exit"))
	d := create(t, w.dev, project, w.envID, "broken-1", "v1.0.0")
	d = waitStatus(t, w.dev, d.ID, "failed", 90*time.Second)
	if d.FailedStep != "setup" || !strings.Contains(d.Reason, "exit") {
		t.Fatalf("failed deployment: step %q reason %q", d.FailedStep, d.Reason)
	}
	waitNoObjects(t, w.node.node, d.ID)
	w.admin.put(fmt.Sprintf("/projects/%d/pipeline", project), pipelineGraph("ok")).want(t, 201)
	var r restapi.Deployment
	w.dev.post(fmt.Sprintf("/deployments/%d/retry", d.ID), nil).want(t, 202).decode(t, &r)
	if r.PipelineVersion != 2 || r.Tags["e2e-web"] != "v1.0.0" || r.FailedStep != "" {
		t.Fatalf("retried %+v", r)
	}
	waitStatus(t, w.dev, d.ID, "running", 90*time.Second)
	w.dev.post(fmt.Sprintf("/deployments/%d/retry", d.ID), nil).want(t, 409)
	w.dev.del(fmt.Sprintf("/deployments/%d", d.ID)).want(t, 202)
	waitStatus(t, w.dev, d.ID, "deleted", 60*time.Second)
	waitNoObjects(t, w.node.node, d.ID)
}

// agentRestart: kill -9 the agent → its deployments go offline; a delete
// meanwhile is remembered; the agent comes back → running again with the
// same single container, and the remembered delete is carried out.
func (w *world) agentRestart(t *testing.T) {
	keep := create(t, w.dev, w.project, w.envID, "survivor", "v1.0.0")
	drop := create(t, w.dev, w.project, w.envID, "doomed", "v1.0.0")
	keep = waitStatus(t, w.dev, keep.ID, "running", 90*time.Second)
	waitStatus(t, w.dev, drop.ID, "running", 90*time.Second)
	before := containerIDs(t, w.node.node, keep.ID, "web")
	if len(before) != 1 {
		t.Fatalf("containers of web before: %v", before)
	}

	w.node.kill()
	w.waitNode(t, w.nodeID, "offline")
	waitStatus(t, w.dev, keep.ID, "offline", 30*time.Second)
	var del restapi.Deployment
	w.dev.del(fmt.Sprintf("/deployments/%d", drop.ID)).want(t, 202).decode(t, &del)
	if del.Status != "deleting" || !del.DeletePending || !strings.Contains(del.Reason, "offline") {
		t.Fatalf("delete while offline: %+v", del)
	}

	w.node.start()
	w.waitNode(t, w.nodeID, "online")
	after := waitStatus(t, w.dev, keep.ID, "running", 60*time.Second)
	waitStatus(t, w.dev, drop.ID, "deleted", 60*time.Second)
	waitNoObjects(t, w.node.node, drop.ID)
	if ids := containerIDs(t, w.node.node, keep.ID, "web"); len(ids) != 1 {
		t.Fatalf("containers of web after the restart: %v (before %v)", ids, before)
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", after.Services[0].HostPort))
	if err != nil {
		t.Fatalf("service after the agent restart: %v", err)
	}
	resp.Body.Close()
	w.dev.del(fmt.Sprintf("/deployments/%d", keep.ID)).want(t, 202)
	waitStatus(t, w.dev, keep.ID, "deleted", 60*time.Second)
	waitNoObjects(t, w.node.node, keep.ID)
}

// ttlCreate: a project with a 1-minute TTL (the shortest allowed) and one
// deployment of it.
func (w *world) ttlCreate(t *testing.T) restapi.Deployment {
	project := w.newProject(t, "short", 0.25, "1m", webOnlyGraph())
	d := create(t, w.dev, project, w.envID, "brief", "v1.1.0")
	if until := time.Until(d.ExpiresAt); until > 61*time.Second || until < 55*time.Second {
		t.Fatalf("expires in %s, want about 1m", until)
	}
	return d
}

// ttlCleanup: the cleanup job (every second here) deleted the expired
// deployment and its containers are gone.
func (w *world) ttlCleanup(t *testing.T, d restapi.Deployment) {
	if d.ID == 0 {
		t.Fatal("the expiring deployment was not created (see the subtest ttl: create)")
	}
	waitStatus(t, w.dev, d.ID, "deleted", time.Until(d.ExpiresAt)+60*time.Second)
	waitNoObjects(t, w.node.node, d.ID)
	var hist struct {
		Items []struct {
			Action string `json:"action"`
			Actor  string `json:"actor"`
		} `json:"items"`
	}
	w.dev.get(fmt.Sprintf("/deployments/%d/history", d.ID)).want(t, 200).decode(t, &hist)
	found := false
	for _, h := range hist.Items {
		found = found || (h.Action == "expired" && h.Actor == "system")
	}
	if !found {
		t.Fatalf("history %+v has no expiry by the system", hist.Items)
	}
}

// placement: two agents advertising 1 CPU each; 20 concurrent creates of
// 0.5-CPU deployments: exactly 4 fit (2 per node), the rest get 409 saying
// what was short.
func (w *world) placement(t *testing.T) {
	env := idOf(t, w.admin.post("/environments", map[string]any{"name": "cap", "base_domain": "e2e.test"}).want(t, 201))
	project := w.newProject(t, "sized", 0.5, "", webOnlyGraph())
	a, _ := w.addNode(t, env, "cap-a", 1, 1024)
	b, _ := w.addNode(t, env, "cap-b", 1, 1024)
	dev := w.newUser(t, "capdev", "environments", env, "full")

	const n = 20
	var wg sync.WaitGroup
	results := make([]response, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = dev.post("/deployments", map[string]any{"project_id": project, "environment_id": env,
				"name": fmt.Sprintf("c-%d", i), "tags": map[string]string{"e2e-web": "v1.0.0"}})
		}()
	}
	wg.Wait()
	var created []restapi.Deployment
	for _, r := range results {
		switch r.Status {
		case 202:
			var d restapi.Deployment
			r.decode(t, &d)
			created = append(created, d)
		case 409:
			msg := r.errorMessage()
			if !strings.HasPrefix(msg, "no_capacity: no node in environment cap has 0.5 CPUs free (best: cap-") {
				t.Fatalf("refusal says %q", msg)
			}
		default:
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
	}
	if len(created) != 4 {
		t.Fatalf("%d creates accepted, want 4 (2 per 1-CPU node)", len(created))
	}
	perNode := map[string]int{}
	for _, d := range created {
		perNode[d.Node]++
	}
	if perNode["cap-a"] != 2 || perNode["cap-b"] != 2 {
		t.Fatalf("placement %v, want 2 on each node", perNode)
	}
	for _, d := range created {
		waitStatus(t, dev, d.ID, "running", 120*time.Second)
	}
	for _, d := range created {
		dev.del(fmt.Sprintf("/deployments/%d", d.ID)).want(t, 202)
	}
	for _, d := range created {
		waitStatus(t, dev, d.ID, "deleted", 60*time.Second)
		node := a.node
		if d.Node == "cap-b" {
			node = b.node
		}
		waitNoObjects(t, node, d.ID)
	}
}
