package nullops_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
)

// TestDockerComposeUp runs docker-compose.yml the way its header tells an
// operator to, on this machine's Docker: .env with the generated values,
// `up -d db server ingress`, log in, add a registry, service, project,
// environment and node, put the node's token in .env, `up -d agent`,
// deploy, reach the deployment through the compose ingress, lose the
// agent's data (its container and volume removed, a new token, `up -d
// agent`, the new thumbprint approved: the deployment runs once, on the new
// agent's objects only), then tear down
// as documented (`stop agent`, `run --rm agent uninstall`, `down -v`) and
// check that nothing is left — no service container, no network, no volume,
// no deployment container.
//
// Nothing is pulled: the NullOps images are built FROM scratch here (under a
// tag of this test, NULLOPS_IMAGE_TAG), and postgres:16 is the stand-in
// scripts/postgres-image.sh builds from the Debian mirror (cached by recipe:
// only the first run pays for debootstrap). Host ports and the compose
// project are this test's own (SERVER_PORT, INGRESS_PORT, AGENT_PORT,
// COMPOSE_PROJECT_NAME), so it runs beside other installations.
func TestDockerComposeUp(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skips the docker-compose installation")
	}
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Fatal("docker-compose is not installed (scripts/setup.sh installs it)")
	}
	began := time.Now()
	root := testutil.RepoRoot(t)
	unique := fmt.Sprintf("%x", time.Now().UnixNano()&0xffffffff)
	project := "nullopsct" + unique

	pgStart := time.Now()
	if out, err := exec.Command("bash", filepath.Join(root, "scripts/postgres-image.sh"), "postgres:16").CombinedOutput(); err != nil {
		t.Fatalf("scripts/postgres-image.sh: %v\n%s", err, out)
	} else {
		t.Logf("postgres:16 image ready in %s: %s", time.Since(pgStart).Round(time.Second), strings.TrimSpace(string(out)))
	}
	tag := "ct-" + unique
	buildImages(t, root, tag)

	// A registry on the host: the Docker daemon pulls from 127.0.0.1 (a
	// loopback registry needs no insecure-registries entry); the server in
	// its container never asks it anything for a pinned service.
	reg := testutil.StartRegistry(t, "ct", "ct-registry-pw")
	web := testutil.ScratchImage(t, "./scripts/images/demo-web", "nullops-ct/demo-web:build")
	reg.Push(t, web, "ct/web", "v1")

	dir := t.TempDir()
	compose, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), compose, 0o644); err != nil {
		t.Fatal(err)
	}
	serverPort, ingressPort, agentPort := testutil.FreePort(t), testutil.FreePort(t), testutil.FreePort(t)
	env := append(os.Environ(), "COMPOSE_PROJECT_NAME="+project, "NULLOPS_IMAGE_TAG="+tag,
		fmt.Sprintf("SERVER_PORT=%d", serverPort), fmt.Sprintf("INGRESS_PORT=%d", ingressPort), fmt.Sprintf("AGENT_PORT=%d", agentPort))
	for _, k := range []string{"NULLOPS_SECRET_KEY", "NULLOPS_ADMIN_PASSWORD", "NULLOPS_INGRESS_TOKEN", "AGENT_TOKEN", "NULLOPS_ADMIN_USERNAME"} {
		env = append(env, k+"=") // only .env may provide them: unset them
	}
	env = withoutEmpty(env, "NULLOPS_SECRET_KEY", "NULLOPS_ADMIN_PASSWORD", "NULLOPS_INGRESS_TOKEN", "AGENT_TOKEN", "NULLOPS_ADMIN_USERNAME")
	dc := func(args ...string) (string, error) {
		cmd := exec.Command("docker-compose", args...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := dc(args...)
		if err != nil {
			t.Fatalf("docker-compose %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	var nodeUID string
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := dc("logs", "--no-color", "--tail", "40")
			t.Logf("docker-compose logs:\n%s", out)
		}
		_, _ = dc("down", "-v", "-t", "5")
		if nodeUID != "" {
			removeLabelled(t, "nullops.node_uid="+nodeUID)
		}
	})

	// The header's steps, in a shell like an operator's.
	header := `set -e
umask 077
echo "NULLOPS_SECRET_KEY=$(head -c32 /dev/urandom | base64)" >> .env
echo "NULLOPS_ADMIN_PASSWORD=choose-a-long-password" >> .env
echo "NULLOPS_INGRESS_TOKEN=$(head -c24 /dev/urandom | base64 | tr -d '/+=')" >> .env
echo "AGENT_TOKEN=none-yet" >> .env
docker-compose up -d db server ingress
`
	sh := exec.Command("bash", "-c", header)
	sh.Dir, sh.Env = dir, env
	if out, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("header steps: %v\n%s", err, out)
	}
	t.Logf("db, server and ingress up (healthy server) after %s", time.Since(began).Round(time.Second))
	// A new shell: .env is all docker-compose needs.
	if out := must("ps"); !strings.Contains(out, project+"_server_1") {
		t.Fatalf("docker-compose ps in a new shell:\n%s", out)
	}

	base := fmt.Sprintf("http://127.0.0.1:%d", serverPort)
	api := newAPIClient(t, base, "admin", "choose-a-long-password")
	regID := api.id("POST", "/registries", map[string]any{"name": "local", "url": "http://" + reg.Host, "username": "ct", "password": "ct-registry-pw", "insecure": true})
	api.id("POST", "/services", map[string]any{"name": "web", "registry_id": regID, "image": "ct/web", "tag_mode": "pinned", "tag": "v1",
		"ports": []int{8080}, "health": map[string]any{"command": []string{"/app", "healthcheck"}}})
	envID := api.id("POST", "/environments", map[string]any{"name": "local", "base_domain": "localhost", "default_ttl": "1h"})
	projID := api.id("POST", "/projects", map[string]any{"name": "shop", "cpu": 0.25, "memory_mb": 128})
	api.do("PUT", fmt.Sprintf("/projects/%d/pipeline", projID), map[string]any{
		"nodes": []map[string]any{{"id": "web", "kind": "service", "service": "web", "port": 8080, "ingress": true}},
		"edges": [][2]string{},
	}, 201)
	var created struct {
		Node struct {
			ID  int64  `json:"id"`
			UID string `json:"uid"`
		} `json:"node"`
		Token string `json:"token"`
	}
	api.decode(api.do("POST", fmt.Sprintf("/environments/%d/nodes", envID), map[string]any{"name": "local", "host": "host.docker.internal", "port": agentPort}, 201), &created)
	nodeUID = created.Node.UID
	if nodeUID == "" || created.Token == "" {
		t.Fatalf("node creation: %+v", created)
	}

	sh = exec.Command("bash", "-c", `set -e
sed -i "s/^AGENT_TOKEN=.*/AGENT_TOKEN=$TOKEN/" .env
docker-compose up -d agent`)
	sh.Dir, sh.Env = dir, append(env, "TOKEN="+created.Token)
	if out, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("up agent: %v\n%s", err, out)
	}
	type nodeView struct {
		Status     string `json:"status"`
		Reason     string `json:"status_reason"`
		Thumbprint string `json:"seen_thumbprint"`
		Instance   string `json:"agent_instance"`
	}
	waitNode := func(want string) nodeView {
		t.Helper()
		deadline := time.Now().Add(3 * time.Minute)
		for {
			var n nodeView
			api.decode(api.do("GET", fmt.Sprintf("/nodes/%d", created.Node.ID), nil, 200), &n)
			if n.Status == want {
				return n
			}
			if time.Now().After(deadline) {
				t.Fatalf("node is %s (%s) after 3 minutes, want %s", n.Status, n.Reason, want)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	first := waitNode("online")
	// docs/install.md: the fingerprint of a compose agent is in its log.
	if logs := must("logs", "--no-color", "agent"); first.Thumbprint == "" || !strings.Contains(logs, `"thumbprint":"`+first.Thumbprint+`"`) {
		t.Errorf("docker-compose logs agent does not show the thumbprint %q the node pinned:\n%s", first.Thumbprint, logs)
	}
	t.Logf("node online after %s", time.Since(began).Round(time.Second))

	var dep struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	}
	api.decode(api.do("POST", "/deployments", map[string]any{"project_id": projID, "environment_id": envID, "name": "first"}, 202), &dep)
	waitRunning := func() {
		t.Helper()
		deadline := time.Now().Add(3 * time.Minute)
		for {
			var d struct {
				Status string `json:"status"`
				Reason string `json:"status_reason"`
			}
			api.decode(api.do("GET", fmt.Sprintf("/deployments/%d", dep.ID), nil, 200), &d)
			if d.Status == "running" {
				return
			}
			if d.Status == "failed" || time.Now().After(deadline) {
				t.Fatalf("deployment is %s (%s)", d.Status, d.Reason)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	// Through the compose ingress, by host name, like a browser on this
	// machine (*.localhost resolves to loopback).
	host := fmt.Sprintf("web.%s.local.localhost", dep.Name)
	hc := &http.Client{Timeout: 5 * time.Second}
	throughIngress := func() {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/", ingressPort), nil)
			req.Host = host
			resp, err := hc.Do(req)
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 && strings.Contains(string(body), "hello from") {
					return
				}
				err = fmt.Errorf("%d %q", resp.StatusCode, body)
			}
			if time.Now().After(deadline) {
				t.Fatalf("http://%s through the ingress: %v", host, err)
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	waitRunning()
	throughIngress()
	t.Logf("deployment answered through the compose ingress after %s", time.Since(began).Round(time.Second))

	// The agent loses its data dir — its container and the agent-data
	// volume removed, the database kept: the deployment's container runs on,
	// labelled with the lost instance. With a new token in .env, `up -d
	// agent` (a new, empty volume) and the new thumbprint approved, the
	// deployment runs again exactly once, on the new agent's objects only.
	must("rm", "--stop", "--force", "agent")
	testutil.Docker(t, "volume", "rm", project+"_agent-data")
	if ids := strings.Fields(testutil.Docker(t, "ps", "-q", "--filter", "label=nullops.node_uid="+nodeUID)); len(ids) != 1 {
		t.Fatalf("running containers of the node after the agent and its volume were removed: %v", ids)
	}
	var rotated struct {
		Token string `json:"token"`
	}
	api.decode(api.do("POST", fmt.Sprintf("/nodes/%d/rotate-token", created.Node.ID), nil, 200), &rotated)
	sh = exec.Command("bash", "-c", `set -e
sed -i "s/^AGENT_TOKEN=.*/AGENT_TOKEN=$TOKEN/" .env
docker-compose up -d agent`)
	sh.Dir, sh.Env = dir, append(env, "TOKEN="+rotated.Token)
	if out, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("up agent after the data loss: %v\n%s", err, out)
	}
	untrusted := waitNode("untrusted")
	if untrusted.Thumbprint == "" || untrusted.Thumbprint == first.Thumbprint {
		t.Fatalf("the new agent presents thumbprint %q (the lost one: %q)", untrusted.Thumbprint, first.Thumbprint)
	}
	api.do("POST", fmt.Sprintf("/nodes/%d/approve-thumbprint", created.Node.ID), map[string]any{"thumbprint": untrusted.Thumbprint}, 200)
	second := waitNode("online")
	if second.Instance == "" || second.Instance == first.Instance {
		t.Fatalf("agent instance %q after the data loss (before: %q)", second.Instance, first.Instance)
	}
	want := []string{
		fmt.Sprintf("container nullops-%s-d%d-web node=%s", second.Instance, dep.ID, second.Instance),
		fmt.Sprintf("network nullops-%s-d%d node=%s", second.Instance, dep.ID, second.Instance),
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		got := nodeObjects(t, nodeUID)
		if strings.Join(got, "\n") == strings.Join(want, "\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("objects of the node after the new agent came online:\n got %v\nwant %v", got, want)
		}
		time.Sleep(500 * time.Millisecond)
	}
	waitRunning()
	throughIngress()
	t.Logf("after the agent's data loss the deployment runs once, on the new agent, after %s", time.Since(began).Round(time.Second))

	// Every service reports healthy through its healthcheck subcommand.
	for _, svc := range []string{"db", "server", "ingress", "agent"} {
		deadline = time.Now().Add(2 * time.Minute)
		for {
			id := strings.TrimSpace(must("ps", "-q", svc))
			state := testutil.Docker(t, "inspect", "-f", "{{.State.Health.Status}}", id)
			if state == "healthy" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("service %s is %s", svc, state)
			}
			time.Sleep(time.Second)
		}
	}
	if left := labelled(t, "nullops.node_uid="+nodeUID); len(left) == 0 {
		t.Fatal("no Docker object carries the node's uid while its deployment runs")
	}

	// Uninstall as documented, scoped to this node: without --nodeuid it
	// would take every NullOps object of this shared Docker daemon, other
	// tests' included.
	must("stop", "agent")
	out := must("run", "--rm", "-T", "agent", "uninstall", "--nodeuid="+nodeUID)
	if !strings.Contains(out, "nothing labelled nullops.managed=true and nullops.node_uid="+nodeUID+" is left") {
		t.Fatalf("uninstall said:\n%s", out)
	}
	must("down", "-v")
	if left := labelled(t, "nullops.node_uid="+nodeUID); len(left) > 0 {
		t.Errorf("deployment objects left after uninstall and down -v: %v", left)
	}
	if left := labelled(t, "com.docker.compose.project="+project); len(left) > 0 {
		t.Errorf("compose objects left after down -v: %v", left)
	}
	t.Logf("docker-compose installation: up, deploy, uninstall, down -v in %s", time.Since(began).Round(time.Second))
}

// withoutEmpty drops the KEY= entries of names from env (they were added to
// mask the caller's own values).
func withoutEmpty(env []string, names ...string) []string {
	drop := map[string]bool{}
	for _, n := range names {
		drop[n] = true
	}
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			out = append(out, kv)
		}
	}
	return out
}

// buildImages builds nullops/{server,ingress,agent}:tag the way
// `make images` does (static binaries, the Dockerfiles, the host's CA
// bundle), removed when the test ends.
func buildImages(t *testing.T, root, tag string) {
	t.Helper()
	ctx := t.TempDir()
	for _, b := range []string{"nullops-server", "nullops-ingress", "nullops-agent"} {
		testutil.BuildStatic(t, "./cmd/"+b, filepath.Join(ctx, b))
	}
	ca, _ := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err := os.WriteFile(filepath.Join(ctx, "ca-certificates.crt"), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, img := range []string{"server", "ingress", "agent"} {
		ref := "nullops/" + img + ":" + tag
		testutil.Docker(t, "build", "-q", "-f", filepath.Join(root, "Dockerfile."+img), "-t", ref, ctx)
		t.Cleanup(func() { _, _ = testutil.DockerErr("rmi", "-f", ref) })
	}
}

// labelled lists containers, networks and volumes carrying label (k=v).
func labelled(t *testing.T, label string) []string {
	t.Helper()
	var out []string
	for _, q := range [][]string{{"ps", "-a", "--format", "container {{.Names}}"}, {"network", "ls", "--format", "network {{.Name}}"}, {"volume", "ls", "--format", "volume {{.Name}}"}} {
		args := append(append([]string{}, q[:len(q)-2]...), "--filter", "label="+label)
		args = append(args, q[len(q)-2:]...)
		for _, l := range strings.Split(testutil.Docker(t, args...), "\n") {
			if strings.TrimSpace(l) != "" {
				out = append(out, l)
			}
		}
	}
	return out
}

// nodeObjects lists the containers (running or not) and networks labelled
// with node uid as "kind name node=<nullops.node>", sorted.
func nodeObjects(t *testing.T, uid string) []string {
	t.Helper()
	var out []string
	for _, q := range [][]string{
		{"ps", "-a", "--filter", "label=nullops.node_uid=" + uid, "--format", `container {{.Names}} node={{.Label "nullops.node"}}`},
		{"network", "ls", "--filter", "label=nullops.node_uid=" + uid, "--format", `network {{.Name}} node={{.Label "nullops.node"}}`},
	} {
		for _, l := range strings.Split(testutil.Docker(t, q...), "\n") {
			if strings.TrimSpace(l) != "" {
				out = append(out, l)
			}
		}
	}
	sort.Strings(out)
	return out
}

// removeLabelled force-removes what labelled lists (cleanup after a failure).
func removeLabelled(t *testing.T, label string) {
	for _, o := range labelled(t, label) {
		kind, name, _ := strings.Cut(o, " ")
		switch kind {
		case "container":
			_, _ = testutil.DockerErr("rm", "-f", "-v", name)
		case "network":
			_, _ = testutil.DockerErr("network", "rm", name)
		case "volume":
			_, _ = testutil.DockerErr("volume", "rm", "-f", name)
		}
	}
}

// apiClient is a logged-in session of the REST API.
type apiClient struct {
	t    *testing.T
	base string
	csrf string
	http *http.Client
}

func newAPIClient(t *testing.T, base, user, password string) *apiClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &apiClient{t: t, base: base, http: &http.Client{Jar: jar, Timeout: 60 * time.Second}}
	var me struct {
		CSRF string `json:"csrf_token"`
	}
	c.decode(c.do("POST", "/auth/login", map[string]string{"username": user, "password": password}, 200), &me)
	c.csrf = me.CSRF
	return c
}

// do sends a request to /api/v1<path>; want > 0 is the expected status.
func (c *apiClient) do(method, path string, body any, want int) []byte {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+"/api/v1"+path, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", c.csrf)
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if (want > 0 && resp.StatusCode != want) || resp.StatusCode >= 300 {
		c.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return b
}

func (c *apiClient) decode(b []byte, v any) {
	c.t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		c.t.Fatalf("decode %s: %v", b, err)
	}
}

// id POSTs and returns the created object's id.
func (c *apiClient) id(method, path string, body any) int64 {
	c.t.Helper()
	var v struct {
		ID int64 `json:"id"`
	}
	c.decode(c.do(method, path, body, 0), &v)
	if v.ID == 0 {
		c.t.Fatalf("%s %s returned no id", method, path)
	}
	return v.ID
}
