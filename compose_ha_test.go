package nullops_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/nullops/nullops/internal/testutil"
)

// TestDockerComposeHAFile validates the two-replica variant
// (docker-compose.ha.yml over docker-compose.yml) as docker-compose reads
// it: both replicas share the database and the secret key, read only
// variables the server knows, the load balancer's configuration is valid
// HAProxy (haproxy -c) naming exactly the replicas, health-checking
// /readyz, and the ingress reaches the server through the balancer. Every
// service has a health check; the load balancer's (bash in the haproxy
// image, asking haproxy.cfg's health frontend) is run here against this
// machine's HAProxy with that configuration. The stack is not started
// here: its haproxy image is pulled, which this machine cannot do.
func TestDockerComposeHAFile(t *testing.T) {
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Fatal("docker-compose is not installed (scripts/setup.sh installs it)")
	}
	cmd := exec.Command("docker-compose", "-f", "docker-compose.yml", "-f", "docker-compose.ha.yml", "config")
	cmd.Env = append(os.Environ(), "NULLOPS_SECRET_KEY=k", "NULLOPS_ADMIN_PASSWORD=p", "NULLOPS_INGRESS_TOKEN=t", "AGENT_TOKEN=a")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
	var cfg struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Hostname    string            `yaml:"hostname"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
			Healthcheck struct {
				Test []string `yaml:"test"`
			} `yaml:"healthcheck"`
			DependsOn map[string]struct {
				Condition string `yaml:"condition"`
			} `yaml:"depends_on"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("resolved config: %v\n%s", err, out)
	}
	for name, svc := range cfg.Services {
		if len(svc.Healthcheck.Test) < 2 || svc.Healthcheck.Test[0] != "CMD" {
			t.Errorf("service %s has no health check command (healthcheck.test %v)", name, svc.Healthcheck.Test)
		}
	}
	if c := cfg.Services["ingress"].DependsOn["lb"].Condition; c != "service_healthy" {
		t.Errorf("the ingress waits for lb to be %q, want service_healthy", c)
	}
	known := envNames(t, "./cmd/nullops-server")
	replicas := []string{"server", "server2"}
	for _, name := range replicas {
		svc, ok := cfg.Services[name]
		if !ok {
			t.Fatalf("no service %s", name)
		}
		if svc.Image != "nullops/server:latest" || svc.Hostname != name {
			t.Errorf("%s: image %s, hostname %q", name, svc.Image, svc.Hostname)
		}
		for k := range svc.Environment {
			if strings.HasPrefix(k, "NULLOPS_") && !known[k] {
				t.Errorf("%s sets %s, which nullops-server does not read", name, k)
			}
		}
		for _, k := range []string{"NULLOPS_DATABASE_URL", "NULLOPS_SECRET_KEY", "NULLOPS_INGRESS_TOKEN", "NULLOPS_HTTP_DRAINDELAY"} {
			if v := svc.Environment[k]; v == "" || v != cfg.Services["server"].Environment[k] {
				t.Errorf("%s: %s = %q, want the same non-empty value as server", name, k, v)
			}
		}
	}
	if u := cfg.Services["ingress"].Environment["NULLOPS_SERVER_URL"]; u != "http://lb:8080" {
		t.Errorf("the ingress reaches the server at %q, not through the balancer", u)
	}
	lb := cfg.Services["lb"]
	var cfgFile string
	for _, v := range lb.Volumes {
		if parts := strings.Split(v, ":"); len(parts) >= 2 && parts[1] == "/usr/local/etc/haproxy/haproxy.cfg" {
			cfgFile = parts[0]
		}
	}
	if !strings.HasSuffix(cfgFile, "scripts/compose/haproxy.cfg") {
		t.Fatalf("lb mounts %v, not scripts/compose/haproxy.cfg", lb.Volumes)
	}
	hb, err := exec.LookPath("haproxy")
	if err != nil {
		hb = "/usr/sbin/haproxy"
	}
	if msg, err := exec.Command(hb, "-c", "-f", "scripts/compose/haproxy.cfg").CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, msg)
	}
	b, err := os.ReadFile("scripts/compose/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	var backends []string
	for _, m := range regexp.MustCompile(`(?m)^\s*server \S+ (\S+):8080 check`).FindAllStringSubmatch(string(b), -1) {
		backends = append(backends, m[1])
	}
	if strings.Join(backends, ",") != strings.Join(replicas, ",") {
		t.Errorf("haproxy backends %v, want %v", backends, replicas)
	}
	if !strings.Contains(string(b), "option httpchk GET /readyz") {
		t.Error("haproxy does not check /readyz")
	}
	lbHealthCheck(t, hb, string(b), cfg.Services["lb"].Healthcheck.Test[1:])
}

// lbHealthCheck runs the lb service's health command (bash, as in the
// container) against this machine's HAProxy started with haproxy.cfg —
// its ports moved to free ones, its replicas one local server answering
// /readyz — and expects it to pass while the replica is in service and to
// fail once it is not.
func lbHealthCheck(t *testing.T, haproxyBin, cfg string, command []string) {
	t.Helper()
	var ready atomic.Bool
	ready.Store(true)
	replica := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer replica.Close()
	u, _ := url.Parse(replica.URL)
	api, health := testutil.FreePort(t), testutil.FreePort(t)
	for old, repl := range map[string]string{
		"\tbind :8080\n":      fmt.Sprintf("\tbind 127.0.0.1:%d\n", api),
		"127.0.0.1:8405":      fmt.Sprintf("127.0.0.1:%d", health),
		" server:8080 check":  " " + u.Host + " check",
		" server2:8080 check": " " + u.Host + " check",
	} {
		if !strings.Contains(cfg, old) {
			t.Fatalf("haproxy.cfg no longer contains %q: update lbHealthCheck", old)
		}
		cfg = strings.ReplaceAll(cfg, old, repl)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	proc := exec.Command(haproxyBin, "-db", "-f", path)
	var logs strings.Builder
	proc.Stdout, proc.Stderr = &logs, &logs
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = proc.Process.Kill(); _ = proc.Wait() }()

	cmdline := strings.Join(command, " ")
	if !strings.Contains(cmdline, "127.0.0.1:8405") && !strings.Contains(cmdline, "127.0.0.1/8405") {
		t.Fatalf("lb's health command %q does not ask the health frontend (127.0.0.1:8405)", command)
	}
	check := func() error {
		args := make([]string, len(command))
		for i, a := range command {
			args[i] = strings.ReplaceAll(a, "8405", fmt.Sprint(health))
		}
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v %s", err, out)
		}
		return nil
	}
	waitFor := func(healthy bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			err := check()
			if (err == nil) == healthy {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("lb's health command with the replica ready=%v: %v (want healthy=%v)\nhaproxy:\n%s", ready.Load(), err, healthy, logs.String())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitFor(true)
	ready.Store(false)
	waitFor(false)
}
