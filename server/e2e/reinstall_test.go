package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/restapi"
)

// uidObjects lists every container, network and volume labelled with a
// node uid as "kind name node=<nullops.node>" (running or not).
func uidObjects(t *testing.T, uid string) []string {
	t.Helper()
	f := []string{"--filter", "label=nullops.node_uid=" + uid}
	var out []string
	for _, q := range [][]string{
		{"ps", "-a", "--format", `container {{.Names}} node={{.Label "nullops.node"}}`},
		{"network", "ls", "--format", `network {{.Name}} node={{.Label "nullops.node"}}`},
		{"volume", "ls", "--format", `volume {{.Name}} node={{.Label "nullops.node"}}`},
	} {
		args := append(append(append([]string{}, q[:len(q)-2]...), f...), q[len(q)-2:]...)
		for _, l := range strings.Split(testutil.Docker(t, args...), "\n") {
			if strings.TrimSpace(l) != "" {
				out = append(out, l)
			}
		}
	}
	sort.Strings(out)
	return out
}

// startBareAgent runs the agent container as docker-compose.yml does: no
// node name, so its objects are labelled with its data dir's instance id.
func startBareAgent(t *testing.T, image, name, volume, token string, port int) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := testutil.DockerErr("logs", "--tail", "60", name)
			t.Logf("agent container %s log (last 60 lines):\n%s", name, logs)
		}
		_, _ = testutil.DockerErr("rm", "-f", name)
		_, _ = testutil.DockerErr("volume", "rm", "-f", volume)
	})
	testutil.Docker(t, "run", "-d", "--name", name, "-p", fmt.Sprintf("127.0.0.1:%d:5000", port),
		"-e", "AGENT_TOKEN="+token, "-v", "/var/run/docker.sock:/var/run/docker.sock", "-v", volume+":/data", image,
		"--metricsinterval=1s", "--debug.zerousage=true", "--capacity.cpus=2", "--capacity.memorymb=2048")
}

// TestAgentDataLossReplacesDeployments: a node's agent (a container without
// a node name, like docker-compose's) runs three deployments; then the agent
// container and its data volume are removed — the deployments' containers
// keep running, labelled with the lost instance. Deleting the node is
// refused meanwhile (it has deployments), and the third deployment is
// deleted while the node is offline. A new agent is started with a new
// token and a new volume, its new certificate approved: the two remaining
// deployments run again, once each (one web container and one network per
// deployment, all the new agent's), answering on their new ports, the third
// ends deleted, and nothing of the old agent is left in Docker. Once the
// deployments are deleted, so can the node be.
func TestAgentDataLossReplacesDeployments(t *testing.T) {
	t.Parallel()
	w := setup(t)
	image := buildAgentImage(t, w.unique)
	env := idOf(t, w.admin.post("/environments", map[string]any{"name": "reinstall", "base_domain": "e2e.test"}).want(t, 201))
	port := testutil.FreePort(t)
	nodeID, token := w.createNode(t, env, "box", "127.0.0.1", port)
	var node struct {
		UID string `json:"uid"`
	}
	w.admin.get(fmt.Sprintf("/nodes/%d", nodeID)).want(t, 200).decode(t, &node)
	if node.UID == "" {
		t.Fatal("node has no uid")
	}
	t.Cleanup(func() { testutil.RemoveLabelled("nullops.node_uid=" + node.UID) })

	startBareAgent(t, image, "nullops-e2e-reinstall-a-"+w.unique, "nullops-e2e-reinstall-a-"+w.unique, token, port)
	before := w.waitNodeFor(t, nodeID, "online", 60*time.Second)
	var deps []restapi.Deployment
	for _, name := range []string{"one", "two", "three"} {
		deps = append(deps, create(t, w.admin, w.project, env, name, "v1.0.0"))
	}
	for i, d := range deps {
		deps[i] = waitStatus(t, w.admin, d.ID, "running", 120*time.Second)
	}
	old := uidObjects(t, node.UID)
	if len(old) != 6 { // per deployment: web container, network
		t.Fatalf("objects of the first agent: %v", old)
	}
	for _, o := range old {
		if !strings.HasSuffix(o, "node="+before.AgentInstance) {
			t.Fatalf("object %q is not labelled with the agent instance %s", o, before.AgentInstance)
		}
	}

	// The agent and its data dir are gone; the deployments' containers run on.
	testutil.Docker(t, "rm", "-f", "nullops-e2e-reinstall-a-"+w.unique)
	testutil.Docker(t, "volume", "rm", "nullops-e2e-reinstall-a-"+w.unique)
	running := testutil.Docker(t, "ps", "-q", "--filter", "label=nullops.node_uid="+node.UID)
	if len(strings.Fields(running)) != 3 {
		t.Fatalf("running containers of the node after the agent was removed: %q", running)
	}
	w.waitNodeFor(t, nodeID, "offline", 90*time.Second)
	// A node with deployments is not deleted (docs/install.md, Uninstalling).
	if r := w.admin.del(fmt.Sprintf("/nodes/%d", nodeID)); r.Status != 409 || !strings.Contains(r.errorMessage(), "node_in_use") {
		t.Fatalf("deleting the node with live deployments: %d %s", r.Status, r.Body)
	}
	// The control plane no longer wants the third deployment: its delete
	// waits for the node.
	gone := deps[2]
	deps = deps[:2]
	w.admin.del(fmt.Sprintf("/deployments/%d", gone.ID)).want(t, 202)

	// A new agent: new token, new volume, new certificate to approve.
	var rotated struct {
		Token string `json:"token"`
	}
	w.admin.post(fmt.Sprintf("/nodes/%d/rotate-token", nodeID), nil).want(t, 200).decode(t, &rotated)
	startBareAgent(t, image, "nullops-e2e-reinstall-b-"+w.unique, "nullops-e2e-reinstall-b-"+w.unique, rotated.Token, port)
	untrusted := w.waitNodeFor(t, nodeID, "untrusted", 90*time.Second)
	if untrusted.SeenThumbprint == "" || untrusted.SeenThumbprint == before.SeenThumbprint {
		t.Fatalf("untrusted node shows thumbprint %q (before: %q)", untrusted.SeenThumbprint, before.SeenThumbprint)
	}
	w.admin.post(fmt.Sprintf("/nodes/%d/approve-thumbprint", nodeID), map[string]any{"thumbprint": untrusted.SeenThumbprint}).want(t, 200)
	after := w.waitNodeFor(t, nodeID, "online", 90*time.Second)
	if after.AgentInstance == before.AgentInstance || after.AgentInstance == "" {
		t.Fatalf("agent instance %q after the reinstall (before %q)", after.AgentInstance, before.AgentInstance)
	}

	var want []string
	for _, d := range deps {
		want = append(want,
			fmt.Sprintf("container nullops-%s-d%d-web node=%s", after.AgentInstance, d.ID, after.AgentInstance),
			fmt.Sprintf("network nullops-%s-d%d node=%s", after.AgentInstance, d.ID, after.AgentInstance))
	}
	sort.Strings(want)
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		got := uidObjects(t, node.UID)
		allOK := slices.Equal(got, want)
		for i, d := range deps {
			if !allOK {
				break
			}
			cur := getDeployment(t, w.admin, d.ID)
			if cur.Status != "running" || len(cur.Services) != 1 || cur.Services[0].HostPort == 0 {
				allOK = false
				break
			}
			code, body, err := fetchBody(hc, fmt.Sprintf("http://127.0.0.1:%d/", cur.Services[0].HostPort))
			allOK = err == nil && code == 200 && strings.Contains(body, "hello from")
			deps[i] = cur
		}
		if allOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("3 minutes after the new agent came online:\nobjects %v\nwant    %v\ndeployments %+v", got, want, deps)
		}
		time.Sleep(500 * time.Millisecond)
	}
	waitStatus(t, w.admin, gone.ID, "deleted", 60*time.Second)
	// Exactly once: a reconnect (another sync) changes nothing.
	testutil.Docker(t, "restart", "-t", "10", "nullops-e2e-reinstall-b-"+w.unique)
	w.waitNodeFor(t, nodeID, "online", 90*time.Second)
	for _, d := range deps {
		waitStatus(t, w.admin, d.ID, "running", 60*time.Second)
	}
	if got := uidObjects(t, node.UID); !slices.Equal(got, want) {
		t.Fatalf("objects after a reconnect: %v, want %v", got, want)
	}

	for _, d := range deps {
		w.admin.del(fmt.Sprintf("/deployments/%d", d.ID)).want(t, 202)
	}
	for _, d := range deps {
		waitStatus(t, w.admin, d.ID, "deleted", 60*time.Second)
	}
	if got := uidObjects(t, node.UID); len(got) != 0 {
		t.Fatalf("objects left after deleting the deployments: %v", got)
	}
	w.admin.del(fmt.Sprintf("/nodes/%d", nodeID)).want(t, 204)
}
