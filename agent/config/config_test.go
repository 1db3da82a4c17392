package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nullops/nullops/internal/confload"
)

func load(t *testing.T, env []string, args ...string) (*Config, error) {
	t.Helper()
	cfg := Defaults()
	err := confload.Apply(cfg, args, env, Aliases)
	return cfg, err
}

func TestTokenFromAgentTokenOrNullopsToken(t *testing.T) {
	tok := "nullops-node_abcdefghijklmnop"
	cfg, err := load(t, []string{"AGENT_TOKEN=" + tok})
	if err != nil || cfg.Token != tok {
		t.Fatalf("AGENT_TOKEN: %q %v", cfg.Token, err)
	}
	cfg, err = load(t, []string{"AGENT_TOKEN=" + tok, "NULLOPS_TOKEN=" + tok + "-wins"})
	if err != nil || cfg.Token != tok+"-wins" {
		t.Fatalf("NULLOPS_TOKEN should win over AGENT_TOKEN: %q %v", cfg.Token, err)
	}
	if cfg.Listen != ":5000" {
		t.Fatalf("default listen %q, want :5000", cfg.Listen)
	}
}

func TestMissingTokenNamesTheVariable(t *testing.T) {
	_, err := load(t, nil)
	if err == nil || !strings.Contains(err.Error(), "AGENT_TOKEN") {
		t.Fatalf("missing token: %v", err)
	}
	_, err = load(t, []string{"AGENT_TOKEN=short"})
	if err == nil || !strings.Contains(err.Error(), "token: too short") {
		t.Fatalf("short token: %v", err)
	}
}

func TestFlagsAndEnvironment(t *testing.T) {
	cfg, err := load(t, []string{"AGENT_TOKEN=0123456789abcdef", "NULLOPS_DATADIR=/var/lib/x"},
		"--listen=127.0.0.1:7000", "--debug.zerousage", "--metricsinterval=2s")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/var/lib/x" || cfg.Listen != "127.0.0.1:7000" || !cfg.Debug.ZeroUsage {
		t.Fatalf("%+v", cfg)
	}
	if _, err := load(t, []string{"AGENT_TOKEN=0123456789abcdef"}, "--listen=nonsense"); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("bad listen: %v", err)
	}
}

func TestDefaultDataDir(t *testing.T) {
	saved := containerMarkers
	t.Cleanup(func() { containerMarkers = saved })
	marker := filepath.Join(t.TempDir(), ".dockerenv")
	containerMarkers = []string{marker}

	t.Setenv("XDG_STATE_HOME", "/tmp/state")
	if d := DefaultDataDir(); d != "/tmp/state/nullops-agent" {
		t.Fatalf("XDG_STATE_HOME: %s", d)
	}
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", "/home/u")
	if d := DefaultDataDir(); d != "/home/u/.local/state/nullops-agent" {
		t.Fatalf("HOME: %s", d)
	}
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if d := DefaultDataDir(); d != "/data" {
		t.Fatalf("in a container the default is /data, got %s", d)
	}
}

func TestDockerNetworkOptions(t *testing.T) {
	tok := "AGENT_TOKEN=0123456789abcdef"
	cfg, err := load(t, []string{tok, "NULLOPS_DOCKER_SUBNETPOOL=10.50.0.0/16"}, "--docker.subnetbits=26", "--docker.publiship=127.0.0.1")
	if err != nil || cfg.Docker.SubnetPool != "10.50.0.0/16" || cfg.Docker.SubnetBits != 26 || cfg.Docker.PublishIP != "127.0.0.1" {
		t.Fatalf("%+v %v", cfg.Docker, err)
	}
	for _, c := range []struct{ arg, key string }{
		{"--docker.subnetpool=nonsense", "docker.subnetpool"},
		{"--docker.subnetpool=fd00::/64", "docker.subnetpool"},
		{"--docker.subnetbits=30", "docker.subnetbits"},
		{"--docker.subnetbits=12", "docker.subnetbits"},
		{"--docker.publiship=localhost", "docker.publiship"},
	} {
		if _, err := load(t, []string{tok}, c.arg); err == nil || !strings.Contains(err.Error(), c.key+":") {
			t.Errorf("%s: %v (want an error naming %s)", c.arg, err, c.key)
		}
	}
}

func TestRuntimeOption(t *testing.T) {
	tok := "AGENT_TOKEN=0123456789abcdef"
	cfg, err := load(t, []string{tok})
	if err != nil || cfg.Runtime != "docker" {
		t.Fatalf("default runtime %q, %v; want docker", cfg.Runtime, err)
	}
	cfg, err = load(t, []string{tok, "NULLOPS_RUNTIME=kubernetes"})
	if err != nil || cfg.Runtime != "kubernetes" {
		t.Fatalf("NULLOPS_RUNTIME=kubernetes: %q, %v", cfg.Runtime, err)
	}
	if _, err := load(t, []string{tok}, "--runtime=podman"); err == nil || !strings.Contains(err.Error(), "runtime:") {
		t.Fatalf("--runtime=podman: %v (want an error naming runtime)", err)
	}
}

func TestKubernetesRouteHostOption(t *testing.T) {
	tok := "AGENT_TOKEN=0123456789abcdef"
	cfg, err := load(t, []string{tok, "NULLOPS_RUNTIME=kubernetes", "NULLOPS_KUBERNETES_ROUTEHOST=lb.cluster.example"})
	if err != nil || cfg.Kubernetes.RouteHost != "lb.cluster.example" {
		t.Fatalf("NULLOPS_KUBERNETES_ROUTEHOST: %q, %v", cfg.Kubernetes.RouteHost, err)
	}
	cfg, err = load(t, []string{tok}, "--kubernetes.routehost=10.1.2.3")
	if err != nil || cfg.Kubernetes.RouteHost != "10.1.2.3" {
		t.Fatalf("--kubernetes.routehost: %q, %v", cfg.Kubernetes.RouteHost, err)
	}
	for _, bad := range []string{"10.1.2.3:30080", "http://lb", "lb cluster"} {
		if _, err := load(t, []string{tok}, "--kubernetes.routehost="+bad); err == nil || !strings.Contains(err.Error(), "kubernetes.routehost:") {
			t.Errorf("--kubernetes.routehost=%s: %v (want an error naming kubernetes.routehost)", bad, err)
		}
	}
}
