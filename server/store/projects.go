package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Project is something deployments are made of: a pipeline plus limits.
type Project struct {
	ID          int64   `json:"id"`
	Name        string  `json:"name"`
	Description string  `json:"description"`
	CPU         float64 `json:"cpu"`
	MemoryMB    int64   `json:"memory_mb"`
	TTLSeconds  *int64  `json:"-"`
	// DeployTimeoutSeconds: a deployment deploying longer is failed and
	// rolled back.
	DeployTimeoutSeconds int64           `json:"-"`
	NodeSelector         json.RawMessage `json:"node_selector"`
	CreatedAt            time.Time       `json:"created_at"`
	UpdatedAt            time.Time       `json:"updated_at"`
}

// ProjectInput are a project's writable fields.
type ProjectInput struct {
	Name         string
	Description  string
	CPU          float64
	MemoryMB     int64
	TTLSeconds   *int64          // nil = environment default
	NodeSelector json.RawMessage // valid selector JSON (checked by the caller)
	// DeployTimeoutSeconds: 0 = DefaultDeployTimeout.
	DeployTimeoutSeconds int64
}

// DefaultDeployTimeout is how long a deployment may stay deploying unless
// its project says otherwise.
const DefaultDeployTimeout = 30 * time.Minute

func (in ProjectInput) deployTimeout() int64 {
	if in.DeployTimeoutSeconds <= 0 {
		return int64(DefaultDeployTimeout / time.Second)
	}
	return in.DeployTimeoutSeconds
}

const projectColumns = `p.id, p.name, p.description, p.cpu, p.memory_mb, p.ttl_seconds, p.node_selector::text, p.created_at, p.updated_at,
	p.deploy_timeout_seconds`

func scanProject(row pgx.Row) (Project, error) {
	var p Project
	var sel string
	if err := row.Scan(&p.ID, &p.Name, &p.Description, &p.CPU, &p.MemoryMB, &p.TTLSeconds, &sel, &p.CreatedAt, &p.UpdatedAt,
		&p.DeployTimeoutSeconds); err != nil {
		return Project{}, notFound(err)
	}
	p.NodeSelector = json.RawMessage(sel)
	return p, nil
}

func projectSelector(in ProjectInput) string {
	if len(in.NodeSelector) == 0 || string(in.NodeSelector) == "null" {
		return "{}"
	}
	return string(in.NodeSelector)
}

// ListProjects returns projects by name. A non-nil visibleTo restricts them
// to those the user sees by auth.Visibility.SeesProject: projects their
// teams hold a grant on, or every project when they hold any environment
// grant.
func (s *Store) ListProjects(ctx context.Context, visibleTo *int64) ([]Project, error) {
	cond, args := "", []any{}
	if visibleTo != nil {
		args = append(args, *visibleTo)
		cond = ` WHERE ` + VisibleToUserSQL(1, "p.id", "") + ` OR EXISTS (SELECT 1 FROM access_grants ag JOIN team_members tm ON tm.team_id = ag.team_id
			WHERE tm.user_id = $1 AND ag.environment_id IS NOT NULL)`
	}
	rows, err := s.db.Query(ctx, `SELECT `+projectColumns+` FROM projects p`+cond+` ORDER BY p.name`, args...)
	if err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	out, err := collectRows(rows, func(r pgx.Rows) (Project, error) { return scanProject(r) })
	if err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	return out, nil
}

// GetProject returns one project.
func GetProject(ctx context.Context, q Querier, id int64) (Project, error) {
	p, err := scanProject(q.QueryRow(ctx, `SELECT `+projectColumns+` FROM projects p WHERE p.id = $1`, id))
	if err != nil {
		return Project{}, fmt.Errorf("project %d: %w", id, err)
	}
	return p, nil
}

// LockProject returns a project under a row lock (serialises pipeline saves).
func LockProject(ctx context.Context, tx Querier, id int64) (Project, error) {
	p, err := scanProject(tx.QueryRow(ctx, `SELECT `+projectColumns+` FROM projects p WHERE p.id = $1 FOR UPDATE`, id))
	if err != nil {
		return Project{}, fmt.Errorf("project %d: %w", id, err)
	}
	return p, nil
}

// CreateProject inserts a project; a taken name is ErrConflict.
func CreateProject(ctx context.Context, q Querier, in ProjectInput) (Project, error) {
	p, err := scanProject(q.QueryRow(ctx, `INSERT INTO projects AS p (name, description, cpu, memory_mb, ttl_seconds, node_selector, deploy_timeout_seconds)
		VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7) RETURNING `+projectColumns,
		in.Name, in.Description, in.CPU, in.MemoryMB, in.TTLSeconds, projectSelector(in), in.deployTimeout()))
	if IsUniqueViolation(err) {
		return Project{}, fmt.Errorf("project %q: %w", in.Name, ErrConflict)
	}
	if err != nil {
		return Project{}, fmt.Errorf("create project: %w", err)
	}
	return p, nil
}

// UpdateProject changes a project.
func UpdateProject(ctx context.Context, q Querier, id int64, in ProjectInput) (Project, error) {
	p, err := scanProject(q.QueryRow(ctx, `UPDATE projects AS p SET name = $2, description = $3, cpu = $4, memory_mb = $5,
		ttl_seconds = $6, node_selector = $7::jsonb, deploy_timeout_seconds = $8, updated_at = now() WHERE p.id = $1 RETURNING `+projectColumns,
		id, in.Name, in.Description, in.CPU, in.MemoryMB, in.TTLSeconds, projectSelector(in), in.deployTimeout()))
	if IsUniqueViolation(err) {
		return Project{}, fmt.Errorf("project %q: %w", in.Name, ErrConflict)
	}
	if err != nil {
		return Project{}, fmt.Errorf("update project %d: %w", id, err)
	}
	return p, nil
}

// DeleteProject deletes a project without live deployments, with its
// pipeline versions, secrets and grants. Rows of its deleted deployments go
// with it (their audit entries stay).
func DeleteProject(ctx context.Context, q Querier, id int64) (Project, error) {
	p, err := scanProject(q.QueryRow(ctx, `SELECT `+projectColumns+` FROM projects p WHERE p.id = $1 FOR UPDATE`, id))
	if err != nil {
		return Project{}, fmt.Errorf("project %d: %w", id, err)
	}
	refs, err := referrers(ctx, q, `SELECT 'deployment "' || d.name || '" in environment "' || e.name || '" (' || d.status || ')'
		FROM deployments d JOIN environments e ON e.id = d.environment_id
		WHERE d.project_id = $1 AND d.status <> 'deleted' ORDER BY 1`, id)
	if err != nil {
		return p, fmt.Errorf("referrers of project %d: %w", id, err)
	}
	if len(refs) > 0 {
		return p, &InUseError{What: fmt.Sprintf("project %q", p.Name), Referrers: refs}
	}
	if _, err := q.Exec(ctx, `DELETE FROM deployments WHERE project_id = $1 AND status = 'deleted'`, id); err != nil {
		return p, fmt.Errorf("delete deleted deployments of project %d: %w", id, err)
	}
	if _, err := q.Exec(ctx, `DELETE FROM projects WHERE id = $1`, id); err != nil {
		if IsForeignKeyViolation(err) {
			return p, fmt.Errorf("project %q is still referenced: %w", p.Name, ErrConflict)
		}
		return p, fmt.Errorf("delete project %d: %w", id, err)
	}
	return p, nil
}
