// Package protocol is the wire contract between nullops-server and
// nullops-agent. Both sides import it; no message shape is defined anywhere
// else. One JSON Envelope travels per WebSocket text frame.
//
// Direction: the server dials the agent at wss://<host>:<port>/v1/connect,
// presenting the node token as "Authorization: Bearer <token>". Requests carry
// an ID; replies carry ReplyTo with the same type as the request (or
// TypeError). Journaled agent events carry a Seq and are acknowledged with
// TypeAck; everything else is fire-and-forget.
package protocol

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Version is the protocol version. Bump it whenever a message type is
// removed or renamed, a field changes meaning or type, or a new message
// becomes mandatory; adding an optional field does not need a bump. The
// server refuses agents whose Version differs (node status "incompatible").
const Version = 1

// PathConnect is the agent's WebSocket endpoint.
const PathConnect = "/v1/connect"

// HeaderEpoch carries the control plane's connection epoch on the
// WebSocket upgrade request: a number the server increases for every dial
// of a node. The agent persists the highest epoch it accepted and refuses a
// lower one (a stale dialer); a connection without the header has epoch 0.
const HeaderEpoch = "Nullops-Connection-Epoch"

// MaxEpochStep is how far above the highest epoch it accepted the agent
// takes a new one. The server raises a node's epoch by one per dial or
// change of owner, so it never comes near; a caller holding the token
// cannot push the agent's epoch out of the server's reach (the server
// catches up with a refusal's epoch, up to 2^62) in a few connections.
const MaxEpochStep = 1 << 32

// RefusedBusy is the HTTP status (409) and RefusedBody the JSON body with
// which the agent refuses an authenticated connection it will not take: a
// healthy control-plane connection exists, or the epoch is stale.
const RefusedBusy = 409

// Refused is the body of a 409 refusal.
type Refused struct {
	Error string `json:"error"`
	Epoch uint64 `json:"epoch"` // the highest epoch the agent accepted
}

// Labels the agent puts on every Docker object it creates
// (docs/architecture.md, "Agent"); plugins given the Docker socket check
// them before touching a container.
const (
	LabelManaged    = "nullops.managed"
	LabelNode       = "nullops.node"
	LabelNodeUID    = "nullops.node_uid"
	LabelDeployment = "nullops.deployment"
	LabelService    = "nullops.service"
	LabelStep       = "nullops.step"
)

// MaxMessageBytes bounds one frame (deploy specs with large graphs fit).
const MaxMessageBytes = 8 << 20

// Message types.
const (
	// Server → agent requests (each answered with a reply of the same type).
	TypeHello         = "hello"          // HelloRequest → HelloReply
	TypeSync          = "sync"           // SyncRequest → SyncReply
	TypeDeploy        = "deploy"         // DeployRequest → Empty
	TypeDelete        = "delete"         // DeleteRequest → Empty (also cancels a deploying deployment)
	TypeCancel        = "cancel"         // DeleteRequest → Empty (alias of delete while deploying)
	TypeLogsOpen      = "logs.open"      // LogsOpen → Empty; then TypeLogsData frames with ReplyTo = request ID
	TypeLogsClose     = "logs.close"     // LogsClose → Empty
	TypePluginsUpdate = "plugins.update" // PluginsUpdate → Empty
	TypeAck           = "ack"            // Ack (server → agent, no reply): events up to Seq are applied
	TypeTokenRotate   = "token.rotate"   // TokenRotate → Empty: accept only the new token from now on
	TypeTokenRevoke   = "token.revoke"   // TokenRevoke → Empty: refuse every token until restarted with a new one

	// Agent → server, not journaled.
	TypeLogsData = "logs.data" // LogsData, ReplyTo = the logs.open request ID
	TypeMetrics  = "metrics"   // Metrics, periodic
	TypeError    = "error"     // ErrorBody, reply to a failed request

	// Agent → server journaled events (Seq > 0, replayed until acknowledged).
	TypeDeploymentStatus = "deployment.status" // DeploymentStatus
	TypeStepStatus       = "step.status"       // StepStatus
	TypeStepLog          = "step.log"          // StepLog
	TypeServiceState     = "service.state"     // ServiceState
	TypeChannelEvent     = "channel.event"     // ChannelEvent
)

// IsEvent reports whether t is a journaled event type.
func IsEvent(t string) bool {
	switch t {
	case TypeDeploymentStatus, TypeStepStatus, TypeStepLog, TypeServiceState, TypeChannelEvent:
		return true
	}
	return false
}

// Envelope is the one frame format.
type Envelope struct {
	Type    string          `json:"type"`
	ID      string          `json:"id,omitempty"`
	ReplyTo string          `json:"reply_to,omitempty"`
	Seq     uint64          `json:"seq,omitempty"`
	Body    json.RawMessage `json:"body,omitempty"`
}

// ErrInvalid marks a frame or body that does not satisfy the contract.
var ErrInvalid = errors.New("invalid message")

// DecodeEnvelope parses and checks one frame.
func DecodeEnvelope(data []byte) (Envelope, error) {
	var e Envelope
	if len(data) > MaxMessageBytes {
		return e, fmt.Errorf("%w: frame of %d bytes exceeds %d", ErrInvalid, len(data), MaxMessageBytes)
	}
	if err := json.Unmarshal(data, &e); err != nil {
		return e, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if e.Type == "" {
		return e, fmt.Errorf("%w: missing type", ErrInvalid)
	}
	if len(e.Type) > 64 || len(e.ID) > 128 || len(e.ReplyTo) > 128 {
		return e, fmt.Errorf("%w: oversized type or id", ErrInvalid)
	}
	if IsEvent(e.Type) && e.Seq == 0 {
		return e, fmt.Errorf("%w: event %s without seq", ErrInvalid, e.Type)
	}
	return e, nil
}

// Validatable bodies check their own fields after decoding.
type Validatable interface{ Validate() error }

// DecodeBody unmarshals the envelope body into T and validates it.
func DecodeBody[T any](e Envelope) (T, error) {
	var v T
	if len(e.Body) == 0 {
		return v, fmt.Errorf("%w: %s without body", ErrInvalid, e.Type)
	}
	if err := json.Unmarshal(e.Body, &v); err != nil {
		return v, fmt.Errorf("%w: %s body: %v", ErrInvalid, e.Type, err)
	}
	if val, ok := any(&v).(Validatable); ok {
		if err := val.Validate(); err != nil {
			return v, fmt.Errorf("%w: %s body: %v", ErrInvalid, e.Type, err)
		}
	}
	return v, nil
}

// ValidateEvent checks a journaled event: its type, its seq and its body
// against the event's struct (DecodeBody with validation).
func ValidateEvent(e Envelope) error {
	if !IsEvent(e.Type) {
		return fmt.Errorf("%w: %q is not an event type", ErrInvalid, e.Type)
	}
	if e.Seq == 0 {
		return fmt.Errorf("%w: event %s without seq", ErrInvalid, e.Type)
	}
	var err error
	switch e.Type {
	case TypeDeploymentStatus:
		_, err = DecodeBody[DeploymentStatus](e)
	case TypeStepStatus:
		_, err = DecodeBody[StepStatus](e)
	case TypeStepLog:
		_, err = DecodeBody[StepLog](e)
	case TypeServiceState:
		_, err = DecodeBody[ServiceState](e)
	case TypeChannelEvent:
		_, err = DecodeBody[ChannelEvent](e)
	}
	return err
}

// NewEnvelope marshals body into an envelope of type t.
func NewEnvelope(t string, body any) (Envelope, error) {
	e := Envelope{Type: t}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return e, fmt.Errorf("marshal %s: %w", t, err)
		}
		e.Body = b
	}
	return e, nil
}

// Empty is the body of replies that carry no data.
type Empty struct{}

// ErrorBody is the body of TypeError replies.
type ErrorBody struct {
	Message string `json:"message"`
}

// Ack acknowledges every journaled event with seq ≤ Seq.
type Ack struct {
	Seq uint64 `json:"seq"`
}

// --- hello --------------------------------------------------------------

// HelloRequest opens a session.
type HelloRequest struct {
	ServerVersion   string `json:"server_version"`
	ProtocolVersion int    `json:"protocol_version"`
	// LivenessMs is how long the server lets its connection go without any
	// frame or pong before it gives up on it (ping interval + ping timeout),
	// in milliseconds. The agent considers the connection dead (and lets a
	// new one replace it) after the same silence. 0: the agent's default.
	LivenessMs int64 `json:"liveness_ms,omitempty"`
}

// Capacity is what a node offers.
type Capacity struct {
	CPUs     float64 `json:"cpus"`
	MemoryMB int64   `json:"memory_mb"`
	DiskMB   int64   `json:"disk_mb"`
}

// Usage is OS-level consumption on the node.
type Usage struct {
	CPUPercent float64 `json:"cpu_percent"` // of all CPUs, 0..100
	CPUsUsed   float64 `json:"cpus_used"`   // CPUPercent × CPUs / 100
	// OtherCPUs is the CPU used by everything but NullOps' service
	// containers, smoothed over about a minute and less what the node keeps
	// back from its advertised capacity: the only OS-level CPU figure
	// placement counts.
	OtherCPUs    float64 `json:"other_cpus"`
	MemoryUsedMB int64   `json:"memory_used_mb"`
	DiskUsedMB   int64   `json:"disk_used_mb"`
}

// HelloReply describes the agent.
type HelloReply struct {
	AgentVersion    string `json:"agent_version"`
	ProtocolVersion int    `json:"protocol_version"`
	// InstanceID identifies the agent's data dir; a new one means a fresh
	// event journal (seq restarts at 1).
	InstanceID   string   `json:"instance_id"`
	Capacity     Capacity `json:"capacity"`
	Usage        Usage    `json:"usage"`
	LastAckedSeq uint64   `json:"last_acked_seq"`
}

// Validate implements Validatable.
func (h *HelloReply) Validate() error {
	if h.InstanceID == "" {
		return errors.New("instance_id is required")
	}
	return nil
}

// --- node token ---------------------------------------------------------

// TokenVerifier is what an agent stores to recognise a node token: the
// lowercase hex SHA-256 of the token (tokens are 256 random bits, so a fast
// hash is enough), never the token itself.
func TokenVerifier(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ValidVerifier reports whether v has the form of a TokenVerifier.
func ValidVerifier(v string) bool {
	if len(v) != 64 {
		return false
	}
	for _, c := range v {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// TokenRotate hands the agent the verifier of the node's new token over the
// live, pinned connection. The agent persists it and accepts only the new
// token from then on (the current connection stays until the server
// redials with the new token).
type TokenRotate struct {
	Verifier   string `json:"verifier"`
	Generation int    `json:"generation"` // the server's token generation, for logs
}

// Validate implements Validatable.
func (r *TokenRotate) Validate() error {
	if !ValidVerifier(r.Verifier) {
		return errors.New("verifier must be 64 lowercase hex digits")
	}
	return nil
}

// TokenRevoke tells the agent that its token was revoked: it refuses every
// token until it is started with a new one, and closes the connection after
// replying.
type TokenRevoke struct {
	Reason string `json:"reason,omitempty"`
}

// --- desired state ------------------------------------------------------

// Resources are the CPU and memory limits of a deployment (or plugin step).
type Resources struct {
	CPU      float64 `json:"cpu"`
	MemoryMB int64   `json:"memory_mb"`
}

// RegistryAuth are pull credentials; sent in memory, never stored by agents.
type RegistryAuth struct {
	ServerAddress string `json:"server_address"`
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
}

// Health is a readiness check: an HTTP GET path on the service port, or a
// command run inside the container (exit 0 = healthy).
type Health struct {
	HTTP     string   `json:"http,omitempty"`
	Command  []string `json:"command,omitempty"`
	Timeout  string   `json:"timeout,omitempty"` // Go duration, default 60s
	Interval string   `json:"interval,omitempty"`
}

// Retry lets a plugin step or a health wait be attempted again.
type Retry struct {
	Count   int    `json:"count"`
	Backoff string `json:"backoff,omitempty"` // Go duration between attempts, default 2s
}

// Node kinds.
const (
	KindService   = "service"
	KindComponent = "component"
)

// Node is one pipeline graph node.
type Node struct {
	ID      string            `json:"id"`
	Kind    string            `json:"kind"`
	Service string            `json:"service,omitempty"` // kind=service: catalog service name
	Plugin  string            `json:"plugin,omitempty"`  // kind=component: catalog plugin name
	Params  map[string]any    `json:"params,omitempty"`  // component parameters (templated strings allowed)
	Env     map[string]string `json:"env,omitempty"`     // service env (templated)
	Port    int               `json:"port,omitempty"`    // service port exposed through ingress
	Ingress bool              `json:"ingress,omitempty"`
	Health  *Health           `json:"health,omitempty"`
	Retries *Retry            `json:"retries,omitempty"`
	// Resources is the node's explicit share of the deployment's budget
	// (either figure may be 0: not given). Services without one split what
	// is left evenly; components default to their plugin's limits.
	Resources *Resources `json:"resources,omitempty"`
	// Where the pipeline editor draws the node is not part of the graph an
	// agent runs: server/pipeline keeps it beside the graph (Layout).
}

// Graph is a versioned pipeline (docs/architecture.md, "Pipeline graph"). Edges are
// [from, to]: "to" starts after "from" succeeded.
type Graph struct {
	Resources *Resources  `json:"resources,omitempty"`
	Nodes     []Node      `json:"nodes"`
	Edges     [][2]string `json:"edges"`
}

// ServiceImage is a resolved catalog service for one service node.
type ServiceImage struct {
	Image  string            `json:"image"` // full reference incl. registry host and tag
	Auth   *RegistryAuth     `json:"auth,omitempty"`
	Ports  []int             `json:"ports,omitempty"`
	Env    map[string]string `json:"env,omitempty"`    // service defaults; node env overrides
	Health *Health           `json:"health,omitempty"` // service default; node health overrides
	// Resources are the container's limits: its share of the deployment's
	// budget (zero: the whole budget, as specs of older servers).
	Resources Resources `json:"resources"`
}

// PluginImage is a resolved catalog plugin (image pinned by the pipeline version).
type PluginImage struct {
	Name        string        `json:"name"`
	Image       string        `json:"image"`
	Auth        *RegistryAuth `json:"auth,omitempty"`
	Resources   Resources     `json:"resources"`
	Timeout     string        `json:"timeout"` // Go duration, default 5m
	JoinNetwork bool          `json:"join_network"`
	// DockerSocket asks for the node's Docker socket in the plugin's
	// container (an admin's catalog setting). The agent refuses the step
	// unless its own configuration allows it.
	DockerSocket bool `json:"docker_socket,omitempty"`
}

// DeploySpec is everything an agent needs to run one deployment.
type DeploySpec struct {
	DeploymentID    int64                   `json:"deployment_id"`
	Name            string                  `json:"name"`
	Project         string                  `json:"project"`
	Environment     string                  `json:"environment"`
	PipelineVersion int                     `json:"pipeline_version"`
	Graph           Graph                   `json:"graph"`
	Services        map[string]ServiceImage `json:"services"` // by node id
	Plugins         map[string]PluginImage  `json:"plugins"`  // by node id
	Resources       Resources               `json:"resources"`
	// Secrets are resolved values referenced as ${secrets.NAME}. Agents keep
	// them in memory only.
	Secrets map[string]string `json:"secrets,omitempty"`
}

// Validate implements Validatable.
func (d *DeploySpec) Validate() error {
	if d.DeploymentID <= 0 {
		return errors.New("deployment_id must be positive")
	}
	if d.Name == "" {
		return errors.New("name is required")
	}
	if len(d.Graph.Nodes) == 0 {
		return errors.New("graph has no nodes")
	}
	seen := map[string]bool{}
	for _, n := range d.Graph.Nodes {
		if n.ID == "" || seen[n.ID] {
			return fmt.Errorf("node id %q is empty or duplicated", n.ID)
		}
		seen[n.ID] = true
		switch n.Kind {
		case KindService:
			if _, ok := d.Services[n.ID]; !ok {
				return fmt.Errorf("service node %q has no resolved image", n.ID)
			}
		case KindComponent:
			if _, ok := d.Plugins[n.ID]; !ok {
				return fmt.Errorf("component node %q has no resolved plugin", n.ID)
			}
		default:
			return fmt.Errorf("node %q has unknown kind %q", n.ID, n.Kind)
		}
	}
	for _, e := range d.Graph.Edges {
		if !seen[e[0]] || !seen[e[1]] {
			return fmt.Errorf("edge %s→%s names an unknown node", e[0], e[1])
		}
	}
	return nil
}

// DeployRequest starts a deployment.
type DeployRequest struct {
	Spec DeploySpec `json:"spec"`
}

// Validate implements Validatable.
func (r *DeployRequest) Validate() error { return r.Spec.Validate() }

// DeleteRequest removes a deployment (rolling back a deploying one).
// FailReason, with TypeCancel: the pipeline is stopped and rolled back
// but the deployment is reported failed with this reason (not deleted) —
// the control plane gave up on it (e.g. its deploy timeout passed).
type DeleteRequest struct {
	DeploymentID int64  `json:"deployment_id"`
	FailReason   string `json:"fail_reason,omitempty"`
}

// Validate implements Validatable.
func (r *DeleteRequest) Validate() error {
	if r.DeploymentID <= 0 {
		return errors.New("deployment_id must be positive")
	}
	if len(r.FailReason) > maxFailReason {
		return fmt.Errorf("fail_reason exceeds %d bytes", maxFailReason)
	}
	return nil
}

// maxFailReason bounds DeleteRequest.FailReason.
const maxFailReason = 4 << 10

// SyncRequest is the node's full desired state: every deployment that should
// exist on it. Anything else labelled for this node is an orphan.
type SyncRequest struct {
	Deployments []DeploySpec `json:"deployments"`
	// NodeUID is the node's permanent identifier (letters, digits, '-' and
	// '_', at most 64). The agent labels its Docker objects with it, and
	// objects carrying it but made by another agent instance (a predecessor
	// whose data dir was lost) are removed and re-created from this desired
	// state. Empty from control planes that predate it.
	NodeUID string `json:"node_uid,omitempty"`
}

// ValidNodeUID reports whether uid may be a node identifier: non-empty, at
// most 64 characters of [A-Za-z0-9_-] (it becomes a Docker label value and
// filter term).
func ValidNodeUID(uid string) bool {
	if uid == "" || len(uid) > 64 {
		return false
	}
	for _, c := range []byte(uid) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Validate implements Validatable.
func (r *SyncRequest) Validate() error {
	if r.NodeUID != "" && !ValidNodeUID(r.NodeUID) {
		return errors.New("node_uid must be 1-64 letters, digits, '-' or '_'")
	}
	for i := range r.Deployments {
		if err := r.Deployments[i].Validate(); err != nil {
			return fmt.Errorf("deployments[%d]: %w", i, err)
		}
	}
	return nil
}

// SyncReply reports what the agent found and did.
type SyncReply struct {
	Deployments    []DeploymentState `json:"deployments"`
	RemovedOrphans []string          `json:"removed_orphans,omitempty"` // container/network names
}

// DeploymentState is the agent's view of one deployment.
type DeploymentState struct {
	DeploymentID int64          `json:"deployment_id"`
	Status       string         `json:"status"`
	Services     []ServiceState `json:"services,omitempty"`
}

// PluginsUpdate lists the current plugin catalog so agents can pre-pull.
type PluginsUpdate struct {
	Plugins []PluginImage `json:"plugins"`
}

// --- logs ---------------------------------------------------------------

// LogsOpen starts streaming a service's container logs.
type LogsOpen struct {
	DeploymentID int64  `json:"deployment_id"`
	Service      string `json:"service"` // pipeline node id
	Tail         int    `json:"tail"`    // lines from the end; 0 = all
	Follow       bool   `json:"follow"`
	// Timestamps starts every line with the time Docker received it (RFC
	// 3339 with nanoseconds) and a space. Older agents ignore it.
	Timestamps bool `json:"timestamps,omitempty"`
}

// Validate implements Validatable.
func (l *LogsOpen) Validate() error {
	if l.DeploymentID <= 0 || l.Service == "" {
		return errors.New("deployment_id and service are required")
	}
	return nil
}

// LogsClose stops a stream opened by the request with ID.
type LogsClose struct {
	ID string `json:"id"`
}

// LogsData is one chunk of a log stream; EOF ends it (Error says why, if any).
type LogsData struct {
	Stream string `json:"stream,omitempty"` // stdout or stderr
	Data   string `json:"data,omitempty"`
	EOF    bool   `json:"eof,omitempty"`
	Error  string `json:"error,omitempty"`
}

// --- events -------------------------------------------------------------

// Deployment statuses reported by agents.
const (
	StatusDeploying = "deploying"
	StatusRunning   = "running"
	StatusFailed    = "failed"
	StatusDeleted   = "deleted"
)

// Step statuses.
const (
	StepPending   = "pending"
	StepRunning   = "running"
	StepSucceeded = "succeeded"
	StepFailed    = "failed"
	StepSkipped   = "skipped"
)

// DeploymentStatus is a journaled deployment state change.
type DeploymentStatus struct {
	DeploymentID int64     `json:"deployment_id"`
	Status       string    `json:"status"`
	Reason       string    `json:"reason,omitempty"`
	FailedStep   string    `json:"failed_step,omitempty"`
	At           time.Time `json:"at"`
}

// Validate implements Validatable.
func (s *DeploymentStatus) Validate() error {
	if s.DeploymentID <= 0 {
		return errors.New("deployment_id must be positive")
	}
	switch s.Status {
	case StatusDeploying, StatusRunning, StatusFailed, StatusDeleted:
		return nil
	}
	return fmt.Errorf("unknown deployment status %q", s.Status)
}

// StepStatus is a journaled step state change.
type StepStatus struct {
	DeploymentID int64             `json:"deployment_id"`
	Step         string            `json:"step"`
	Kind         string            `json:"kind"`
	Status       string            `json:"status"`
	Attempt      int               `json:"attempt"`
	Message      string            `json:"message,omitempty"`
	Outputs      map[string]string `json:"outputs,omitempty"`
	At           time.Time         `json:"at"`
}

// Validate implements Validatable.
func (s *StepStatus) Validate() error {
	if s.DeploymentID <= 0 || s.Step == "" {
		return errors.New("deployment_id and step are required")
	}
	switch s.Status {
	case StepPending, StepRunning, StepSucceeded, StepFailed, StepSkipped:
		return nil
	}
	return fmt.Errorf("unknown step status %q", s.Status)
}

// StepLog is a journaled chunk of a step's log (plugin stderr, pull progress,
// health attempts).
type StepLog struct {
	DeploymentID int64     `json:"deployment_id"`
	Step         string    `json:"step"`
	Attempt      int       `json:"attempt"`
	Chunk        string    `json:"chunk"`
	At           time.Time `json:"at"`
}

// Validate implements Validatable.
func (s *StepLog) Validate() error {
	if s.DeploymentID <= 0 || s.Step == "" {
		return errors.New("deployment_id and step are required")
	}
	return nil
}

// Service states (ServiceState.State).
const (
	ServiceRunning    = "running"
	ServiceRestarting = "restarting" // crashed; Docker's restart policy brings it back
	ServiceExited     = "exited"
	ServiceOOMKilled  = "oom-killed" // the last exit was the OOM killer and it is not running
)

// MaxServiceLastLines bounds ServiceState.LastLines.
const MaxServiceLastLines = 4 << 10

// ServiceState reports a service container of a deployment: its published
// host port (for ingress), health, and — when it crashed — how: its state,
// Docker's restart count, the last exit and the last lines of its log
// (secret values masked by the agent).
type ServiceState struct {
	DeploymentID  int64  `json:"deployment_id"`
	Service       string `json:"service"` // pipeline node id
	ContainerID   string `json:"container_id,omitempty"`
	ContainerPort int    `json:"container_port,omitempty"`
	HostPort      int    `json:"host_port,omitempty"`
	// RouteHost is where the ingress reaches HostPort when that is not the
	// node's host (the address the control plane dials the agent on): an
	// address the agent's operator configured, such as a load balancer or
	// a cluster node address in front of Kubernetes NodePorts
	// (kubernetes.routehost). "" = the node's host.
	RouteHost string `json:"route_host,omitempty"`
	Running   bool   `json:"running"`
	Health    string `json:"health,omitempty"` // healthy, unhealthy, starting, unknown

	State        string    `json:"state,omitempty"` // running, restarting, exited, oom-killed; "" from older agents
	RestartCount int       `json:"restart_count,omitempty"`
	ExitCode     *int      `json:"exit_code,omitempty"` // of the last exit, when there was one
	LastExitOOM  bool      `json:"last_exit_oom,omitempty"`
	LastExitAt   time.Time `json:"last_exit_at,omitzero"`
	LastLines    string    `json:"last_lines,omitempty"`
}

// Validate implements Validatable.
func (s *ServiceState) Validate() error {
	if s.DeploymentID <= 0 || s.Service == "" {
		return errors.New("deployment_id and service are required")
	}
	switch s.State {
	case "", ServiceRunning, ServiceRestarting, ServiceExited, ServiceOOMKilled:
	default:
		return fmt.Errorf("unknown service state %q", s.State)
	}
	if s.RestartCount < 0 {
		return errors.New("restart_count must not be negative")
	}
	if s.RouteHost != "" && !ValidHost(s.RouteHost) {
		return fmt.Errorf("route_host %q is not a host name or IP address", s.RouteHost)
	}
	if len(s.LastLines) > MaxServiceLastLines {
		return fmt.Errorf("last_lines exceeds %d bytes", MaxServiceLastLines)
	}
	return nil
}

// Channel event kinds.
const (
	ChannelRefused      = "refused"       // an authenticated connection was refused (busy or stale epoch)
	ChannelReplaced     = "replaced"      // an unhealthy connection was replaced by a newer one
	ChannelUnauthorized = "unauthorized"  // a connection presented a wrong, old or revoked token
	ChannelTokenRotated = "token_rotated" // the agent now accepts only the new token
	ChannelTokenRevoked = "token_revoked" // the agent refuses every token until restarted with a new one
)

// ChannelEvent is a journaled record of something that happened to the
// control-plane channel on the agent, delivered to the server over the
// next (legitimate) connection so it shows on the node.
type ChannelEvent struct {
	Kind   string    `json:"kind"`
	Remote string    `json:"remote,omitempty"` // address of the refused/replaced/new caller
	Reason string    `json:"reason,omitempty"`
	Epoch  uint64    `json:"epoch,omitempty"` // epoch the caller presented
	At     time.Time `json:"at"`
}

// Validate implements Validatable.
func (c *ChannelEvent) Validate() error {
	switch c.Kind {
	case ChannelRefused, ChannelReplaced, ChannelUnauthorized, ChannelTokenRotated, ChannelTokenRevoked:
	default:
		return fmt.Errorf("unknown channel event kind %q", c.Kind)
	}
	if len(c.Remote) > 256 || len(c.Reason) > 1024 {
		return errors.New("remote or reason too long")
	}
	return nil
}

// --- metrics ------------------------------------------------------------

// ContainerStats is the usage of one managed container.
type ContainerStats struct {
	DeploymentID int64   `json:"deployment_id"`
	Service      string  `json:"service"`
	CPUPercent   float64 `json:"cpu_percent"`
	MemoryBytes  int64   `json:"memory_bytes"`
	Health       string  `json:"health,omitempty"`
	Running      bool    `json:"running"`
}

// Metrics is sent periodically by the agent.
type Metrics struct {
	Capacity   Capacity         `json:"capacity"`
	Usage      Usage            `json:"usage"`
	Containers []ContainerStats `json:"containers,omitempty"`
	At         time.Time        `json:"at"`
}
