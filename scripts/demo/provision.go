package main

import (
	"context"
	"encoding/json"
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

// post POSTs body (a request type of restapi) and decodes the answer as T.
func post[T any](ctx context.Context, c *apiClient, path string, body any) (T, error) {
	var out T
	err := c.do(ctx, "POST", path, body, &out)
	return out, err
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
	regPassword := d.creds.RegistryPassword
	reg, err := post[restapi.Registry](ctx, admin, "/registries", restapi.RegistryRequest{
		Name: "local", URL: "http://" + d.registryHost(), Username: registryUser, Password: &regPassword, Insecure: true,
	})
	if err != nil {
		return err
	}
	for _, svc := range []string{"api", "web"} {
		if _, err := post[restapi.Service](ctx, admin, "/services", restapi.ServiceRequest{
			Name: "demo-" + svc, RegistryID: reg.ID, Image: "demo/web", TagMode: "selectable", TagPattern: "v*",
			Ports: []int{8080}, Health: &restapi.Health{HTTP: "/healthz"},
			Description: "demo HTTP service (" + svc + ")",
		}); err != nil {
			return err
		}
	}
	pluginCPU, pluginMemoryMB, joinNetwork := 0.1, int64(32), true
	if _, err := post[restapi.Plugin](ctx, admin, "/plugins", restapi.PluginRequest{
		Name: "http-wait", RegistryID: reg.ID, Image: "plugins/http-wait", Tag: "1.0.0",
		CPU: &pluginCPU, MemoryMB: &pluginMemoryMB, Timeout: "2m", JoinNetwork: &joinNetwork,
		Description: "waits until a URL of the deployment answers",
		ParamsSchema: json.RawMessage(`{"type": "object", "required": ["url"],
			"properties": {"url": {"type": "string"}, "status": {"type": "integer"}, "timeout": {"type": "string"}}}`),
	}); err != nil {
		return err
	}
	environment, err := post[restapi.Environment](ctx, admin, "/environments", restapi.EnvironmentRequest{
		Name: "local", BaseDomain: "localhost", DefaultTTL: "24h", Description: "this machine (make demo)",
	})
	if err != nil {
		return err
	}
	envID := environment.ID
	projectCPU, projectMemoryMB := 0.25, int64(256)
	project, err := post[restapi.Project](ctx, admin, "/projects", restapi.ProjectRequest{
		Name: "demo", CPU: &projectCPU, MemoryMB: &projectMemoryMB, Description: "two services and a plugin step between them",
	})
	if err != nil {
		return err
	}
	if _, err := post[restapi.Secret](ctx, admin, "/secrets", restapi.SecretRequest{Name: "demo-api-key", ProjectID: &project.ID, Value: d.creds.APIKey}); err != nil {
		return err
	}
	if err := admin.do(ctx, "PUT", fmt.Sprintf("/projects/%d/pipeline", project.ID), demoPipeline(), nil); err != nil {
		return err
	}
	developer, err := post[restapi.User](ctx, admin, "/users", restapi.UserRequest{Username: "developer", DisplayName: "Demo Developer", Password: d.creds.DeveloperPassword})
	if err != nil {
		return err
	}
	teamName := "developers"
	team, err := post[restapi.Team](ctx, admin, "/teams", restapi.TeamRequest{Name: &teamName})
	if err != nil {
		return err
	}
	if err := admin.do(ctx, "PUT", fmt.Sprintf("/teams/%d/members/%d", team.ID, developer.ID), nil, nil); err != nil {
		return err
	}
	if err := admin.do(ctx, "PUT", fmt.Sprintf("/environments/%d/access/%d", envID, team.ID), restapi.AccessRequest{Level: "full"}, nil); err != nil {
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
		ProjectID: project.ID, EnvironmentID: envID, Name: "demo",
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
	out, err := post[restapi.NodeCreated](ctx, d.admin, fmt.Sprintf("/environments/%d/nodes", envID), restapi.NodeRequest{
		Name: "local-1", Host: "127.0.0.1", Port: d.o.agentPt, Labels: map[string]string{"demo": "true"},
	})
	if err != nil {
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
		var n restapi.Node
		if err := d.admin.do(ctx, "GET", fmt.Sprintf("/nodes/%d", out.Node.ID), nil, &n); err != nil {
			return "", err
		}
		if n.Status == "online" {
			return n.SeenThumbprint, nil
		}
		if time.Now().After(deadline) {
			logs, _ := docker("logs", "--tail", "20", d.agentContainer())
			return "", fmt.Errorf("node local-1 is %s (%s) after 60s; agent log:\n%s", n.Status, n.StatusReason, logs)
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
