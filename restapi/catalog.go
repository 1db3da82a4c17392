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

// Registry is a container registry of the catalog (admin only). Its
// password is write-only: HasPassword says whether one is stored.
type Registry struct {
	ID          int64     `json:"id"`
	Name        string    `json:"name"`
	URL         string    `json:"url"`
	Username    string    `json:"username"`
	HasPassword bool      `json:"has_password"`
	Insecure    bool      `json:"insecure"`
	IsDefault   bool      `json:"is_default"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// RegistryRequest is the body of POST and PUT /registries. On PUT an
// absent password keeps the stored one and "" removes it.
type RegistryRequest struct {
	Name     string  `json:"name"`
	URL      string  `json:"url"`
	Username string  `json:"username"`
	Password *string `json:"password,omitempty"`
	Insecure bool    `json:"insecure"`
}

// RegistryTest is the answer of POST /registries/:id/test.
type RegistryTest struct {
	OK      bool   `json:"ok"`
	Message string `json:"message"`
}

// Tags is GET /registries/:id/tags: the image's tags, in Order ("semver"
// or "date", newest first), as listed at FetchedAt (listings are cached).
type Tags struct {
	Tags      []string  `json:"tags"`
	Order     string    `json:"order"`
	FetchedAt time.Time `json:"fetched_at"`
}

// ServiceTags is GET /services/:id/tags: the tags a deployment may choose
// for the service (a pinned service's one tag).
type ServiceTags struct {
	Service    string   `json:"service"`
	Image      string   `json:"image"`
	TagMode    string   `json:"tag_mode"`
	TagPattern string   `json:"tag_pattern"`
	Tags       []string `json:"tags"`
	Order      string   `json:"order"`
}

// Health is a service's health check: an HTTP path or a command, with a
// timeout and interval as Go durations.
type Health struct {
	HTTP     string   `json:"http,omitempty"`
	Command  []string `json:"command,omitempty"`
	Timeout  string   `json:"timeout,omitempty"`
	Interval string   `json:"interval,omitempty"`
}

// Service is a service of the catalog: an image of a registry, pinned to
// a tag ("fixed") or chosen per deployment ("selectable", matching
// TagPattern).
type Service struct {
	ID           int64             `json:"id"`
	Name         string            `json:"name"`
	RegistryID   int64             `json:"registry_id"`
	RegistryName string            `json:"registry"`
	Image        string            `json:"image"`
	TagMode      string            `json:"tag_mode"`
	Tag          string            `json:"tag,omitempty"`
	TagPattern   string            `json:"tag_pattern,omitempty"`
	Ports        []int             `json:"ports"`
	Env          map[string]string `json:"env"`
	Health       *Health           `json:"health,omitempty"`
	Description  string            `json:"description"`
	CreatedAt    time.Time         `json:"created_at"`
	UpdatedAt    time.Time         `json:"updated_at"`
}

// ServiceRequest is the body of POST and PUT /services.
type ServiceRequest struct {
	Name        string            `json:"name"`
	RegistryID  int64             `json:"registry_id"`
	Image       string            `json:"image"`
	TagMode     string            `json:"tag_mode"`
	Tag         string            `json:"tag,omitempty"`
	TagPattern  string            `json:"tag_pattern,omitempty"`
	Ports       []int             `json:"ports,omitempty"`
	Env         map[string]string `json:"env,omitempty"`
	Health      *Health           `json:"health,omitempty"`
	Description string            `json:"description"`
}

// Plugin is a pipeline plugin of the catalog: its image, parameter schema
// and limits.
type Plugin struct {
	ID             int64           `json:"id"`
	Name           string          `json:"name"`
	RegistryID     int64           `json:"registry_id"`
	RegistryName   string          `json:"registry"`
	Image          string          `json:"image"`
	Tag            string          `json:"tag"`
	Description    string          `json:"description"`
	ParamsSchema   json.RawMessage `json:"params_schema"`
	CPU            float64         `json:"cpu"`
	MemoryMB       int64           `json:"memory_mb"`
	TimeoutSeconds int64           `json:"timeout_seconds"`
	Timeout        string          `json:"timeout"` // the same as a Go duration
	JoinNetwork    bool            `json:"join_network"`
	// DockerSocket: the plugin's container gets the node's Docker socket.
	DockerSocket bool      `json:"docker_socket"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// PluginRequest is the body of POST and PUT /plugins; absent limits take
// the defaults (0.5 CPU, 128 MB, timeout "5m", join_network true).
type PluginRequest struct {
	Name         string          `json:"name"`
	RegistryID   int64           `json:"registry_id"`
	Image        string          `json:"image"`
	Tag          string          `json:"tag"`
	Description  string          `json:"description"`
	ParamsSchema json.RawMessage `json:"params_schema,omitempty"`
	CPU          *float64        `json:"cpu,omitempty"`
	MemoryMB     *int64          `json:"memory_mb,omitempty"`
	Timeout      string          `json:"timeout,omitempty"` // Go duration
	JoinNetwork  *bool           `json:"join_network,omitempty"`
	// DockerSocket gives the plugin the node's Docker socket (root on the
	// node); absent = false.
	DockerSocket bool `json:"docker_socket,omitempty"`
}

// Secret is a secret of the catalog, global or of a project; its value is
// write-only and never in a response.
type Secret struct {
	ID            int64     `json:"id"`
	Name          string    `json:"name"`
	Scope         string    `json:"scope"` // "global" or "project"
	ProjectID     *int64    `json:"project_id"`
	ProjectName   string    `json:"project,omitempty"`
	UpdatedByID   *int64    `json:"updated_by_id"`
	UpdatedByName string    `json:"updated_by"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// SecretRequest is the body of POST /secrets; no project_id makes a
// global secret.
type SecretRequest struct {
	Name      string `json:"name"`
	ProjectID *int64 `json:"project_id,omitempty"`
	Value     string `json:"value"`
}

// SecretValue is the body of PUT /secrets/:id.
type SecretValue struct {
	Value string `json:"value"`
}

// EnvironmentRequest is the body of POST and PUT /environments.
type EnvironmentRequest struct {
	Name              string `json:"name"`
	BaseDomain        string `json:"base_domain"`
	HostTemplate      string `json:"host_template,omitempty"`
	DefaultTTL        string `json:"default_ttl,omitempty"` // Go duration, default 168h
	TrafficIsActivity *bool  `json:"traffic_is_activity,omitempty"`
	// CPUOvercommit: reservations plus other CPU use may reach this many
	// times a node's CPUs (1..10; default 1.5).
	CPUOvercommit *float64 `json:"cpu_overcommit,omitempty"`
	Description   string   `json:"description"`
}

// ProjectRequest is the body of POST and PUT /projects. Absent limits take
// the defaults (1 CPU, 512 MB); ttl "" uses the environment's default.
type ProjectRequest struct {
	Name         string          `json:"name"`
	Description  string          `json:"description"`
	CPU          *float64        `json:"cpu,omitempty"`
	MemoryMB     *int64          `json:"memory_mb,omitempty"`
	TTL          string          `json:"ttl,omitempty"` // Go duration, "" = environment default
	NodeSelector json.RawMessage `json:"node_selector,omitempty"`
	// DeployTimeout: Go duration, "" = 30m. A deployment deploying longer
	// is failed and rolled back.
	DeployTimeout string `json:"deploy_timeout,omitempty"`
}

// PipelineVersion is a saved version of a project's pipeline. Lists leave
// the graph out; the answer of a save carries the execution order.
type PipelineVersion struct {
	ID            int64             `json:"id"`
	ProjectID     int64             `json:"project_id"`
	Version       int               `json:"version"`
	Graph         json.RawMessage   `json:"graph,omitempty"`
	PluginPins    map[string]string `json:"plugin_pins"` // plugin name → full image reference
	CreatedByID   *int64            `json:"created_by_id"`
	CreatedByName string            `json:"created_by"`
	CreatedAt     time.Time         `json:"created_at"`
	Order         []string          `json:"order,omitempty"`
}

// PipelineDryRun is the answer of POST /projects/:id/pipeline/dry-run: a
// graph that is not valid is still 200, with its problems by field.
type PipelineDryRun struct {
	Valid    bool              `json:"valid"`
	Order    []string          `json:"order"`
	Problems map[string]string `json:"problems,omitempty"`
}
