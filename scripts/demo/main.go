// Command nullops-demo is the second half of `make demo` (scripts/demo.sh
// does the first: packages, PostgreSQL, binaries and images). It starts a
// local docker-registry and pushes the demo images to it, starts
// nullops-server and nullops-ingress, registers a node through the API and
// starts nullops-agent as a container from the nullops/agent image, builds a
// catalog and a demo project, creates a deployment as a developer, waits
// until it runs and prints where everything is. On Ctrl-C it deletes the
// deployment through the API and stops everything it started.
//
// Every run starts from a fresh demo database and agent data dir, so running
// it twice (or after a crash) works; credentials are kept in the run dir.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nullops/nullops/cli"
)

const (
	demoDatabase = "nullops_demo" // in the demo's own PostgreSQL cluster
	registryUser = "demo"
)

type options struct {
	runDir, binDir, pgURL, agentImage, instance string
	uiPort, ingressPort, registryPort, agentPt  int
	once                                        bool
}

func main() {
	var o options
	flag.StringVar(&o.runDir, "run-dir", ".run", "directory for state, logs and credentials")
	flag.StringVar(&o.binDir, "bin", "bin", "directory of nullops-server and nullops-ingress")
	flag.StringVar(&o.pgURL, "pg", os.Getenv("NULLOPS_TEST_DATABASE_URL"), "PostgreSQL admin URL (the demo database is created in it)")
	flag.StringVar(&o.agentImage, "agent-image", "nullops/agent:latest", "agent image to run")
	flag.IntVar(&o.uiPort, "ui-port", envInt("NULLOPS_DEMO_UI_PORT", 8080), "port of the UI and API")
	flag.IntVar(&o.ingressPort, "ingress-port", envInt("NULLOPS_DEMO_INGRESS_PORT", 8000), "port of the ingress")
	flag.IntVar(&o.registryPort, "registry-port", envInt("NULLOPS_DEMO_REGISTRY_PORT", 5001), "port of the local registry")
	flag.IntVar(&o.agentPt, "agent-port", envInt("NULLOPS_DEMO_AGENT_PORT", 15000), "host port of the agent container")
	flag.StringVar(&o.instance, "instance", envStr("NULLOPS_DEMO_INSTANCE", "demo"), "name of this demo on the Docker daemon (agent container nullops-<instance>-agent)")
	flag.BoolVar(&o.once, "once", os.Getenv("NULLOPS_DEMO_ONCE") == "1", "stop and clean up right after printing (for tests)")
	flag.Parse()

	if !dnsLabel.MatchString(o.instance) {
		fmt.Fprintf(os.Stderr, "make demo: instance %q must be lowercase letters, digits and '-'\n", o.instance)
		os.Exit(2)
	}

	// `make demo | head -1`: once the reader is gone, writing the summary
	// must fail quietly (EPIPE), not kill the demo with SIGPIPE before it
	// cleaned up its processes and containers.
	signal.Ignore(syscall.SIGPIPE)
	// SIGHUP: the terminal was closed. Without it the demo died at once and
	// left its agent, deployment containers, server, ingress and registry
	// running; it now cleans up as on Ctrl-C.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	d := &demo{o: o}
	err := d.run(ctx)
	d.shutdown()
	if err != nil {
		fmt.Fprintln(os.Stderr, "make demo:", err)
		fmt.Fprintf(os.Stderr, "logs: %s\n", filepath.Join(o.runDir, "logs"))
		os.Exit(1)
	}
}

var dnsLabel = regexp.MustCompile(`^[a-z][a-z0-9-]{0,20}$`)

func envStr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	var v int
	if _, err := fmt.Sscan(os.Getenv(name), &v); err == nil && v > 0 {
		return v
	}
	return def
}

// credentials survive runs so the printed passwords stay the same.
type credentials struct {
	SecretKey         string `json:"secret_key"`
	AdminPassword     string `json:"admin_password"`
	DeveloperPassword string `json:"developer_password"`
	IngressToken      string `json:"ingress_token"`
	RegistryPassword  string `json:"registry_password"`
	APIKey            string `json:"demo_api_key"`
}

type demo struct {
	o        options
	creds    credentials
	procs    []*process
	admin    *apiClient
	depID    int64
	agentRun bool
}

// Names of what the demo creates on the Docker daemon; cleanup finds
// leftovers by them.
func (d *demo) agentContainer() string { return "nullops-" + d.o.instance + "-agent" }
func (d *demo) nodeLabel() string      { return d.o.instance + "-local" } // nullops.node label

func (d *demo) log(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "demo: "+format+"\n", args...)
}

func (d *demo) run(ctx context.Context) error {
	for _, dir := range []string{"logs", "pids", "registry", "ingress", "agent", "docker"} {
		if err := os.MkdirAll(filepath.Join(d.o.runDir, dir), 0o700); err != nil {
			return fmt.Errorf("create run dir: %w", err)
		}
	}
	d.cleanupLeftovers()
	for name, port := range map[string]int{"UI": d.o.uiPort, "ingress": d.o.ingressPort, "registry": d.o.registryPort, "agent": d.o.agentPt} {
		if err := portFree(port); err != nil {
			return fmt.Errorf("the %s port %d is taken (%v); set NULLOPS_DEMO_%s_PORT to another one", name, port, err, strings.ToUpper(name))
		}
	}
	if err := d.loadCredentials(); err != nil {
		return err
	}
	steps := []struct {
		what string
		fn   func(context.Context) error
	}{
		{"reset the demo database", d.resetDatabase},
		{"start the local registry", d.startRegistry},
		{"push the demo and plugin images", d.pushImages},
		{"start nullops-server", d.startServer},
		{"start nullops-ingress", d.startIngress},
		{"build the catalog", d.provision},
	}
	for _, s := range steps {
		d.log("%s", s.what)
		if err := s.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
		if ctx.Err() != nil {
			return nil
		}
	}
	if d.o.once {
		return nil
	}
	d.log("running; press Ctrl-C to stop and clean up")
	<-ctx.Done()
	return nil
}

func (d *demo) loadCredentials() error {
	path := filepath.Join(d.o.runDir, "credentials.json")
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &d.creds); err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
	}
	fill := func(v *string, n int, enc func([]byte) string) {
		if *v == "" {
			b := make([]byte, n)
			_, _ = rand.Read(b)
			*v = enc(b)
		}
	}
	fill(&d.creds.SecretKey, 32, base64.StdEncoding.EncodeToString)
	fill(&d.creds.AdminPassword, 9, base64.RawURLEncoding.EncodeToString)
	fill(&d.creds.DeveloperPassword, 9, base64.RawURLEncoding.EncodeToString)
	fill(&d.creds.IngressToken, 24, hex.EncodeToString)
	fill(&d.creds.RegistryPassword, 12, hex.EncodeToString)
	fill(&d.creds.APIKey, 12, hex.EncodeToString)
	b, _ := json.MarshalIndent(d.creds, "", "  ")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// resetDatabase drops and recreates the demo database: every run starts
// from the same, known state.
func (d *demo) resetDatabase(ctx context.Context) error {
	if d.o.pgURL == "" {
		return errors.New("no PostgreSQL URL: run through `make demo` (scripts/demo.sh starts PostgreSQL)")
	}
	conn, err := pgx.Connect(ctx, d.o.pgURL)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+demoDatabase+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop %s: %w", demoDatabase, err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+demoDatabase); err != nil {
		return fmt.Errorf("create %s: %w", demoDatabase, err)
	}
	return nil
}

// databaseURL is the admin URL pointed at the demo database.
func (d *demo) databaseURL() string {
	u, err := url.Parse(d.o.pgURL)
	if err != nil {
		return d.o.pgURL
	}
	u.Path = "/" + demoDatabase
	return u.String()
}

func (d *demo) uiURL() string { return fmt.Sprintf("http://localhost:%d", d.o.uiPort) }

func (d *demo) registryHost() string { return fmt.Sprintf("127.0.0.1:%d", d.o.registryPort) }

func (d *demo) startServer(ctx context.Context) error {
	p, err := d.start("server", filepath.Join(d.o.binDir, "nullops-server"),
		[]string{
			fmt.Sprintf("--listen=127.0.0.1:%d", d.o.uiPort),
			"--publicurl=" + d.uiURL(),
			fmt.Sprintf("--ingress.linkport=%d", d.o.ingressPort),
			"--cleanup.schedule=@every 30s",
		},
		"NULLOPS_DATABASE_URL="+d.databaseURL(),
		"NULLOPS_SECRET_KEY="+d.creds.SecretKey,
		"NULLOPS_ADMIN_USERNAME=admin",
		"NULLOPS_ADMIN_PASSWORD="+d.creds.AdminPassword,
		"NULLOPS_INGRESS_TOKEN="+d.creds.IngressToken,
	)
	if err != nil {
		return err
	}
	return p.waitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/readyz", d.o.uiPort), 60*time.Second)
}

func (d *demo) startIngress(ctx context.Context) error {
	p, err := d.start("ingress", filepath.Join(d.o.binDir, "nullops-ingress"),
		[]string{
			fmt.Sprintf("--listen=:%d", d.o.ingressPort),
			fmt.Sprintf("--server.url=http://127.0.0.1:%d", d.o.uiPort),
			"--statedir=" + filepath.Join(d.o.runDir, "ingress"),
			"--metrics.listen=127.0.0.1:0",
		},
		"NULLOPS_TOKEN="+d.creds.IngressToken,
	)
	if err != nil {
		return err
	}
	// The ingress answers 404 for an unknown host once it is up.
	return p.waitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/", d.o.ingressPort), 30*time.Second)
}

// shutdown deletes the deployment (so the agent removes its containers),
// stops the agent container and every process, and removes what is left.
func (d *demo) shutdown() {
	d.log("stopping")
	if d.admin != nil && d.depID != 0 && d.agentRun {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		if err := d.admin.do(ctx, "DELETE", fmt.Sprintf("/deployments/%d", d.depID), nil, nil); err != nil {
			d.log("delete deployment: %v", err)
		} else if err := cli.WaitGone(ctx, d.admin.Client, d.depID, 90*time.Second, os.Stderr); err != nil {
			d.log("deployment not deleted in time (%v); removing its containers directly", err)
		}
		cancel()
	}
	if d.agentRun {
		_, _ = docker("rm", "-f", d.agentContainer())
	}
	for i := len(d.procs) - 1; i >= 0; i-- {
		d.procs[i].stop()
	}
	d.cleanupLeftovers()
}

// cleanupLeftovers removes what an earlier, interrupted run may have left:
// its processes, the agent container, every Docker object of the demo
// node and the image tags the agent pulled from the demo's registry.
func (d *demo) cleanupLeftovers() {
	defer d.removePulledTags()
	killStale(filepath.Join(d.o.runDir, "pids"))
	_, _ = docker("rm", "-f", d.agentContainer())
	filter := "label=nullops.node=" + d.nodeLabel()
	if ids, _ := docker("ps", "-aq", "--filter", filter); ids != "" {
		_, _ = docker(append([]string{"rm", "-f", "-v"}, strings.Fields(ids)...)...)
	}
	if ids, _ := docker("network", "ls", "-q", "--filter", filter); ids != "" {
		_, _ = docker(append([]string{"network", "rm"}, strings.Fields(ids)...)...)
	}
	if ids, _ := docker("volume", "ls", "-q", "--filter", filter); ids != "" {
		_, _ = docker(append([]string{"volume", "rm", "-f"}, strings.Fields(ids)...)...)
	}
}

func portFree(port int) error {
	l, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		return err
	}
	return l.Close()
}

// get fetches a URL with an optional Host header; used for the ingress check.
func get(ctx context.Context, rawURL, host string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", rawURL, nil)
	if err != nil {
		return 0, "", err
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(b), nil
}

// removePulledTags removes the tags of images pulled from the demo's own
// registry (<registry host>/…): the agent pulled them onto this daemon for
// the demo deployment. Only the tags go; the images they name stay while
// anything else uses them.
func (d *demo) removePulledTags() {
	out, err := docker("images", "--format", "{{.Repository}}:{{.Tag}}")
	if err != nil {
		d.log("list image tags: %v", err)
		return
	}
	var refs []string
	for _, ref := range strings.Fields(out) {
		if strings.HasPrefix(ref, d.registryHost()+"/") && !strings.HasSuffix(ref, ":<none>") {
			refs = append(refs, ref)
		}
	}
	if len(refs) > 0 {
		if _, err := docker(append([]string{"rmi"}, refs...)...); err != nil {
			d.log("remove pulled image tags: %v", err)
		}
	}
}
