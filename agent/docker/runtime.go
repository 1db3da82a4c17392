// Package docker is the agent's Docker runtime (agent/runtime.Runtime): it
// talks to the Docker Engine API (github.com/moby/moby/client) to pull
// images, create one bridge network per deployment, run service containers
// and one-shot plugin containers, and find and remove everything a
// deployment created. A workload is a container; its id is the workload id.
//
// Every object carries the labels of docs/architecture.md, "Agent" and every query is
// restricted to this node's label, so several agents can share one daemon.
//
// Docker-only and behind the interface: the subnet pool of deployment
// networks, the agent joining those networks when it runs in a container
// itself (self.go), the Docker socket for plugins (Capabilities), and
// ListAll/Uninstall (nullops-agent uninstall).
package docker

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/moby/client"

	"github.com/nullops/nullops/agent/runtime"
)

// Labels put on every Docker object the agent creates (defined in protocol:
// plugins with the Docker socket check them too).
const (
	LabelManaged    = runtime.LabelManaged
	LabelNode       = runtime.LabelNode
	LabelNodeUID    = runtime.LabelNodeUID
	LabelDeployment = runtime.LabelDeployment
	LabelService    = runtime.LabelService
	LabelStep       = runtime.LabelStep
)

// The Docker runtime is a runtime.Runtime.
var _ runtime.Runtime = (*Runtime)(nil)

// DefaultSubnetPool gives 256 deployment networks of /24 each.
const DefaultSubnetPool = "10.213.0.0/16"

// Config configures a Runtime.
type Config struct {
	// Node is this agent's node name; it labels and scopes every object.
	Node string
	// Host is the Docker daemon address (e.g. unix:///var/run/docker.sock);
	// empty means DOCKER_HOST or the platform default.
	Host string
	// PublishIP is the host address published service ports bind to
	// (default 0.0.0.0).
	PublishIP string
	// SubnetPool is the range deployment networks are carved from
	// (default DefaultSubnetPool).
	SubnetPool string
	// SubnetBits is the prefix length of one deployment network (default 24).
	SubnetBits int
}

// Runtime runs a node's deployments on one Docker daemon.
type Runtime struct {
	cli       *client.Client
	node      string
	publishIP netip.Addr
	// portRetries counts container starts tried again because the host
	// port Docker picked was in use outside Docker.
	portRetries atomic.Int64
	pool        netip.Prefix
	subnetBits  int

	netMu sync.Mutex // serialises subnet allocation in this process

	uidMu   sync.Mutex
	nodeUID string // the control plane's node uid, "" until the first sync

	selfMu      sync.Mutex // guards self, selfChecked (see self.go)
	self        string     // the agent's own container id, "" when not in one
	selfChecked bool
}

// New connects to the daemon (API version negotiated with the daemon).
func New(cfg Config) (*Runtime, error) {
	if cfg.Node == "" {
		return nil, fmt.Errorf("docker runtime: node name is required")
	}
	if cfg.PublishIP == "" {
		cfg.PublishIP = "0.0.0.0"
	}
	if cfg.SubnetPool == "" {
		cfg.SubnetPool = DefaultSubnetPool
	}
	if cfg.SubnetBits == 0 {
		cfg.SubnetBits = 24
	}
	ip, err := netip.ParseAddr(cfg.PublishIP)
	if err != nil {
		return nil, fmt.Errorf("docker runtime: publish ip: %w", err)
	}
	pool, err := netip.ParsePrefix(cfg.SubnetPool)
	if err != nil {
		return nil, fmt.Errorf("docker runtime: subnet pool: %w", err)
	}
	pool = pool.Masked()
	if !pool.Addr().Is4() || cfg.SubnetBits < pool.Bits() || cfg.SubnetBits > 29 {
		return nil, fmt.Errorf("docker runtime: subnet pool %s cannot hold /%d networks", pool, cfg.SubnetBits)
	}
	opts := []client.Opt{client.FromEnv}
	if cfg.Host != "" {
		opts = append(opts, client.WithHost(cfg.Host))
	}
	cli, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return &Runtime{cli: cli, node: cfg.Node, publishIP: ip, pool: pool, subnetBits: cfg.SubnetBits}, nil
}

// createCtx is the context of an Engine call that creates an object. When
// a caller's context is cancelled mid-call (a delete stopping a deploy), the
// client gives up but the daemon may still finish creating the object — after
// the delete has listed the deployment's objects and found none, leaving an
// orphan. So creations run to completion (bounded by a timeout) and the
// caller notices its cancellation at its next step, with the object listed.
func createCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
}

// Close releases the client.
func (r *Runtime) Close() error { return r.cli.Close() }

// Client exposes the Engine API client (benchmarks compare against it).
func (r *Runtime) Client() *client.Client { return r.cli }

// Name is runtime.Docker.
func (r *Runtime) Name() string { return runtime.Docker }

// Capabilities: plugins may get the Docker socket (when the executor's
// configuration allows it).
func (r *Runtime) Capabilities() runtime.Capabilities {
	return runtime.Capabilities{DockerSocket: true}
}

// Node is the node name this runtime is scoped to.
func (r *Runtime) Node() string { return r.node }

// Ping checks that the daemon answers.
func (r *Runtime) Ping(ctx context.Context) error {
	if _, err := r.cli.Ping(ctx, client.PingOptions{}); err != nil {
		return fmt.Errorf("docker ping: %w", err)
	}
	return nil
}

// SetNodeUID records the control plane's identifier of this node: objects
// created from now on carry it (LabelNodeUID), so an agent that replaces
// this one on the same daemon — with a new data dir, hence a new instance
// label — can find them (Predecessors).
func (r *Runtime) SetNodeUID(uid string) {
	r.uidMu.Lock()
	r.nodeUID = uid
	r.uidMu.Unlock()
}

// NodeUID is the uid set by SetNodeUID, "" before.
func (r *Runtime) NodeUID() string {
	r.uidMu.Lock()
	defer r.uidMu.Unlock()
	return r.nodeUID
}

// labels returns the labels of an object of deployment id.
func (r *Runtime) labels(deploymentID int64, extra ...string) map[string]string {
	return runtime.Labels(r.node, r.NodeUID(), deploymentID, extra...)
}

// filters selects this node's managed objects, optionally of one deployment
// (deploymentID > 0) and with extra label=value terms.
func (r *Runtime) filters(deploymentID int64, extra ...string) client.Filters {
	f := client.Filters{}
	f.Add("label", LabelManaged+"=true", LabelNode+"="+r.node)
	if deploymentID > 0 {
		f.Add("label", LabelDeployment+"="+strconv.FormatInt(deploymentID, 10))
	}
	for _, e := range extra {
		f.Add("label", e)
	}
	return f
}

// NetworkName is the name of deployment id's network on node.
func NetworkName(node string, deploymentID int64) string {
	return fmt.Sprintf("nullops-%s-d%d", nameSafe(node), deploymentID)
}

// ServiceContainerName is the name of a service container.
func ServiceContainerName(node string, deploymentID int64, service string) string {
	return fmt.Sprintf("nullops-%s-d%d-%s", nameSafe(node), deploymentID, nameSafe(service))
}

// nameSafe maps s onto the characters Docker allows in object names.
func nameSafe(s string) string {
	b := []byte(s)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
		if !ok {
			b[i] = '_'
		}
	}
	return string(b)
}
