package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/nullops/nullops/cli"
	"github.com/nullops/nullops/restapi"
)

// apiClient is the REST client (package restapi) with a timeout.
type apiClient struct{ *restapi.Client }

func newAPIClient(base, token string) *apiClient {
	c := restapi.NewClient(base, token)
	c.HTTP = &http.Client{Timeout: 30 * time.Second}
	return &apiClient{c}
}

func (c *apiClient) do(ctx context.Context, method, path string, body, out any) error {
	if err := c.Do(ctx, method, path, body, out); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}

// create POSTs and returns the new object's id.
func (c *apiClient) create(ctx context.Context, path string, body any) (int64, error) {
	var v struct {
		ID   int64 `json:"id"`
		Node struct {
			ID int64 `json:"id"`
		} `json:"node"`
	}
	if err := c.do(ctx, "POST", path, body, &v); err != nil {
		return 0, err
	}
	if v.ID == 0 {
		v.ID = v.Node.ID
	}
	return v.ID, nil
}

// login signs in with a password (session cookie + CSRF token) and mints an
// API token, as a user would in the UI before using the CLI.
func login(ctx context.Context, base, username, password string) (*apiClient, error) {
	sc, _, err := restapi.Login(ctx, base, &http.Client{Timeout: 30 * time.Second}, username, password)
	if err != nil {
		return nil, fmt.Errorf("login %s: %w", username, err)
	}
	tok, err := sc.CreateToken(ctx, restapi.TokenRequest{Name: "make demo"})
	if err != nil {
		return nil, fmt.Errorf("create API token for %s: %w", username, err)
	}
	return newAPIClient(base, tok.Token), nil
}

// demoPipeline: api starts, the http-wait plugin waits for it on the
// deployment network and passes what it saw (status, attempts) to web,
// which is exposed through the ingress like api.
func demoPipeline() map[string]any {
	return map[string]any{
		"nodes": []map[string]any{
			{"id": "api", "kind": "service", "service": "demo-api", "port": 8080, "ingress": true,
				"env": map[string]any{"SERVICE_NAME": "api", "API_KEY": "${secrets.demo-api-key}"}},
			{"id": "wait-api", "kind": "component", "plugin": "http-wait",
				"params": map[string]any{"url": "http://api:8080/healthz", "status": 200, "timeout": "60s"}},
			{"id": "web", "kind": "service", "service": "demo-web", "port": 8080, "ingress": true,
				"env": map[string]any{
					"SERVICE_NAME": "web",
					"API_URL":      "http://api:8080",
					"MESSAGE":      "api answered ${steps.wait-api.outputs.status} after ${steps.wait-api.outputs.attempts} attempt(s)",
				}},
		},
		"edges": [][2]string{{"api", "wait-api"}, {"wait-api", "web"}},
	}
}

// provision builds the catalog as the admin, registers the node and starts
// its agent, then deploys as the developer and prints the result.
func (d *demo) provision(ctx context.Context) error {
	admin, err := login(ctx, d.uiURL(), "admin", d.creds.AdminPassword)
	if err != nil {
		return err
	}
	d.admin = admin
	regID, err := admin.create(ctx, "/registries", map[string]any{
		"name": "local", "url": "http://" + d.registryHost(), "username": registryUser,
		"password": d.creds.RegistryPassword, "insecure": true,
	})
	if err != nil {
		return err
	}
	for _, svc := range []string{"api", "web"} {
		if _, err := admin.create(ctx, "/services", map[string]any{
			"name": "demo-" + svc, "registry_id": regID, "image": "demo/web", "tag_mode": "selectable", "tag_pattern": "v*",
			"ports": []int{8080}, "health": map[string]any{"http": "/healthz"},
			"description": "demo HTTP service (" + svc + ")",
		}); err != nil {
			return err
		}
	}
	if _, err := admin.create(ctx, "/plugins", map[string]any{
		"name": "http-wait", "registry_id": regID, "image": "plugins/http-wait", "tag": "1.0.0",
		"cpu": 0.1, "memory_mb": 32, "timeout": "2m", "join_network": true,
		"description": "waits until a URL of the deployment answers",
		"params_schema": map[string]any{
			"type":       "object",
			"required":   []string{"url"},
			"properties": map[string]any{"url": map[string]any{"type": "string"}, "status": map[string]any{"type": "integer"}, "timeout": map[string]any{"type": "string"}},
		},
	}); err != nil {
		return err
	}
	envID, err := admin.create(ctx, "/environments", map[string]any{
		"name": "local", "base_domain": "localhost", "default_ttl": "24h", "description": "this machine (make demo)",
	})
	if err != nil {
		return err
	}
	projectID, err := admin.create(ctx, "/projects", map[string]any{
		"name": "demo", "cpu": 0.25, "memory_mb": 256, "description": "two services and a plugin step between them",
	})
	if err != nil {
		return err
	}
	if _, err := admin.create(ctx, "/secrets", map[string]any{"name": "demo-api-key", "project_id": projectID, "value": d.creds.APIKey}); err != nil {
		return err
	}
	if err := admin.do(ctx, "PUT", fmt.Sprintf("/projects/%d/pipeline", projectID), demoPipeline(), nil); err != nil {
		return err
	}
	devID, err := admin.create(ctx, "/users", map[string]any{"username": "developer", "display_name": "Demo Developer", "password": d.creds.DeveloperPassword})
	if err != nil {
		return err
	}
	teamID, err := admin.create(ctx, "/teams", map[string]any{"name": "developers"})
	if err != nil {
		return err
	}
	if err := admin.do(ctx, "PUT", fmt.Sprintf("/teams/%d/members/%d", teamID, devID), nil, nil); err != nil {
		return err
	}
	if err := admin.do(ctx, "PUT", fmt.Sprintf("/environments/%d/access/%d", envID, teamID), map[string]any{"level": "full"}, nil); err != nil {
		return err
	}

	thumb, err := d.startAgent(ctx, envID)
	if err != nil {
		return err
	}

	dev, err := login(ctx, d.uiURL(), "developer", d.creds.DeveloperPassword)
	if err != nil {
		return err
	}
	dep, err := d.createDeployment(ctx, dev, restapi.CreateDeploymentRequest{
		ProjectID: projectID, EnvironmentID: envID, Name: "demo",
		Tags: map[string]string{"demo-api": "v1.0.0", "demo-web": "v1.1.0"},
	})
	if err != nil {
		return err
	}
	d.depID = dep.ID
	d.log("deployment demo created; waiting until it runs")
	if dep, err = cli.WaitRunning(ctx, dev.Client, dep.ID, 3*time.Minute, os.Stderr); err != nil {
		return err
	}
	links, err := d.checkIngress(ctx, dep)
	if err != nil {
		return err
	}
	d.printSummary(thumb, links)
	return nil
}

// createDeployment creates the demo deployment. Placement counts the CPU
// the machine is using: on a busy laptop (a build, a test run) the node may
// have no room for a moment, so a "no capacity" answer is retried for a
// while with the server's explanation shown.
func (d *demo) createDeployment(ctx context.Context, c *apiClient, req restapi.CreateDeploymentRequest) (restapi.Deployment, error) {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		dep, err := c.CreateDeployment(ctx, req)
		var ae *restapi.Error
		if err == nil || !errors.As(err, &ae) || ae.Code != "no_capacity" || time.Now().After(deadline) {
			return dep, err
		}
		d.log("the node is busy, retrying: %s", ae.Message)
		select {
		case <-ctx.Done():
			return dep, ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
}

// startAgent adds the node through the API (its token is shown once), runs
// the agent container with it and waits until the server has dialled it and
// pinned its certificate.
func (d *demo) startAgent(ctx context.Context, envID int64) (string, error) {
	var out struct {
		Node struct {
			ID int64 `json:"id"`
		} `json:"node"`
		Token string `json:"token"`
	}
	if err := d.admin.do(ctx, "POST", fmt.Sprintf("/environments/%d/nodes", envID), map[string]any{
		"name": "local-1", "host": "127.0.0.1", "port": d.o.agentPt, "labels": map[string]string{"demo": "true"},
	}, &out); err != nil {
		return "", err
	}
	dataDir, err := filepath.Abs(filepath.Join(d.o.runDir, "agent"))
	if err != nil {
		return "", err
	}
	// A fresh data dir each run: the demo database is fresh too.
	_ = os.RemoveAll(dataDir)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", err
	}
	// The spec's docker run line, with the demo's name, port and data dir.
	if _, err := docker("run", "-d", "--name", d.agentContainer(),
		"-p", fmt.Sprintf("127.0.0.1:%d:5000", d.o.agentPt),
		"-e", "AGENT_TOKEN="+out.Token,
		"-e", "NULLOPS_NODENAME="+d.nodeLabel(),
		"-e", "NULLOPS_LOG_FORMAT=console",
		"-v", "/var/run/docker.sock:/var/run/docker.sock",
		"-v", dataDir+":/data",
		d.o.agentImage); err != nil {
		return "", err
	}
	d.agentRun = true
	deadline := time.Now().Add(60 * time.Second)
	for {
		var n struct {
			Status     string `json:"status"`
			Reason     string `json:"status_reason"`
			Thumbprint string `json:"seen_thumbprint"`
		}
		if err := d.admin.do(ctx, "GET", fmt.Sprintf("/nodes/%d", out.Node.ID), nil, &n); err != nil {
			return "", err
		}
		if n.Status == "online" {
			return n.Thumbprint, nil
		}
		if time.Now().After(deadline) {
			logs, _ := docker("logs", "--tail", "20", d.agentContainer())
			return "", fmt.Errorf("node local-1 is %s (%s) after 60s; agent log:\n%s", n.Status, n.Reason, logs)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// checkIngress waits until each of the deployment's links (which carry the
// ingress port: the server runs with --ingress.linkport) answers through
// nullops-ingress.
func (d *demo) checkIngress(ctx context.Context, dep restapi.Deployment) ([]string, error) {
	names := make([]string, 0, len(dep.URLs))
	for svc := range dep.URLs {
		names = append(names, svc)
	}
	sort.Strings(names)
	var links []string
	for _, svc := range names {
		link := dep.URLs[svc]
		u, err := url.Parse(link)
		if err != nil {
			return nil, fmt.Errorf("link of %s: %w", svc, err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			// *.localhost resolves to loopback in browsers; here we dial it.
			code, body, err := get(ctx, fmt.Sprintf("http://127.0.0.1:%s/", u.Port()), u.Host)
			if err == nil && code == http.StatusOK && strings.Contains(body, "hello from "+svc) {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("%s does not answer through the ingress: %d %v %.200s", link, code, err, body)
			}
			time.Sleep(300 * time.Millisecond)
		}
		links = append(links, fmt.Sprintf("%-4s %s/", svc, link))
	}
	return links, nil
}

func (d *demo) printSummary(thumbprint string, links []string) {
	fmt.Printf(`
NullOps demo is running.

  UI:          %s
  admin:       admin / %s
  developer:   developer / %s
  node:        local-1 (agent container %s, certificate %s…)

Deployment "demo" of project "demo" in environment "local" is running:
`, d.uiURL(), d.creds.AdminPassword, d.creds.DeveloperPassword, d.agentContainer(), thumbprint[:min(16, len(thumbprint))])
	for _, l := range links {
		fmt.Printf("  %s\n", l)
	}
	fmt.Printf(`
*.localhost names resolve to this machine in browsers; with curl:
  curl http://127.0.0.1:%d/ -H 'Host: web.demo.local.localhost'
Logs: %s   Credentials: %s
`, d.o.ingressPort, filepath.Join(d.o.runDir, "logs"), filepath.Join(d.o.runDir, "credentials.json"))
}
