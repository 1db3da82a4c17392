package restapi

import (
	"encoding/json"
	"time"
)

// Deployment is a deployment as every route shows it: GET /deployments
// (each row), GET /deployments/:id, the answers of create, clone, delete,
// cancel, retry and extend, and the first event of its event stream. Rows
// of a list leave out Detail (steps and services); single-deployment
// answers always have it.
type Deployment struct {
	ID              int64  `json:"id"`
	Name            string `json:"name"`
	ProjectID       int64  `json:"project_id"`
	Project         string `json:"project"`
	EnvironmentID   int64  `json:"environment_id"`
	Environment     string `json:"environment"`
	NodeID          *int64 `json:"node_id"`
	Node            string `json:"node"`
	NodeStatus      string `json:"node_status"`
	PipelineVersion int    `json:"pipeline_version"`
	// NodeUnreachableSince is when the node's agent stopped answering (nil
	// while it answers): the deployment stays routed for a grace period.
	NodeUnreachableSince *time.Time        `json:"node_unreachable_since"`
	Status               string            `json:"status"`
	Reason               string            `json:"reason"`
	FailedStep           string            `json:"failed_step"`
	OwnerID              *int64            `json:"owner_id"`
	Owner                string            `json:"owner"`
	ClonedFrom           *int64            `json:"cloned_from"`
	Tags                 map[string]string `json:"tags"`
	CPU                  float64           `json:"cpu"`
	MemoryMB             int64             `json:"memory_mb"`
	TTLSeconds           int64             `json:"ttl_seconds"`
	LastActivityAt       time.Time         `json:"last_activity_at"`
	ExpiresAt            time.Time         `json:"expires_at"`
	DeletePending        bool              `json:"delete_pending"`
	CreatedAt            time.Time         `json:"created_at"`
	UpdatedAt            time.Time         `json:"updated_at"`
	DeletedAt            *time.Time        `json:"deleted_at"`

	// Access is the caller's level on the deployment: "read" or "full".
	Access string `json:"access"`
	// URLs maps each exposed service (pipeline node id) to its address.
	URLs map[string]string `json:"urls"`
	// Degraded: the deployment is running but a service of it is not
	// (restarting, exited, killed by the OOM killer) or crashed recently;
	// DegradedReason says which and how.
	Degraded       bool   `json:"degraded"`
	DegradedReason string `json:"degraded_reason,omitempty"`

	*Detail
}

// Detail is what a single-deployment answer adds to a list row.
type Detail struct {
	Steps    []DeploymentStep    `json:"steps"`
	Services []DeploymentService `json:"services"`
}

// DeploymentStep is the progress of one pipeline node.
type DeploymentStep struct {
	ID      string `json:"id"` // pipeline node id
	Kind    string `json:"kind"`
	Status  string `json:"status"`
	Attempt int    `json:"attempt"`
	Message string `json:"message"`
	// Outputs are what the step handed to later steps, every secret value
	// replaced by its ${secrets.NAME} placeholder (absent when none).
	Outputs    map[string]string `json:"outputs,omitempty"`
	StartedAt  *time.Time        `json:"started_at"`
	FinishedAt *time.Time        `json:"finished_at"`
}

// DeploymentService is one service container of a deployment.
type DeploymentService struct {
	ID            string    `json:"id"` // pipeline node id
	ServiceID     *int64    `json:"service_id"`
	Service       string    `json:"service"`
	Image         string    `json:"image"`
	Tag           string    `json:"tag"`
	ContainerPort int       `json:"container_port"`
	HostPort      int       `json:"host_port"`
	Ingress       bool      `json:"ingress"`
	Health        string    `json:"health"`
	CPUPercent    float64   `json:"cpu_percent"`
	MemoryBytes   int64     `json:"memory_bytes"`
	UpdatedAt     time.Time `json:"updated_at"`
	// State is what the agent last reported: running, restarting, exited,
	// oom-killed ("" until a report).
	State        string     `json:"state"`
	RestartCount int        `json:"restart_count"`
	ExitCode     *int       `json:"exit_code"`
	LastExitOOM  bool       `json:"last_exit_oom"`
	LastExitAt   *time.Time `json:"last_exit_at"`
	LastLines    string     `json:"last_lines"`
	URL          string     `json:"url,omitempty"`
}

// CreateDeploymentRequest is the body of POST /deployments.
type CreateDeploymentRequest struct {
	ProjectID     int64             `json:"project_id"`
	EnvironmentID int64             `json:"environment_id"`
	Name          string            `json:"name"`
	Tags          map[string]string `json:"tags,omitempty"` // catalog service name → tag (selectable services)
}

// CloneDeploymentRequest is the body of POST /deployments/:id/clone.
type CloneDeploymentRequest struct {
	Name string            `json:"name"`
	Tags map[string]string `json:"tags,omitempty"` // overrides of the source's tags
}

// StepLogs is GET /deployments/:id/steps/:step/logs: the stored log
// chunks of a pipeline step, oldest first.
type StepLogs struct {
	Step  string     `json:"step"`
	Items []LogChunk `json:"items"`
}

// LogChunk is one stored piece of a step's log; ID is what ?after= takes.
type LogChunk struct {
	ID      int64     `json:"id"`
	Attempt int       `json:"attempt"`
	Chunk   string    `json:"chunk"`
	At      time.Time `json:"at"`
}

// HistoryEntry is one entry of a deployment's history
// (GET /deployments/:id/history), oldest first.
type HistoryEntry struct {
	ID        int64           `json:"id"`
	ActorID   *int64          `json:"actor_id"`
	ActorName string          `json:"actor"`
	Action    string          `json:"action"`
	Detail    json.RawMessage `json:"detail"`
	At        time.Time       `json:"at"`
}

// PlacementVerdict is the answer of the placement dry run
// (POST /placement/dry-run): whether the deployment would be placed now
// and what it would reserve; Reason says why not, naming no node.
type PlacementVerdict struct {
	Fits     bool    `json:"fits"`
	Reason   string  `json:"reason,omitempty"`
	CPU      float64 `json:"cpu"`
	MemoryMB int64   `json:"memory_mb"`
}

// Usage is GET /deployments/:id/usage: the CPU and memory history of the
// deployment's services, one point per step newer than From.
type Usage struct {
	StepSeconds   int           `json:"step_seconds"`
	WindowSeconds int           `json:"window_seconds"`
	From          time.Time     `json:"from"`
	To            time.Time     `json:"to"` // the server's time of the answer
	Services      []UsageSeries `json:"services"`
}

// UsageSeries is one service's points, oldest first: [unix seconds, CPU
// percent (100 = one core), memory bytes].
type UsageSeries struct {
	Service string       `json:"service"`
	Points  [][3]float64 `json:"points"`
}
