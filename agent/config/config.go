// Package config is the typed configuration of nullops-agent, loaded by
// internal/confload from a file, NULLOPS_* environment variables (AGENT_TOKEN
// is an alias of NULLOPS_TOKEN) and flags.
package config

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	ptypes "github.com/traefik/paerser/types"

	"github.com/nullops/nullops/agent/docker"
	"github.com/nullops/nullops/agent/runtime"
	"github.com/nullops/nullops/internal/logging"
	"github.com/nullops/nullops/protocol"
)

// Aliases are the extra environment variables the agent reads, mapped to
// the NULLOPS_ name they stand for (a NULLOPS_ variable wins). AGENT_TOKEN is
// the name the product documentation's `docker run` line uses.
var Aliases = map[string]string{"AGENT_TOKEN": "NULLOPS_TOKEN"}

// MinTokenLength rejects obviously truncated tokens at start.
const MinTokenLength = 16

// Config is the whole agent configuration.
type Config struct {
	ConfigFile      string          `description:"Configuration file (TOML or YAML); also NULLOPS_CONFIGFILE." export:"true"`
	Listen          string          `description:"Address of the TLS WebSocket endpoint the control plane dials (wss://<host>:<port>/v1/connect)." export:"true"`
	DataDir         string          `description:"Directory of the agent's certificate, event journal and state (/data in the container image)." export:"true"`
	Token           string          `description:"Node token from the control plane (shown once when the node is added); also AGENT_TOKEN." loggable:"false"`
	NodeName        string          `description:"Name of this node in logs (optional)." export:"true"`
	MetricsInterval ptypes.Duration `description:"How often capacity and usage are pushed to the control plane." export:"true"`
	Runtime         string          `description:"What runs the deployments: docker (the Docker Engine of docker.host) or kubernetes (a cluster)." export:"true"`
	Docker          Docker          `description:"Docker Engine access (runtime docker)." export:"true"`
	Kubernetes      Kubernetes      `description:"Kubernetes API access (runtime kubernetes)." export:"true"`
	Capacity        Capacity        `description:"What the node advertises for placement (default: what the host has)." export:"true"`
	Log             logging.Config  `description:"Logging." export:"true"`
	Debug           Debug           `description:"Test-only switches; all off by default." export:"true"`
}

// Docker configures the Docker Engine client.
type Docker struct {
	Host       string `description:"Docker Engine address, e.g. unix:///var/run/docker.sock (default: DOCKER_HOST or the local socket)." export:"true"`
	SubnetPool string `description:"IPv4 range deployment networks are carved from, one subnet each; must not overlap the node's other networks." export:"true"`
	SubnetBits int    `description:"Prefix length of one deployment network (16–29); /24 in a /16 pool gives 256 deployments." export:"true"`
	PublishIP  string `description:"Host address published service ports bind to; the ingress must reach it (0.0.0.0 = every address)." export:"true"`
	// PluginSocket is off by default: a plugin the catalog marks
	// docker_socket fails on this node until the node's operator allows it.
	PluginSocket bool `description:"Allow plugins that an admin marked docker_socket in the catalog to get this node's Docker socket (/var/run/docker.sock), which is root on the node; off by default, such plugin steps then fail." export:"true"`
}

// Kubernetes configures the Kubernetes API client (docs/kubernetes.md).
type Kubernetes struct {
	Kubeconfig string `description:"Path of a kubeconfig file; empty = the in-cluster configuration of the agent's pod (its ServiceAccount)." export:"true"`
	Context    string `description:"Context of the kubeconfig to use (default: its current context)." export:"true"`
	// StateSecret keeps the agent's identity across pod restarts when the
	// data dir is not on a persistent volume.
	StateSecret    string `description:"Name of a Secret in statenamespace (default: the agent pod's namespace) that keeps the agent's certificate, key and trust record across pod restarts; empty = the data dir only." export:"true"`
	StateNamespace string `description:"Namespace of statesecret (default: the namespace of the agent's pod)." export:"true"`
	WorkloadRole   string `description:"ClusterRole bound to the agent's ServiceAccount in every deployment namespace it creates (the install manifest's nullops-agent-workloads); empty = none (the agent's own rights cover those namespaces)." export:"true"`
	ServiceAccount string `description:"The agent's ServiceAccount as namespace/name, the subject of workloadrole (default: nullops-agent in the agent pod's namespace)." export:"true"`
	// RouteHost separates the ingress's way to the services from the
	// control plane's way to the agent.
	RouteHost string `description:"Host name or IP address the ingress reaches exposed services' NodePorts on (a load balancer in front of the NodePorts, or a cluster node address the ingress can reach); empty = the node's host in NullOps (where the control plane dials the agent)." export:"true"`
}

// containerMarkers are files Docker and Podman create in every container.
var containerMarkers = []string{"/.dockerenv", "/run/.containerenv"}

// InContainer reports whether the agent runs inside a container.
func InContainer() bool {
	for _, f := range containerMarkers {
		if _, err := os.Stat(f); err == nil {
			return true
		}
	}
	return false
}

// DefaultDataDir is /data inside a container, otherwise
// $XDG_STATE_HOME/nullops-agent or ~/.local/state/nullops-agent.
func DefaultDataDir() string {
	if InContainer() {
		return "/data"
	}
	if x := os.Getenv("XDG_STATE_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "nullops-agent")
	}
	if home, err := os.UserHomeDir(); err == nil && home != "" && home != "/" {
		return filepath.Join(home, ".local", "state", "nullops-agent")
	}
	return "/data"
}

// Defaults returns the default configuration.
func Defaults() *Config {
	return &Config{
		Listen:          ":5000",
		DataDir:         DefaultDataDir(),
		MetricsInterval: ptypes.Duration(15 * time.Second),
		Runtime:         runtime.Docker,
		Docker:          Docker{SubnetPool: docker.DefaultSubnetPool, SubnetBits: 24, PublishIP: "0.0.0.0"},
		Capacity:        Capacity{OtherCPUSmoothing: ptypes.Duration(time.Minute)},
		Log:             logging.Defaults(),
	}
}

// Validate checks every value and names the bad key.
func (c *Config) Validate() error {
	if err := c.Log.Validate(); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen: %q is not host:port: %v", c.Listen, err)
	}
	if c.DataDir == "" {
		return fmt.Errorf("datadir: required")
	}
	if c.Token == "" {
		return fmt.Errorf("token (AGENT_TOKEN or NULLOPS_TOKEN): required; it is shown once when the node is added in NullOps (rotate the node's token to get a new one)")
	}
	if len(c.Token) < MinTokenLength {
		return fmt.Errorf("token: too short (%d characters); copy the whole token NullOps showed", len(c.Token))
	}
	switch c.Runtime {
	case runtime.Docker, runtime.Kubernetes:
	default:
		return fmt.Errorf("runtime: %q is not a runtime (docker or kubernetes)", c.Runtime)
	}
	if c.MetricsInterval < ptypes.Duration(time.Second) {
		return fmt.Errorf("metricsinterval: must be at least 1s")
	}
	if c.Capacity.CPUs < 0 || c.Capacity.MemoryMB < 0 {
		return fmt.Errorf("capacity.cpus and capacity.memorymb: must not be negative (0 = what the host has)")
	}
	if c.Capacity.OtherCPUSmoothing < 0 || c.Capacity.OtherCPUSmoothing > ptypes.Duration(time.Hour) {
		return fmt.Errorf("capacity.othercpusmoothing: must be between 0 (not smoothed) and 1h")
	}
	pool, err := netip.ParsePrefix(c.Docker.SubnetPool)
	if err != nil || !pool.Addr().Is4() {
		return fmt.Errorf("docker.subnetpool: %q is not an IPv4 CIDR range such as 10.213.0.0/16", c.Docker.SubnetPool)
	}
	if c.Docker.SubnetBits < pool.Bits() || c.Docker.SubnetBits > 29 || c.Docker.SubnetBits < 16 {
		return fmt.Errorf("docker.subnetbits: /%d networks do not fit in %s (use 16–29, at least the pool's /%d)", c.Docker.SubnetBits, pool, pool.Bits())
	}
	if _, err := netip.ParseAddr(c.Docker.PublishIP); err != nil {
		return fmt.Errorf("docker.publiship: %q is not an IP address", c.Docker.PublishIP)
	}
	if h := c.Kubernetes.RouteHost; h != "" && !protocol.ValidHost(h) {
		return fmt.Errorf("kubernetes.routehost: %q is not a host name or IP address (no scheme, no port: the NodePort is added)", h)
	}
	return c.Debug.validate()
}
