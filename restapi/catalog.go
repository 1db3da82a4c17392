package restapi

import (
	"encoding/json"
	"time"
)

// Project is a project as every route shows it (list rows and single
// answers alike).
type Project struct {
	ID           int64           `json:"id"`
	Name         string          `json:"name"`
	Description  string          `json:"description"`
	CPU          float64         `json:"cpu"`
	MemoryMB     int64           `json:"memory_mb"`
	NodeSelector json.RawMessage `json:"node_selector"`
	CreatedAt    time.Time       `json:"created_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
	// TTL overrides the environments' default TTL (Go duration, "" = none).
	TTL string `json:"ttl"`
	// DeployTimeout: a deployment deploying longer is failed (Go duration).
	DeployTimeout string `json:"deploy_timeout"`
	// Access is the caller's level on the project itself: "read", "full",
	// or "none" for a user who sees it only through an environment grant.
	Access string `json:"access"`
}

// Environment is an environment as every route shows it.
type Environment struct {
	ID                int64     `json:"id"`
	Name              string    `json:"name"`
	BaseDomain        string    `json:"base_domain"`
	HostTemplate      string    `json:"host_template"`
	TrafficIsActivity bool      `json:"traffic_is_activity"`
	CPUOvercommit     float64   `json:"cpu_overcommit"`
	Description       string    `json:"description"`
	CreatedAt         time.Time `json:"created_at"`
	UpdatedAt         time.Time `json:"updated_at"`
	DefaultTTL        string    `json:"default_ttl"` // Go duration
	// URLPattern is a service URL with <service> and <deployment> left as
	// placeholders: scheme, host template and ingress port as users get them.
	URLPattern string `json:"url_pattern"`
	// Access is the caller's level on the environment itself ("none" for a
	// user who sees it only through a project grant).
	Access string `json:"access"`
}
