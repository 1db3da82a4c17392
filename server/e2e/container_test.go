package e2e

// End-to-end tests with nullops-agent run the way the product documents it:
// as a container of the nullops/agent image (FROM scratch, built here from
// Dockerfile.agent, nothing pulled), with the Docker socket mounted and its
// data dir on a volume. The server runs in this process on the host and
// dials the agent containers.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nullops/nullops/ingress/dynconfig"
	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/restapi"
)

// buildAgentImage builds the agent image from Dockerfile.agent and a static
// bin of cmd/nullops-agent (what `make build && scripts/images.sh` do) under
// a tag of this test only, removed when the test ends.
func buildAgentImage(t *testing.T, unique string) string {
	t.Helper()
	root := testutil.RepoRoot(t)
	ctx := t.TempDir()
	// The agent binary the process agents run (built once per test
	// process, static as `make build` builds it).
	bin := testutil.GoBinary(t, "./cmd/nullops-agent")
	if err := os.Link(bin, filepath.Join(ctx, "nullops-agent")); err != nil {
		b, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ctx, "nullops-agent"), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dockerfile, err := os.ReadFile(filepath.Join(root, "Dockerfile.agent"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), dockerfile, 0o644); err != nil {
		t.Fatal(err)
	}
	// The image carries the host's CA bundle (scripts/images.sh); the test
	// registry is plain HTTP, so an empty bundle does when it is missing.
	ca, _ := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err := os.WriteFile(filepath.Join(ctx, "ca-certificates.crt"), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	ref := "nullops-e2e/agent:" + unique
	testutil.Docker(t, "build", "-q", "-t", ref, ctx)
	t.Cleanup(func() { _, _ = testutil.DockerErr("rmi", "-f", ref) })
	return ref
}

// agentCtr is one agent container.
type agentCtr struct {
	name   string // container name
	node   string // NULLOPS_NODENAME: the nullops.node label of its objects
	volume string // named volume mounted at /data
}

// runAgentContainer starts an agent container with the documented line
//
//	docker run -d [-p <port>:5000] -e AGENT_TOKEN=… -e NULLOPS_NODENAME=… \
//	  -v /var/run/docker.sock:/var/run/docker.sock -v <volume>:/data nullops/agent
//
// plus the docker options in opts and test switches after the image. The
// container, its volume and every Docker object of its node are removed
// when the test ends.
func runAgentContainer(t *testing.T, image, name, token string, opts []string) *agentCtr {
	t.Helper()
	a := &agentCtr{name: "nullops-e2e-agent-" + name, node: name, volume: "nullops-e2e-agent-data-" + name}
	args := []string{"run", "-d", "--name", a.name}
	args = append(args, opts...)
	args = append(args,
		"-e", "AGENT_TOKEN="+token,
		"-e", "NULLOPS_NODENAME="+a.node,
		"-v", "/var/run/docker.sock:/var/run/docker.sock",
		"-v", a.volume+":/data",
		image,
		// Test switches: fast metrics, and placement by reservations only
		// (the shared machine's load must not decide where things go).
		"--metricsinterval=1s", "--debug.zerousage=true", "--capacity.cpus=2", "--capacity.memorymb=2048",
	)
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := exec.Command("docker", "logs", "--tail", "60", a.name).CombinedOutput()
			t.Logf("agent container %s log (last 60 lines):\n%s", a.name, logs)
		}
		_, _ = testutil.DockerErr("rm", "-f", a.name)
		testutil.RemoveLabelled("nullops.node=" + a.node)
		_, _ = testutil.DockerErr("volume", "rm", "-f", a.volume)
	})
	testutil.Docker(t, args...)
	return a
}

// nodeView is what the tests read of GET /nodes/:id.
type nodeView struct {
	Status         string `json:"status"`
	Reason         string `json:"status_reason"`
	SeenThumbprint string `json:"seen_thumbprint"`
	AgentInstance  string `json:"agent_instance"`
	Connected      bool   `json:"connected"`
}

func (w *world) getNode(t *testing.T, id int64) nodeView {
	t.Helper()
	var n nodeView
	w.admin.get(fmt.Sprintf("/nodes/%d", id)).want(t, 200).decode(t, &n)
	return n
}

// waitNodeFor is waitNode with a chosen timeout (containers start slower
// than processes, and a network cut is noticed by the liveness deadline).
func (w *world) waitNodeFor(t *testing.T, id int64, want string, timeout time.Duration) nodeView {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n := w.getNode(t, id)
		if n.Status == want {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d is %s (%s) after %s, want %s", id, n.Status, n.Reason, timeout, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// createNode adds a node through the API and returns its id and token.
func (w *world) createNode(t *testing.T, envID int64, name, host string, port int) (int64, string) {
	t.Helper()
	var out struct {
		Node struct {
			ID int64 `json:"id"`
		} `json:"node"`
		Token string `json:"token"`
	}
	w.admin.post(fmt.Sprintf("/environments/%d/nodes", envID), map[string]any{"name": name, "host": host, "port": port}).
		want(t, 201).decode(t, &out)
	if out.Node.ID == 0 || out.Token == "" {
		t.Fatalf("node creation returned no id or token")
	}
	return out.Node.ID, out.Token
}

// waitHealthy waits until the agent reports every service of a deployment
// healthy (its HTTP health check answered).
func waitHealthy(t *testing.T, c *client, id int64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		d := getDeployment(t, c, id)
		ok := len(d.Services) > 0
		for _, s := range d.Services {
			ok = ok && s.Health == "healthy"
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("services of deployment %s not healthy after %s: %+v", d.Name, timeout, d.Services)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// fetchBody GETs url and returns status and body.
func fetchBody(hc *http.Client, url string) (int, string, error) {
	resp, err := hc.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestAgentContainerRestartKeepsDeployment: an agent container is
// restarted (docker restart) under a running deployment. The node goes
// offline and comes back with the same certificate (its data volume kept
// it) and the same instance; the deployment is running again on the very
// same service container, which answered on its published port the whole
// time. Deleting the deployment leaves nothing in Docker.
func TestAgentContainerRestartKeepsDeployment(t *testing.T) {
	t.Parallel()
	w := setup(t)
	image := buildAgentImage(t, w.unique)
	// An environment of its own: only the container node can take the
	// deployment (setup's node-1 is a host process in "qa").
	env := idOf(t, w.admin.post("/environments", map[string]any{"name": "boxed", "base_domain": "e2e.test"}).want(t, 201))

	port := testutil.FreePort(t)
	nodeID, token := w.createNode(t, env, "box-1", "127.0.0.1", port)
	ag := runAgentContainer(t, image, "box-1-"+w.unique, token, []string{"-p", fmt.Sprintf("127.0.0.1:%d:5000", port)})
	before := w.waitNodeFor(t, nodeID, "online", 60*time.Second)
	if before.SeenThumbprint == "" || before.AgentInstance == "" {
		t.Fatalf("online node without pinned thumbprint or instance: %+v", before)
	}

	d := create(t, w.admin, w.project, env, "kept", "v1.0.0")
	d = waitStatus(t, w.admin, d.ID, "running", 120*time.Second)
	if d.Node != "box-1" || len(d.Services) != 1 || d.Services[0].HostPort == 0 {
		t.Fatalf("running deployment %+v", d)
	}
	ids := containerIDs(t, ag.node, d.ID, "web")
	if len(ids) != 1 {
		t.Fatalf("containers of web: %v", ids)
	}
	waitHealthy(t, w.admin, d.ID, 30*time.Second)
	startedAt := testutil.Docker(t, "inspect", "-f", "{{.State.StartedAt}}", ids[0])
	url := fmt.Sprintf("http://127.0.0.1:%d/", d.Services[0].HostPort)
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	if code, body, err := fetchBody(hc, url); err != nil || code != 200 || !strings.Contains(body, "hello from") {
		t.Fatalf("service answered %d %q %v", code, body, err)
	}

	// Live events from now on: the offline → running round trip of the
	// deployment.
	sse, stopSSE := context.WithCancel(context.Background())
	defer stopSSE()
	events := readSSE(w.admin.stream(sse, "/events", "").Body)
	if ev := <-events; ev.Event != "hello" {
		t.Fatalf("first event of /events is %q", ev.Event)
	}

	// Ask the service every 100ms (a new connection each time) from now
	// until the agent is back and the deployment running again.
	var probes, failures atomic.Int64
	var failMu sync.Mutex
	var failLog []string
	stopProbe := make(chan struct{})
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopProbe:
				return
			case <-tick.C:
			}
			probes.Add(1)
			code, body, err := fetchBody(hc, url)
			if err != nil || code != 200 || !strings.Contains(body, "hello from") {
				failures.Add(1)
				failMu.Lock()
				failLog = append(failLog, fmt.Sprintf("%s: %d %q %v", time.Now().Format("15:04:05.000"), code, body, err))
				failMu.Unlock()
			}
		}
	}()
	stopProbing := sync.OnceFunc(func() { close(stopProbe); <-probeDone })
	defer stopProbing()
	restartStart := time.Now()
	testutil.Docker(t, "restart", "-t", "20", ag.name)
	t.Logf("docker restart took %s", time.Since(restartStart).Round(time.Millisecond))

	// The deployment went offline (its node lost the agent) and is running
	// again once the node is back and synced.
	sawOffline := false
	deadline := time.After(90 * time.Second)
	for done := false; !done; {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("the event stream ended")
			}
			if ev.Event != "deployment.status" {
				continue
			}
			var e struct {
				DeploymentID int64  `json:"deployment_id"`
				Status       string `json:"status"`
				Reason       string `json:"reason"`
			}
			_ = json.Unmarshal([]byte(ev.Data), &e)
			if e.DeploymentID != d.ID {
				continue
			}
			t.Logf("%s after the restart began: deployment %s (%s)", time.Since(restartStart).Round(time.Millisecond), e.Status, e.Reason)
			switch {
			case e.Status == "offline":
				sawOffline = true
			case e.Status == "running" && sawOffline:
				done = true
			case e.Status != "running":
				t.Fatalf("deployment went %s (%s) during the agent restart", e.Status, e.Reason)
			}
		case <-deadline:
			t.Fatalf("no offline → running round trip of the deployment within 90s of the restart (offline seen: %v)", sawOffline)
		}
	}
	after := w.waitNodeFor(t, nodeID, "online", 60*time.Second)
	if after.SeenThumbprint != before.SeenThumbprint {
		t.Fatalf("thumbprint changed across the restart: %s → %s", before.SeenThumbprint, after.SeenThumbprint)
	}
	if after.AgentInstance != before.AgentInstance {
		t.Fatalf("agent instance changed across the restart (data volume not kept?): %s → %s", before.AgentInstance, after.AgentInstance)
	}
	again := waitStatus(t, w.admin, d.ID, "running", 30*time.Second)
	if again.Services[0].HostPort != d.Services[0].HostPort {
		t.Fatalf("host port changed: %d → %d", d.Services[0].HostPort, again.Services[0].HostPort)
	}
	// The restarted agent probes the service again: healthy needs HTTP
	// from the agent container into the deployment network.
	waitHealthy(t, w.admin, d.ID, 30*time.Second)
	// Give a reconciliation that would wrongly replace the container the
	// time to show, then check it is the same one, never restarted.
	time.Sleep(2 * time.Second)
	stopProbing()
	if got := containerIDs(t, ag.node, d.ID, "web"); len(got) != 1 || got[0] != ids[0] {
		t.Fatalf("containers of web after the agent restart: %v, want the same %v", got, ids)
	}
	if s := testutil.Docker(t, "inspect", "-f", "{{.State.Running}} {{.State.StartedAt}}", ids[0]); s != "true "+startedAt {
		t.Fatalf("service container state %q, want running since %s", s, startedAt)
	}
	t.Logf("service probed %d times during the restart, %d failures", probes.Load(), failures.Load())
	if failures.Load() != 0 {
		t.Fatalf("the service failed %d of %d probes during the agent restart:\n%s", failures.Load(), probes.Load(), strings.Join(failLog, "\n"))
	}
	if probes.Load() < 10 {
		t.Fatalf("only %d probes during the restart", probes.Load())
	}

	w.admin.del(fmt.Sprintf("/deployments/%d", d.ID)).want(t, 202)
	waitStatus(t, w.admin, d.ID, "deleted", 60*time.Second)
	waitNoObjects(t, ag.node, d.ID)
	testutil.Docker(t, "rm", "-f", ag.name)
}

// createNetwork creates a user-defined bridge network with a random /24 of
// 10.100.0.0–10.199.255.0 (fixed, so agents keep their addresses across a
// disconnect) and returns the first three octets ("10.a.b."). It is removed
// when the test ends (after the containers on it: cleanups run in reverse).
func createNetwork(t *testing.T, name string) string {
	t.Helper()
	for attempt := 0; attempt < 20; attempt++ {
		prefix := fmt.Sprintf("10.%d.%d.", 100+rand.IntN(100), rand.IntN(256))
		_, err := testutil.DockerErr("network", "create", "--driver", "bridge", "--subnet", prefix+"0/24", "--gateway", prefix+"1", name)
		if err == nil {
			t.Cleanup(func() { _, _ = testutil.DockerErr("network", "rm", name) })
			return prefix
		}
		if !strings.Contains(err.Error(), "overlap") {
			t.Fatalf("docker network create %s: %v", name, err)
		}
	}
	t.Fatalf("docker network create %s: every subnet tried overlapped", name)
	return ""
}

// routeTable reads the route table the server publishes for the ingress
// (Traefik dynamic configuration, authenticated with the ingress token).
func (w *world) routeTable(t *testing.T) *dynconfig.Configuration {
	t.Helper()
	req, _ := http.NewRequest("GET", w.srv.URL+"/api/v1/ingress/traefik", nil)
	req.Header.Set("Authorization", "Bearer "+w.srv.App.Config.Ingress.Token)
	resp, err := w.admin.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /ingress/traefik: %d %s", resp.StatusCode, b)
	}
	var cfg dynconfig.Configuration
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("route table %s: %v", b, err)
	}
	return &cfg
}

// routeOf says where the route of a deployment's service leads: the server
// URL of its backend, the sentinel service name (dynconfig.ServiceOffline,
// dynconfig.ServiceDeploying), or "" when there is no route.
func routeOf(cfg *dynconfig.Configuration, deploymentID int64, service string) string {
	if cfg.HTTP == nil {
		return ""
	}
	name := dynconfig.RouterName(deploymentID, service)
	r := cfg.HTTP.Routers[name]
	if r == nil {
		return ""
	}
	if r.Service != name {
		return r.Service
	}
	s := cfg.HTTP.Services[name]
	if s == nil || s.LoadBalancer == nil || len(s.LoadBalancer.Servers) != 1 {
		return "?"
	}
	return s.LoadBalancer.Servers[0].URL
}

// waitRoutes polls the published route table until every deployment's web
// route leads where want says.
func (w *world) waitRoutes(t *testing.T, want map[int64]string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		cfg := w.routeTable(t)
		var wrong []string
		for id, to := range want {
			if got := routeOf(cfg, id, "web"); got != to {
				wrong = append(wrong, fmt.Sprintf("deployment %d → %q, want %q", id, got, to))
			}
		}
		if len(wrong) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("route table after %s:\n%s", timeout, strings.Join(wrong, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestMultiNodeSpreadDisconnectReconnect: two agent containers on a
// user-defined network, each a node of one environment that the server (on
// the host) dials at the container's address. Deployments spread over both
// nodes. One agent is cut off the network (docker network disconnect): its
// node goes offline, its deployments offline and their hosts answer the
// offline page in the published route table, while the other node's routes
// stay. Reconnected (same address): online again, its deployments running
// and routed again, on the same containers — exactly one per service.
//
// All agents share this machine's single Docker daemon, so a service's
// published port is on the host, not on its agent container's address: the
// route URLs http://<agent address>:<port> would not proxy in this
// simulation (on real nodes they do). The test therefore checks the route
// table's contents, not traffic through an ingress.
func TestMultiNodeSpreadDisconnectReconnect(t *testing.T) {
	t.Parallel()
	w := setup(t)
	image := buildAgentImage(t, w.unique)
	env := idOf(t, w.admin.post("/environments", map[string]any{"name": "spread", "base_domain": "e2e.test"}).want(t, 201))
	project := w.newProject(t, "spread", 0.25, "", webOnlyGraph())

	netName := "nullops-e2e-net-" + w.unique
	prefix := createNetwork(t, netName)

	type node struct {
		name string
		id   int64
		ip   string
		ag   *agentCtr
	}
	nodes := make([]*node, 2)
	for i := range nodes {
		n := &node{name: fmt.Sprintf("spread-%d", i+1), ip: fmt.Sprintf("%s%d", prefix, 10+i)}
		var token string
		n.id, token = w.createNode(t, env, n.name, n.ip, 5000)
		n.ag = runAgentContainer(t, image, n.name+"-"+w.unique, token, []string{"--network", netName, "--ip", n.ip})
		nodes[i] = n
	}
	byName := map[string]*node{}
	for _, n := range nodes {
		w.waitNodeFor(t, n.id, "online", 60*time.Second)
		byName[n.name] = n
	}

	// Four deployments, one after the other: placement by headroom puts
	// them on alternate nodes (2 CPUs each, 0.25 per deployment).
	var deps []restapi.Deployment
	for i := 0; i < 4; i++ {
		deps = append(deps, create(t, w.admin, project, env, fmt.Sprintf("s-%d", i), "v1.0.0"))
	}
	perNode := map[string]int{}
	for i, d := range deps {
		deps[i] = waitStatus(t, w.admin, d.ID, "running", 120*time.Second)
		if byName[deps[i].Node] == nil || len(deps[i].Services) != 1 || deps[i].Services[0].HostPort == 0 {
			t.Fatalf("running deployment %+v", deps[i])
		}
		perNode[deps[i].Node]++
	}
	t.Logf("placement: %v", perNode)
	for _, n := range nodes {
		if perNode[n.name] == 0 {
			t.Fatalf("placement %v left node %s empty", perNode, n.name)
		}
	}
	routed := func(d restapi.Deployment) string {
		return fmt.Sprintf("http://%s:%d", byName[d.Node].ip, d.Services[0].HostPort)
	}
	want := map[int64]string{}
	containers := map[int64]string{}
	for _, d := range deps {
		want[d.ID] = routed(d)
		ids := containerIDs(t, byName[d.Node].ag.node, d.ID, "web")
		if len(ids) != 1 {
			t.Fatalf("containers of deployment %d: %v", d.ID, ids)
		}
		containers[d.ID] = ids[0]
	}
	w.waitRoutes(t, want, 20*time.Second)

	// Cut node 1 off: only the liveness deadline can notice (nothing closes
	// the connection).
	cutNode := nodes[0]
	cutAt := time.Now()
	testutil.Docker(t, "network", "disconnect", netName, cutNode.ag.name)
	n := w.waitNodeFor(t, cutNode.id, "offline", 60*time.Second)
	t.Logf("node %s offline %s after the disconnect: %s", cutNode.name, time.Since(cutAt).Round(time.Millisecond), n.Reason)
	for _, d := range deps {
		if d.Node == cutNode.name {
			off := waitStatus(t, w.admin, d.ID, "offline", 30*time.Second)
			if !strings.Contains(off.Reason, "offline") {
				t.Errorf("offline deployment %s says %q", off.Name, off.Reason)
			}
			want[d.ID] = dynconfig.ServiceOffline
		}
	}
	w.waitRoutes(t, want, 20*time.Second)
	// The other node's deployments never left running.
	for _, d := range deps {
		if d.Node != cutNode.name {
			if s := getDeployment(t, w.admin, d.ID).Status; s != "running" {
				t.Fatalf("deployment %s on the connected node is %s", d.Name, s)
			}
		}
	}
	// It stays offline while cut off (redials fail).
	time.Sleep(3 * time.Second)
	if n := w.getNode(t, cutNode.id); n.Status != "offline" {
		t.Fatalf("node %s is %s while disconnected", cutNode.name, n.Status)
	}

	// Reconnect with the same address: online, running, routed again.
	backAt := time.Now()
	testutil.Docker(t, "network", "connect", "--ip", cutNode.ip, netName, cutNode.ag.name)
	w.waitNodeFor(t, cutNode.id, "online", 60*time.Second)
	t.Logf("node %s online %s after the reconnect", cutNode.name, time.Since(backAt).Round(time.Millisecond))
	for _, d := range deps {
		if d.Node == cutNode.name {
			again := waitStatus(t, w.admin, d.ID, "running", 30*time.Second)
			if again.Services[0].HostPort != d.Services[0].HostPort {
				t.Fatalf("deployment %s: host port %d → %d", d.Name, d.Services[0].HostPort, again.Services[0].HostPort)
			}
			want[d.ID] = routed(d)
		}
	}
	w.waitRoutes(t, want, 20*time.Second)

	// No duplicates anywhere: exactly one container per deployment's
	// service over all nodes, the very one it had before the cut.
	time.Sleep(2 * time.Second) // let a wrong reconciliation show
	for _, d := range deps {
		var all []string
		for _, n := range nodes {
			all = append(all, containerIDs(t, n.ag.node, d.ID, "web")...)
		}
		if len(all) != 1 || all[0] != containers[d.ID] {
			t.Fatalf("containers of deployment %s over all nodes: %v, want only %s", d.Name, all, containers[d.ID])
		}
	}

	for _, d := range deps {
		w.admin.del(fmt.Sprintf("/deployments/%d", d.ID)).want(t, 202)
	}
	for _, d := range deps {
		waitStatus(t, w.admin, d.ID, "deleted", 60*time.Second)
		waitNoObjects(t, byName[d.Node].ag.node, d.ID)
	}
	for _, n := range nodes {
		testutil.Docker(t, "rm", "-f", n.ag.name)
	}
}
