package restapi

import "time"

// Node is a node as admins see it (GET /nodes, /environments/:id/nodes and
// /nodes/:id for an admin, and every admin action's answer): the agent's
// address, identity pinning, what it reports, whether the server holds a
// live connection to it and, in reads, what its live deployments reserve.
// Its token is never part of it (see NodeCreated).
type Node struct {
	ID            int64  `json:"id"`
	EnvironmentID int64  `json:"environment_id"`
	Name          string `json:"name"`
	// UID is the node's random, never-reused identifier (the label of
	// every Docker object its agent makes).
	UID                string            `json:"uid"`
	Host               string            `json:"host"`
	Port               int               `json:"port"`
	TokenGeneration    int               `json:"token_generation"`
	ExpectedThumbprint string            `json:"expected_thumbprint"`
	SeenThumbprint     string            `json:"seen_thumbprint"`
	Status             string            `json:"status"`
	StatusReason       string            `json:"status_reason"`
	Enabled            bool              `json:"enabled"`
	Revoked            bool              `json:"revoked"`
	Labels             map[string]string `json:"labels"`
	AgentVersion       string            `json:"agent_version"`
	ProtocolVersion    int               `json:"protocol_version"`
	AgentInstance      string            `json:"agent_instance"`
	Capacity           NodeCapacity      `json:"capacity"`
	Usage              NodeUsage         `json:"usage"`
	LastAckedSeq       int64             `json:"last_acked_seq"`
	LastSeenAt         *time.Time        `json:"last_seen_at"`
	// UnreachableSince is when the agent stopped answering (nil while online).
	UnreachableSince *time.Time `json:"unreachable_since"`
	CreatedAt        time.Time  `json:"created_at"`
	UpdatedAt        time.Time  `json:"updated_at"`
	ConnEpoch        int64      `json:"connection_epoch"`
	// TokenRotationPending: rotated while the agent could not be told.
	TokenRotationPending bool `json:"token_rotation_pending"`
	// TokenRevokePending: revoked while the agent could not be told.
	TokenRevokePending bool `json:"token_revoke_pending"`
	// Connected: a server replica holds a live connection to the agent now
	// (the one answering, or the one holding the node's lease).
	Connected bool `json:"connected"`
	// Reserved is what the node's live deployments reserve (reads only).
	Reserved *NodeReservation `json:"reserved,omitempty"`
	// Environment is the environment's name (GET /nodes only).
	Environment string `json:"environment,omitempty"`
}

// NodeCapacity is what the agent advertises.
type NodeCapacity struct {
	CPUs     float64 `json:"cpus"`
	MemoryMB int64   `json:"memory_mb"`
	DiskMB   int64   `json:"disk_mb"`
}

// NodeUsage is what the agent last reported using.
type NodeUsage struct {
	CPUPercent float64 `json:"cpu_percent"` // of all CPUs, 0..100
	CPUsUsed   float64 `json:"cpus_used"`
	// OtherCPUs is the CPU used by everything but NullOps' service
	// containers (the only OS-level CPU figure placement counts).
	OtherCPUs    float64 `json:"other_cpus"`
	MemoryUsedMB int64   `json:"memory_used_mb"`
	DiskUsedMB   int64   `json:"disk_used_mb"`
}

// NodeReservation is what a node's live deployments reserve.
type NodeReservation struct {
	CPUs        float64 `json:"cpus"`
	MemoryMB    int64   `json:"memory_mb"`
	Deployments int     `json:"deployments"`
}

// UserNode is a node as users who are not admins see it: whether it is
// there and working, not where it is, what it holds or how its identity
// is pinned.
type UserNode struct {
	ID            int64             `json:"id"`
	EnvironmentID int64             `json:"environment_id"`
	Name          string            `json:"name"`
	Status        string            `json:"status"`
	Enabled       bool              `json:"enabled"`
	Revoked       bool              `json:"revoked"`
	Labels        map[string]string `json:"labels"`
	AgentVersion  string            `json:"agent_version"`
	Connected     bool              `json:"connected"`
	LastSeenAt    *time.Time        `json:"last_seen_at"`
	CreatedAt     time.Time         `json:"created_at"`
	UpdatedAt     time.Time         `json:"updated_at"`
}

// NodeCreated is the answer of POST /environments/:id/nodes and
// POST /nodes/:id/rotate-token: the only time the token is shown, with the
// commands that start the agent with it.
type NodeCreated struct {
	Node      Node   `json:"node"`
	Token     string `json:"token"`
	DockerRun string `json:"docker_run"`
	Compose   string `json:"compose"`
}

// NodeEvent is one entry of a node's channel history (GET /nodes/:id/events).
type NodeEvent struct {
	ID      int64     `json:"id"`
	NodeID  int64     `json:"node_id"`
	Kind    string    `json:"kind"`
	Message string    `json:"message"`
	Remote  string    `json:"remote"`
	Source  string    `json:"source"` // "server" or "agent"
	At      time.Time `json:"at"`
}

// NodeRequest is the body of POST /environments/:id/nodes.
type NodeRequest struct {
	Name               string            `json:"name"`
	Host               string            `json:"host"`
	Port               int               `json:"port,omitempty"` // default 5000
	ExpectedThumbprint string            `json:"expected_thumbprint,omitempty"`
	Labels             map[string]string `json:"labels,omitempty"`
}

// NodePatch is the body of PATCH /nodes/:id; absent fields stay.
type NodePatch struct {
	Name               *string            `json:"name,omitempty"`
	Host               *string            `json:"host,omitempty"`
	Port               *int               `json:"port,omitempty"`
	ExpectedThumbprint *string            `json:"expected_thumbprint,omitempty"`
	Labels             *map[string]string `json:"labels,omitempty"`
}

// ThumbprintApproval is the optional body of POST
// /nodes/:id/approve-thumbprint; without a thumbprint the one the agent
// last presented is approved.
type ThumbprintApproval struct {
	Thumbprint string `json:"thumbprint,omitempty"`
}
