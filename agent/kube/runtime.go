// Package kube is the agent's Kubernetes runtime: it runs a node's
// deployments through the Kubernetes API (k8s.io/client-go) instead of a
// Docker daemon. One namespace per deployment holds everything the
// deployment made: a ResourceQuota equal to its budget, a NetworkPolicy
// set, one Deployment (1 replica) and one Service per service node (named
// after the pipeline node id, so services find each other by the same
// names as on Docker), the Secrets that carry env values and registry
// credentials, and the one-shot pods of plugin steps. Deleting a
// deployment deletes its namespace and waits until it is gone.
//
// Every object carries the labels of docs/architecture.md, "Agent", and
// every query is restricted to this node's label, so several agents may
// share one cluster (docs/kubernetes.md, "Mapping").
package kube

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/nullops/nullops/agent/runtime"
	"github.com/nullops/nullops/protocol"
)

// Labels put on every object (the Docker label scheme, runtime.Label*).
const (
	LabelManaged    = runtime.LabelManaged
	LabelNode       = runtime.LabelNode
	LabelNodeUID    = runtime.LabelNodeUID
	LabelDeployment = runtime.LabelDeployment
	LabelService    = runtime.LabelService
	LabelStep       = runtime.LabelStep
)

var (
	_ runtime.Runtime      = (*Runtime)(nil)
	_ runtime.HostProvider = (*Runtime)(nil)
)

// Config configures a Runtime.
type Config struct {
	// Node is this agent's node name; it labels and scopes every object.
	Node string
	// Kubeconfig is the path of a kubeconfig file; empty means the
	// in-cluster configuration (the agent runs as a pod with a
	// ServiceAccount).
	Kubeconfig string
	// Context is the kubeconfig context to use ("" = its current context).
	Context string
	// REST, when set, is used as it is (tests).
	REST *rest.Config
	// WorkloadRole, when set, is the ClusterRole bound (RoleBinding
	// "nullops-agent") in every deployment namespace to ServiceAccount, right
	// after the namespace is created: an agent whose cluster-wide rights do
	// not include the objects it creates there (docs/kubernetes.md, RBAC).
	WorkloadRole string
	// ServiceAccount is "namespace/name" of the agent's ServiceAccount
	// (WorkloadRole's subject).
	ServiceAccount string
	// RouteHost, when set, is the address the ingress reaches the NodePorts
	// of exposed services on (a load balancer, or a node address the
	// ingress can reach): reported with every published port
	// (ServiceInfo.RouteHost) instead of the node's host.
	RouteHost string
}

// Runtime runs a node's deployments in one Kubernetes cluster.
type Runtime struct {
	cs        kubernetes.Interface
	rest      *rest.Config
	node      string // the node name as given
	nodeLabel string // the node name as a label value

	workloadRole string
	saNamespace  string
	saName       string
	routeHost    string

	uidMu   sync.Mutex
	nodeUID string // the control plane's node uid, "" until the first sync

	sums summaries // kubelet summaries, cached briefly (stats.go)

	privMu  sync.Mutex
	private map[string]bool // image references started with credentials (images.go)

	// recovered counts plugin runs whose output came from the pod's log
	// because the attach delivered none (oneshot.go).
	recovered atomic.Int64
	// attachHook replaces the attach of RunOneShot (tests).
	attachHook func(ctx context.Context, ns, pod string, input []byte, stdout, stderr io.Writer) error
}

// RESTConfig loads the client configuration: the kubeconfig file when
// path is set, else the in-cluster configuration.
func RESTConfig(path, kubeContext string) (*rest.Config, error) {
	if path == "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("kubernetes in-cluster configuration (set kubernetes.kubeconfig when the agent runs outside the cluster): %w", err)
		}
		return cfg, nil
	}
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: path}
	over := &clientcmd.ConfigOverrides{CurrentContext: kubeContext}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, over).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	return cfg, nil
}

// quietKlog stops client-go's own logging (klog, to stderr): the runtime
// reports every error it meets to its caller, and the agent logs those.
var quietKlog sync.Once

// New builds the client (no request is made; Ping checks the API server).
func New(cfg Config) (*Runtime, error) {
	quietKlog.Do(func() { klog.SetLogger(logr.Discard()) })
	if cfg.Node == "" {
		return nil, fmt.Errorf("kubernetes runtime: node name is required")
	}
	rc := cfg.REST
	if rc == nil {
		var err error
		if rc, err = RESTConfig(cfg.Kubeconfig, cfg.Context); err != nil {
			return nil, err
		}
	}
	rc = rest.CopyConfig(rc)
	if rc.UserAgent == "" {
		rc.UserAgent = "nullops-agent"
	}
	// The client's default (5 QPS, burst 10) throttles a pipeline of a
	// dozen services noticeably; the API server has its own fairness.
	if rc.QPS == 0 {
		rc.QPS, rc.Burst = 50, 100
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	r := &Runtime{cs: cs, rest: rc, node: cfg.Node, nodeLabel: labelValue(cfg.Node), workloadRole: cfg.WorkloadRole, routeHost: cfg.RouteHost}
	if cfg.RouteHost != "" && !protocol.ValidHost(cfg.RouteHost) {
		return nil, fmt.Errorf("kubernetes runtime: routehost %q is not a host name or IP address (no scheme, no port)", cfg.RouteHost)
	}
	if cfg.WorkloadRole != "" {
		ns, name, ok := strings.Cut(cfg.ServiceAccount, "/")
		if !ok || ns == "" || name == "" {
			return nil, fmt.Errorf("kubernetes runtime: serviceaccount %q is not namespace/name (needed with workloadrole)", cfg.ServiceAccount)
		}
		r.saNamespace, r.saName = ns, name
	}
	return r, nil
}

// Client is the Kubernetes clientset (tests look at objects with it).
func (r *Runtime) Client() kubernetes.Interface { return r.cs }

// Close releases nothing: the clientset holds only idle connections.
func (r *Runtime) Close() error { return nil }

// Name is runtime.Kubernetes.
func (r *Runtime) Name() string { return runtime.Kubernetes }

// Capabilities: health checks are the pods' readiness probes (the agent
// need not reach pod addresses); no plugin gets the Docker socket.
func (r *Runtime) Capabilities() runtime.Capabilities {
	return runtime.Capabilities{HealthChecks: true}
}

// Node is the node name this runtime is scoped to.
func (r *Runtime) Node() string { return r.node }

// Ping checks that the API server answers.
func (r *Runtime) Ping(ctx context.Context) error {
	res := r.cs.Discovery().RESTClient().Get().AbsPath("/version").Do(ctx)
	if err := res.Error(); err != nil {
		return fmt.Errorf("kubernetes api: %w", err)
	}
	return nil
}

// SetNodeUID records the control plane's identifier of this node: objects
// created from now on carry it (LabelNodeUID), so an agent that replaces
// this one — with a new data dir, hence a new instance label — can find
// them (Predecessors).
func (r *Runtime) SetNodeUID(uid string) {
	r.uidMu.Lock()
	r.nodeUID = labelValue(uid)
	r.uidMu.Unlock()
}

// NodeUID is the uid set by SetNodeUID (as a label value), "" before.
func (r *Runtime) NodeUID() string {
	r.uidMu.Lock()
	defer r.uidMu.Unlock()
	return r.nodeUID
}

// labels returns the labels of an object of deployment id.
func (r *Runtime) labels(deploymentID int64, extra ...string) map[string]string {
	return runtime.Labels(r.nodeLabel, r.NodeUID(), deploymentID, extra...)
}

// selector selects this node's managed objects, optionally of one
// deployment (deploymentID > 0) and with extra key=value terms.
func (r *Runtime) selector(deploymentID int64, extra ...string) string {
	terms := []string{LabelManaged + "=true", LabelNode + "=" + r.nodeLabel}
	if deploymentID > 0 {
		terms = append(terms, LabelDeployment+"="+strconv.FormatInt(deploymentID, 10))
	}
	terms = append(terms, extra...)
	return strings.Join(terms, ",")
}

// NamespaceName is the namespace of deployment id on node.
func NamespaceName(node string, deploymentID int64) string {
	return "nullops-" + dnsLabel(node, 30) + "-d" + strconv.FormatInt(deploymentID, 10)
}

// dnsLabel maps s onto a lowercase RFC 1123 label of at most max
// characters; a name that had to change gets a hash of the original, so
// two names never map to the same label.
func dnsLabel(s string, max int) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			b[i] = '-'
		}
	}
	out := strings.Trim(string(b), "-")
	if out == s && len(out) <= max && out != "" {
		return out
	}
	sum := sha256.Sum256([]byte(s))
	h := hex.EncodeToString(sum[:4])
	if len(out) > max-9 {
		out = strings.Trim(out[:max-9], "-")
	}
	if out == "" {
		return "x" + h
	}
	return out + "-" + h
}

// labelValue maps s onto a valid label value (at most 63 characters of
// [A-Za-z0-9._-], alphanumeric at both ends), with a hash when it had to
// change.
func labelValue(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	out := strings.Trim(string(b), "-_.")
	if out == s && len(out) <= 63 {
		return out
	}
	sum := sha256.Sum256([]byte(s))
	h := hex.EncodeToString(sum[:4])
	if len(out) > 54 {
		out = strings.Trim(out[:54], "-_.")
	}
	if out == "" {
		return "x" + h
	}
	return out + "-" + h
}

// createCtx is the context of an API call that creates an object: it runs
// to completion (bounded) even when the caller is cancelled, so a delete
// racing a deploy finds the object when it lists (the Docker runtime does
// the same, see agent/docker).
func createCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
}
