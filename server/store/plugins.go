package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Plugin is a catalog plugin: an image a component step runs.
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
	JoinNetwork    bool            `json:"join_network"`
	// DockerSocket: the plugin's container gets the node's Docker socket
	// (root on the node); agents also have to allow it in their own
	// configuration.
	DockerSocket bool      `json:"docker_socket"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// PluginInput are a plugin's writable fields.
type PluginInput struct {
	Name           string
	RegistryID     int64
	Image          string
	Tag            string
	Description    string
	ParamsSchema   json.RawMessage // valid JSON (checked by the caller)
	CPU            float64
	MemoryMB       int64
	TimeoutSeconds int64
	JoinNetwork    bool
	DockerSocket   bool
}

const pluginColumns = `pl.id, pl.name, pl.registry_id, r.name, pl.image, pl.tag, pl.description, pl.params_schema::text,
	pl.cpu, pl.memory_mb, pl.timeout_seconds, pl.join_network, pl.docker_socket, pl.created_at, pl.updated_at`

const pluginFrom = ` FROM plugins pl JOIN registries r ON r.id = pl.registry_id`

func scanPlugin(row pgx.Row) (Plugin, error) {
	var p Plugin
	var schema string
	err := row.Scan(&p.ID, &p.Name, &p.RegistryID, &p.RegistryName, &p.Image, &p.Tag, &p.Description, &schema,
		&p.CPU, &p.MemoryMB, &p.TimeoutSeconds, &p.JoinNetwork, &p.DockerSocket, &p.CreatedAt, &p.UpdatedAt)
	if err != nil {
		return Plugin{}, notFound(err)
	}
	p.ParamsSchema = json.RawMessage(schema)
	return p, nil
}

func pluginArgs(in PluginInput) []any {
	schema := string(in.ParamsSchema)
	if len(in.ParamsSchema) == 0 {
		schema = "{}"
	}
	return []any{in.Name, in.RegistryID, in.Image, in.Tag, in.Description, schema, in.CPU, in.MemoryMB, in.TimeoutSeconds, in.JoinNetwork, in.DockerSocket}
}

// ListPlugins returns every plugin by name.
func ListPlugins(ctx context.Context, q Querier) ([]Plugin, error) {
	rows, err := q.Query(ctx, `SELECT `+pluginColumns+pluginFrom+` ORDER BY pl.name`)
	if err != nil {
		return nil, fmt.Errorf("list plugins: %w", err)
	}
	out, err := collectRows(rows, func(r pgx.Rows) (Plugin, error) { return scanPlugin(r) })
	if err != nil {
		return nil, fmt.Errorf("list plugins: %w", err)
	}
	return out, nil
}

// GetPlugin returns one plugin.
func GetPlugin(ctx context.Context, q Querier, id int64) (Plugin, error) {
	p, err := scanPlugin(q.QueryRow(ctx, `SELECT `+pluginColumns+pluginFrom+` WHERE pl.id = $1`, id))
	if err != nil {
		return Plugin{}, fmt.Errorf("plugin %d: %w", id, err)
	}
	return p, nil
}

// CreatePlugin inserts a plugin; a taken name is ErrConflict.
func CreatePlugin(ctx context.Context, q Querier, in PluginInput) (Plugin, error) {
	var id int64
	err := q.QueryRow(ctx, `INSERT INTO plugins (name, registry_id, image, tag, description, params_schema, cpu, memory_mb, timeout_seconds, join_network, docker_socket)
		VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11) RETURNING id`, pluginArgs(in)...).Scan(&id)
	if IsUniqueViolation(err) {
		return Plugin{}, fmt.Errorf("plugin %q: %w", in.Name, ErrConflict)
	}
	if IsForeignKeyViolation(err) {
		return Plugin{}, fmt.Errorf("registry %d: %w", in.RegistryID, ErrNotFound)
	}
	if err != nil {
		return Plugin{}, fmt.Errorf("create plugin: %w", err)
	}
	return GetPlugin(ctx, q, id)
}

// UpdatePlugin changes a plugin. Renaming a plugin the latest pipeline
// version of a project uses is refused (pipelines refer to it by name).
// Versions already saved keep the image they pinned.
func UpdatePlugin(ctx context.Context, q Querier, id int64, in PluginInput) (Plugin, error) {
	old, err := scanPlugin(q.QueryRow(ctx, `SELECT `+pluginColumns+pluginFrom+` WHERE pl.id = $1 FOR UPDATE OF pl`, id))
	if err != nil {
		return Plugin{}, fmt.Errorf("plugin %d: %w", id, err)
	}
	if old.Name != in.Name {
		refs, err := LatestPipelineReferrers(ctx, q, "plugin", old.Name)
		if err != nil {
			return Plugin{}, err
		}
		if len(refs) > 0 {
			return Plugin{}, &InUseError{What: fmt.Sprintf("plugin %q (renaming it)", old.Name), Referrers: refs}
		}
	}
	args := append([]any{id}, pluginArgs(in)...)
	_, err = q.Exec(ctx, `UPDATE plugins SET name = $2, registry_id = $3, image = $4, tag = $5, description = $6, params_schema = $7::jsonb,
		cpu = $8, memory_mb = $9, timeout_seconds = $10, join_network = $11, docker_socket = $12, updated_at = now() WHERE id = $1`, args...)
	if IsUniqueViolation(err) {
		return Plugin{}, fmt.Errorf("plugin %q: %w", in.Name, ErrConflict)
	}
	if IsForeignKeyViolation(err) {
		return Plugin{}, fmt.Errorf("registry %d: %w", in.RegistryID, ErrNotFound)
	}
	if err != nil {
		return Plugin{}, fmt.Errorf("update plugin %d: %w", id, err)
	}
	return GetPlugin(ctx, q, id)
}

// DeletePlugin deletes a plugin no project's latest pipeline version and no
// live deployment uses.
func DeletePlugin(ctx context.Context, q Querier, id int64) (Plugin, error) {
	p, err := scanPlugin(q.QueryRow(ctx, `SELECT `+pluginColumns+pluginFrom+` WHERE pl.id = $1 FOR UPDATE OF pl`, id))
	if err != nil {
		return Plugin{}, fmt.Errorf("plugin %d: %w", id, err)
	}
	refs, err := LatestPipelineReferrers(ctx, q, "plugin", p.Name)
	if err != nil {
		return p, err
	}
	live, err := LiveDeploymentReferrers(ctx, q, "plugin", p.Name)
	if err != nil {
		return p, err
	}
	refs = append(refs, live...)
	if len(refs) > 0 {
		return p, &InUseError{What: fmt.Sprintf("plugin %q", p.Name), Referrers: refs}
	}
	if _, err := q.Exec(ctx, `DELETE FROM plugins WHERE id = $1`, id); err != nil {
		return p, fmt.Errorf("delete plugin %d: %w", id, err)
	}
	return p, nil
}
