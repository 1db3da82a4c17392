package nullops_test

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestDockerComposeHAFile validates the two-replica variant
// (docker-compose.ha.yml over docker-compose.yml) as docker-compose reads
// it: both replicas share the database and the secret key, read only
// variables the server knows, the load balancer's configuration is valid
// HAProxy (haproxy -c) naming exactly the replicas, health-checking
// /readyz, and the ingress reaches the server through the balancer. The
// stack is not started here: its haproxy image is pulled, which this
// machine cannot do.
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
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("resolved config: %v\n%s", err, out)
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
}
