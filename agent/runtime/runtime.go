// Package runtime is the contract between the agent's executor and the
// system that runs its workloads: the Docker Engine (agent/docker) or a
// Kubernetes cluster (agent/kube). The executor, the journal and the
// control-plane protocol are the same whichever runtime the agent is
// configured with (docs/architecture.md, "Agent"); everything that differs
// sits behind Runtime.
//
// The vocabulary is the runtime's neutral one:
//
//   - a deployment owns objects (containers, networks and volumes on Docker;
//     a namespace and what is in it on Kubernetes), every one labelled with
//     this node's labels (LabelManaged, LabelNode, LabelNodeUID,
//     LabelDeployment and LabelService or LabelStep);
//   - a workload is what runs a service or a plugin step (a Docker
//     container, a Kubernetes pod); its ID is the handle the executor keeps
//     and passes back to InspectService, Logs, Stats, Exec and StartWorkload;
//   - a deployment's network is where its services reach each other by their
//     pipeline node id as host name.
//
// No Docker or Kubernetes type appears here.
package runtime

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"strconv"
	"time"

	"github.com/nullops/nullops/protocol"
)

// Names of the runtimes (the agent's `runtime` option).
const (
	Docker     = "docker"
	Kubernetes = "kubernetes"
)

// Labels put on every object a runtime creates (defined in protocol:
// plugins with the Docker socket check them too). On Kubernetes they are
// labels of the objects too (values are made label-safe by the runtime).
const (
	LabelManaged    = protocol.LabelManaged
	LabelNode       = protocol.LabelNode
	LabelNodeUID    = protocol.LabelNodeUID
	LabelDeployment = protocol.LabelDeployment
	LabelService    = protocol.LabelService
	LabelStep       = protocol.LabelStep
)

// Labels returns the labels of an object of deployment id that a runtime
// creates for node: LabelManaged, LabelNode, LabelDeployment, LabelNodeUID
// when uid is set, and the extra key, value pairs (LabelService or
// LabelStep and its name). node and uid are the values as the runtime
// writes them.
func Labels(node, uid string, deploymentID int64, extra ...string) map[string]string {
	l := map[string]string{
		LabelManaged:    "true",
		LabelNode:       node,
		LabelDeployment: strconv.FormatInt(deploymentID, 10),
	}
	if uid != "" {
		l[LabelNodeUID] = uid
	}
	for i := 0; i+1 < len(extra); i += 2 {
		l[extra[i]] = extra[i+1]
	}
	return l
}

// Errors a runtime returns, wrapped (test them with errors.Is).
var (
	// ErrNotFound: the workload (or object) named by an id does not exist
	// (any more). InspectService, StartWorkload, Exec, Logs and Stats wrap
	// it; Remove and RemoveDeployment never return it (a missing object is
	// already removed).
	ErrNotFound = errors.New("not found")
	// ErrImageNotFound: the registry does not have the image (or the tag).
	ErrImageNotFound = errors.New("image not found")
	// ErrPull: pulling failed for another reason (auth, registry down, …).
	ErrPull = errors.New("pull failed")
	// ErrAccessDenied: the registry refused the given credentials (or no
	// credentials) for an image that is cached on this node.
	ErrAccessDenied = errors.New("registry access not confirmed")
	// ErrUnsupported: the runtime cannot do what a spec asks (for example
	// give a plugin the Docker socket on Kubernetes). The message says what.
	ErrUnsupported = errors.New("not supported by this runtime")
)

// Runtime runs one node's deployments. Every method is safe for
// concurrent use. Every method that takes a context stops waiting when it
// ends and returns an error wrapping ctx.Err() — except that an object
// whose creation was already sent is created to completion (bounded) so
// that a concurrent RemoveDeployment finds it (no orphans).
//
// Ownership: a runtime lists, watches and removes only objects labelled
// with its own node (LabelNode = Node()), never another agent's, even when
// several agents share one Docker daemon or cluster. Objects it creates
// carry LabelNodeUID once SetNodeUID was called.
type Runtime interface {
	// Name is the runtime's name (Docker or Kubernetes), for logs and
	// messages.
	Name() string
	// Node is the node name the runtime is scoped to (label LabelNode).
	Node() string
	// SetNodeUID records the control plane's permanent id of this node:
	// objects created from now on carry it (LabelNodeUID), so an agent that
	// replaces this one with a lost data dir — hence another Node() — finds
	// them (Predecessors). Cheap; called on every sync.
	SetNodeUID(uid string)
	// Capabilities says which optional features the runtime has.
	Capabilities() Capabilities
	// Close releases the runtime's connections. Objects stay.
	Close() error

	Images
	Workloads
	Inventory
}

// Capabilities are the optional features of a runtime. The executor
// checks them before it asks for one and fails the step with a clear
// message when the runtime lacks it.
type Capabilities struct {
	// DockerSocket: OneShotSpec.DockerSocket is honoured (the host's Docker
	// socket is mounted into the plugin at /var/run/docker.sock).
	DockerSocket bool
	// HealthChecks: the runtime runs a service's health check itself
	// (ServiceSpec.Health: HTTP and command probes, with their interval) and
	// reports the verdict in ServiceInfo.Health ("starting" until the first
	// success, then "healthy" or "unhealthy"). The executor then waits for
	// "healthy" (within the check's timeout) instead of probing the
	// workload's address itself — for runtimes whose workloads the agent
	// cannot reach. Without it the agent probes ServiceInfo.IP directly and
	// runs command checks with Exec.
	HealthChecks bool
}

// Images makes images available to workloads.
type Images interface {
	// ImageID is the id of the copy of ref that this node would start a
	// workload from without asking the registry, "" (and nil) when there is
	// none. A runtime without such a local cache (one that lets its nodes
	// pull per workload, with the workload's credentials) always returns "".
	// The executor keeps a record of ids pulled with credentials so a cached
	// private image never reaches a step without them (CheckAccess).
	ImageID(ctx context.Context, ref string) (string, error)
	// HasImage reports whether starting a workload of ref needs no pull
	// first (sync uses it to decide whether a repair can run at once or
	// must pull in the background). A runtime that pulls per workload
	// returns true.
	HasImage(ctx context.Context, ref string) (bool, error)
	// EnsureImage makes ref available: when it is present it returns at once
	// with pulled=false; otherwise it pulls it with auth (nil = anonymous;
	// used in memory only, never written to disk) and returns pulled=true.
	// progress, if not nil, receives one line per pull status. Errors wrap
	// ErrImageNotFound (the registry has no such image or tag) or ErrPull.
	// A runtime that pulls per workload may only check the reference (and
	// return pulled=false); the workload's spec carries the credentials.
	EnsureImage(ctx context.Context, ref string, auth *protocol.RegistryAuth, progress func(string)) (pulled bool, err error)
	// CheckAccess asks ref's registry for ref's manifest with auth (nil =
	// anonymously): nil when the registry serves it to these credentials,
	// an error wrapping ErrAccessDenied otherwise (also when the registry
	// cannot be reached: access is then not confirmed).
	CheckAccess(ctx context.Context, ref string, auth *protocol.RegistryAuth) error
}

// Workloads runs a deployment's services and plugin steps.
type Workloads interface {
	// EnsureNetwork returns the deployment's network, creating it (with
	// whatever isolation the runtime gives a deployment: a bridge network,
	// a namespace with network policies and a quota of spec.Resources) when
	// it does not exist. Idempotent: a second call returns the same network
	// (it need not update what exists). Labelled with the deployment.
	EnsureNetwork(ctx context.Context, spec NetworkSpec) (Network, error)
	// StartService (re)creates and starts a service's workload: an existing
	// workload of the same deployment and service is removed first, so this
	// is also how a missing or broken service is recreated. It returns once
	// the workload was started (not once it is healthy: the executor waits
	// for that), with its observed state. Labelled with the deployment and
	// LabelService = spec.Service. The runtime restarts a service whose
	// process exits (Docker's unless-stopped, Kubernetes' Always), counting
	// it in ServiceInfo.RestartCount.
	StartService(ctx context.Context, spec ServiceSpec) (ServiceInfo, error)
	// InspectService reads the state of a service's workload by id.
	// A workload that does not exist is an error wrapping ErrNotFound.
	InspectService(ctx context.Context, id string) (ServiceInfo, error)
	// StartWorkload starts a stopped service workload again (sync, for a
	// service that exists but is not running). Starting a running one is not
	// an error. Missing: ErrNotFound.
	StartWorkload(ctx context.Context, id string) error
	// Exec runs cmd inside the running workload and returns its exit code
	// and combined stdout and stderr (capped at 64 KiB). err is about
	// running it at all; a command that fails is a non-zero code.
	Exec(ctx context.Context, id string, cmd []string) (code int, output string, err error)
	// Logs streams the workload's logs to fn, one call per chunk with its
	// stream ("stdout" or "stderr"). tail is the number of lines from the
	// end (0 = all); follow keeps streaming until ctx ends or the workload
	// stops; timestamps starts each line with the runtime's RFC 3339 receive
	// time and a space. fn returning an error stops the stream and Logs
	// returns. A stream ended by ctx returns nil.
	Logs(ctx context.Context, id string, tail int, follow, timestamps bool, fn func(stream, data string) error) error
	// Stats samples a running workload's CPU and memory.
	Stats(ctx context.Context, id string) (Usage, error)
	// RunOneShot runs a plugin step to completion: it creates the workload,
	// writes Input on its stdin and closes it, streams stdout and stderr to
	// the writers, waits for it to exit — killing it after Timeout (then
	// TimedOut is set and err is nil) or when ctx ends (err wraps ctx.Err())
	// — and always removes it, also on error. A non-zero exit is not an
	// error: it is in the result. Labelled with the deployment and LabelStep
	// = spec.Step while it exists.
	RunOneShot(ctx context.Context, spec OneShotSpec) (OneShotResult, error)
	// WatchServices streams the start/exit/oom events of this node's
	// service workloads to fn (called from one goroutine, in order) until
	// ctx ends; it returns then. When the stream breaks it is opened again
	// after retry, and resumed (if not nil) is called first so the caller
	// can re-read what it may have missed. Events of step workloads are not
	// sent.
	WatchServices(ctx context.Context, retry time.Duration, resumed func(), fn func(ServiceEvent))
}

// Inventory finds and removes what this node made (reconciliation,
// rollback, delete).
type Inventory interface {
	// ListManaged lists this node's objects; with deploymentID > 0 only
	// those of that deployment. Every service workload is one Object of
	// Kind KindWorkload with Service set; the rest may be listed object by
	// object (Docker: networks, volumes, plugin containers) or by what
	// holds them (Kubernetes: the deployment's namespace), as long as
	// Remove of the list removes everything the deployment has here.
	ListManaged(ctx context.Context, deploymentID int64) ([]Object, error)
	// Predecessors lists the objects labelled with node uid that another
	// agent instance made (their LabelNode is not Node()): what an agent of
	// the same node left behind when its data dir was lost — enough that
	// Remove of the list removes all of it (a runtime may list only the
	// holders, e.g. namespaces). This runtime's own objects are not
	// included.
	Predecessors(ctx context.Context, uid string) ([]Object, error)
	// Remove deletes objs (as ListManaged or Predecessors returned them),
	// workloads before what they use. It keeps going past failures and
	// returns the names it removed and the errors it met. An object that is
	// already gone counts as removed.
	Remove(ctx context.Context, objs []Object) (removed []string, err error)
	// RemoveDeployment removes every object of the deployment on this node
	// and returns once none is left (an object being created concurrently
	// is caught by a later pass), with the names it removed. Idempotent:
	// for a deployment with nothing left it returns (nil, nil).
	// deploymentID must be > 0.
	RemoveDeployment(ctx context.Context, deploymentID int64) (removed []string, err error)
}

// Object kinds. KindWorkload is the only kind the executor interprets
// (a service's or a step's workload); the others are for Remove and for
// messages, and a runtime may use kinds of its own.
const (
	KindWorkload = "workload"
	KindNetwork  = "network"
	KindVolume   = "volume"
)

// Object is one object of this node's deployments.
type Object struct {
	Kind         string
	ID           string // the runtime's handle (for a workload: as in ServiceInfo.ID)
	Name         string // shown in messages and in sync's removed list
	DeploymentID int64  // LabelDeployment, 0 when it has none
	Service      string // LabelService (service workloads)
	Step         string // LabelStep (step workloads)
	Running      bool   // workloads: running (a restarting one is not)
	Restarting   bool   // workloads: the runtime is bringing it back after an exit
	State        string // workloads: the runtime's own word for the state, for messages
}

// NetworkSpec describes a deployment's network.
type NetworkSpec struct {
	DeploymentID int64
	// Resources is the deployment's whole budget (protocol.DeploySpec
	// Resources): a runtime that can enforce it on the deployment as a whole
	// (a Kubernetes ResourceQuota) does; each service's own limits are in
	// ServiceSpec.Resources either way. Plugin steps are outside it.
	Resources protocol.Resources
}

// Network is a deployment's network.
type Network struct {
	ID   string
	Name string // given to plugins (sdk Deployment.Network) and to specs
	// Subnet is the network's address range when the runtime assigns one
	// (Docker), invalid otherwise.
	Subnet netip.Prefix
}

// ServiceSpec describes one long-running service.
type ServiceSpec struct {
	DeploymentID int64
	Service      string // pipeline node id: its host name in the network, and LabelService
	Image        string
	// Auth pulls Image (nil = anonymous). A runtime with a local image cache
	// has it already (EnsureImage ran first) and may ignore it.
	Auth        *protocol.RegistryAuth
	Env         map[string]string
	Ports       []int // ports the service listens on
	PublishPort int   // >0: reachable from the node's publish address at ServiceInfo.HostPort (ingress)
	// HealthPort is the port an HTTP health check probes (the node's port,
	// else the service's first port; 0 when it has none).
	HealthPort int
	// Health is the service's health check (nil = none). Only a runtime
	// with Capabilities().HealthChecks uses it; otherwise the executor
	// probes.
	Health    *protocol.Health
	Resources protocol.Resources
	Network   string // Network.Name of the deployment
}

// ServiceInfo is the observed state of a service's workload.
type ServiceInfo struct {
	ID   string // the workload's handle (the protocol calls it container_id)
	Name string
	// IP is the workload's address in the deployment network, which the
	// agent probes HTTP health checks on; invalid when it has none (yet).
	IP       netip.Addr
	HostPort int // the published port (PublishPort), 0 if none
	// RouteHost is where the ingress reaches HostPort when that is not the
	// node's host (the address the control plane dials the agent on): the
	// runtime's configured route address; "" = the node's host.
	RouteHost  string
	Running    bool // its process runs (may be true while Restarting: check State)
	Restarting bool // the runtime is restarting it after an exit
	Status     string
	ExitCode   int // of the last exit
	// Health is the runtime's own health check of the workload (an image's
	// HEALTHCHECK on Docker): "healthy", "unhealthy" or "starting"; "" when
	// there is none.
	Health string
	// RestartCount is how often the runtime restarted the workload since it
	// was created.
	RestartCount int
	OOMKilled    bool      // the last exit was the kernel's OOM killer
	FinishedAt   time.Time // of the last exit; zero when it never exited
	Labels       map[string]string
}

// Service states as reported to the control plane.
const (
	StateRunning    = "running"
	StateRestarting = "restarting"
	StateExited     = "exited"
	StateOOMKilled  = "oom-killed"
)

// State condenses the workload's state: running; restarting (the runtime
// restarts it after a crash); exited; oom-killed (the last exit was the
// OOM killer and it is not running). A restarting workload may count as
// running, so that is checked first.
func (i ServiceInfo) State() string {
	switch {
	case i.Running && !i.Restarting:
		return StateRunning
	case i.OOMKilled:
		return StateOOMKilled
	case i.Restarting:
		return StateRestarting
	default:
		return StateExited
	}
}

// Usage is one workload's resource usage.
type Usage struct {
	CPUPercent  float64 // of one CPU (100 = one full core)
	MemoryBytes int64   // without page cache
}

// OneShotSpec describes a run-to-completion workload (a plugin step).
type OneShotSpec struct {
	DeploymentID int64
	Step         string
	Attempt      int
	Image        string
	Auth         *protocol.RegistryAuth // see ServiceSpec.Auth
	Input        []byte                 // written to stdin, then stdin is closed
	Resources    protocol.Resources
	// Network is the deployment network to join (Network.Name); "" = none
	// of the deployment's (Docker's default bridge; on Kubernetes the
	// runtime's choice, without access to the deployment's services).
	Network string
	// DockerSocket, when not "", is the host path of the Docker socket to
	// mount at /var/run/docker.sock (only when Capabilities().DockerSocket;
	// otherwise RunOneShot fails with ErrUnsupported).
	DockerSocket string
	Timeout      time.Duration // 0 = 5 minutes
	Stdout       io.Writer     // nil = discarded
	Stderr       io.Writer     // nil = discarded
}

// OneShotResult is how a one-shot workload ended.
type OneShotResult struct {
	ExitCode  int
	TimedOut  bool
	OOMKilled bool
}

// Service event actions.
const (
	EventStart = "start"
	EventExit  = "die"
	EventOOM   = "oom"
)

// ServiceEvent is a lifecycle event of a service workload of this node.
type ServiceEvent struct {
	Action       string // EventStart, EventExit (Exit is set) or EventOOM
	ID           string // the workload
	DeploymentID int64
	Service      string
	Exit         *Exit
}

// Exit is one exit of a service workload.
type Exit struct {
	ID           string
	DeploymentID int64
	Service      string
	ExitCode     int
	OOMKilled    bool // the OOM killer ended it
	At           time.Time
}

// HasCredentials reports whether auth carries credentials.
func HasCredentials(auth *protocol.RegistryAuth) bool {
	return auth != nil && (auth.Username != "" || auth.Password != "")
}

// Host reports a node's capacity and usage (what agent/hostinfo measures
// on the agent's own host).
type Host interface {
	Capacity() protocol.Capacity
	Usage() protocol.Usage
}

// HostProvider is an optional interface: a runtime whose capacity is not
// the agent's host's (a cluster) implements it, and the agent advertises
// and reports its figures instead of the host's. Usage's CPU fields are the
// runtime's (there is no "other processes" share to smooth then).
type HostProvider interface {
	Host() Host
}
