package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment is a set of nodes with an ingress base domain.
type Environment struct {
	ID                int64     `json:"id"`
	Name              string    `json:"name"`
	BaseDomain        string    `json:"base_domain"`
	HostTemplate      string    `json:"host_template"`
	DefaultTTLSeconds int64     `json:"-"`
	TrafficIsActivity bool      `json:"traffic_is_activity"`
	CPUOvercommit     float64   `json:"cpu_overcommit"`
	Description       string    `json:"description"`
	CreatedAt         time.Time `json:"created_at"`
	UpdatedAt         time.Time `json:"updated_at"`
}

// EnvironmentInput are an environment's writable fields.
type EnvironmentInput struct {
	Name              string
	BaseDomain        string
	HostTemplate      string
	DefaultTTLSeconds int64
	TrafficIsActivity bool
	CPUOvercommit     float64
	Description       string
}

// DefaultCPUOvercommit is an environment's cpu_overcommit when none is given.
const DefaultCPUOvercommit = 1.5

func (in EnvironmentInput) overcommit() float64 {
	if in.CPUOvercommit == 0 {
		return DefaultCPUOvercommit
	}
	return in.CPUOvercommit
}

const environmentColumns = `e.id, e.name, e.base_domain, e.host_template, e.default_ttl_seconds, e.traffic_is_activity, e.cpu_overcommit, e.description, e.created_at, e.updated_at`

func scanEnvironment(row pgx.Row) (Environment, error) {
	var e Environment
	if err := row.Scan(&e.ID, &e.Name, &e.BaseDomain, &e.HostTemplate, &e.DefaultTTLSeconds, &e.TrafficIsActivity, &e.CPUOvercommit, &e.Description, &e.CreatedAt, &e.UpdatedAt); err != nil {
		return Environment{}, notFound(err)
	}
	return e, nil
}

// ListEnvironments returns environments by name. A non-nil visibleTo
// restricts them to those the user sees by auth.Visibility.SeesEnvironment:
// environments their teams hold a grant on, or every environment when they
// hold any project grant.
func (s *Store) ListEnvironments(ctx context.Context, visibleTo *int64) ([]Environment, error) {
	cond, args := "", []any{}
	if visibleTo != nil {
		args = append(args, *visibleTo)
		cond = ` WHERE ` + VisibleToUserSQL(1, "", "e.id") + ` OR EXISTS (SELECT 1 FROM access_grants ag JOIN team_members tm ON tm.team_id = ag.team_id
			WHERE tm.user_id = $1 AND ag.project_id IS NOT NULL)`
	}
	rows, err := s.db.Query(ctx, `SELECT `+environmentColumns+` FROM environments e`+cond+` ORDER BY e.name`, args...)
	if err != nil {
		return nil, fmt.Errorf("list environments: %w", err)
	}
	out, err := collectRows(rows, func(r pgx.Rows) (Environment, error) { return scanEnvironment(r) })
	if err != nil {
		return nil, fmt.Errorf("list environments: %w", err)
	}
	return out, nil
}

// GetEnvironment returns one environment.
func GetEnvironment(ctx context.Context, q Querier, id int64) (Environment, error) {
	e, err := scanEnvironment(q.QueryRow(ctx, `SELECT `+environmentColumns+` FROM environments e WHERE e.id = $1`, id))
	if err != nil {
		return Environment{}, fmt.Errorf("environment %d: %w", id, err)
	}
	return e, nil
}

// CreateEnvironment inserts an environment; a taken name is ErrConflict.
func CreateEnvironment(ctx context.Context, q Querier, in EnvironmentInput) (Environment, error) {
	e, err := scanEnvironment(q.QueryRow(ctx, `INSERT INTO environments AS e (name, base_domain, host_template, default_ttl_seconds, traffic_is_activity, description, cpu_overcommit)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+environmentColumns,
		in.Name, in.BaseDomain, in.HostTemplate, in.DefaultTTLSeconds, in.TrafficIsActivity, in.Description, in.overcommit()))
	if IsUniqueViolation(err) {
		return Environment{}, fmt.Errorf("environment %q: %w", in.Name, ErrConflict)
	}
	if err != nil {
		return Environment{}, fmt.Errorf("create environment: %w", err)
	}
	return e, nil
}

// UpdateEnvironment changes an environment.
func UpdateEnvironment(ctx context.Context, q Querier, id int64, in EnvironmentInput) (Environment, error) {
	e, err := scanEnvironment(q.QueryRow(ctx, `UPDATE environments AS e SET name = $2, base_domain = $3, host_template = $4,
		default_ttl_seconds = $5, traffic_is_activity = $6, description = $7, cpu_overcommit = $8, updated_at = now()
		WHERE e.id = $1 RETURNING `+environmentColumns,
		id, in.Name, in.BaseDomain, in.HostTemplate, in.DefaultTTLSeconds, in.TrafficIsActivity, in.Description, in.overcommit()))
	if IsUniqueViolation(err) {
		return Environment{}, fmt.Errorf("environment %q: %w", in.Name, ErrConflict)
	}
	if err != nil {
		return Environment{}, fmt.Errorf("update environment %d: %w", id, err)
	}
	return e, nil
}

// DeleteEnvironment deletes an environment without nodes and without live
// deployments. Rows of deleted deployments in it go with it (their audit
// entries stay).
func DeleteEnvironment(ctx context.Context, q Querier, id int64) (Environment, error) {
	e, err := scanEnvironment(q.QueryRow(ctx, `SELECT `+environmentColumns+` FROM environments e WHERE e.id = $1 FOR UPDATE`, id))
	if err != nil {
		return Environment{}, fmt.Errorf("environment %d: %w", id, err)
	}
	refs, err := referrers(ctx, q, `SELECT 'node "' || name || '"' FROM nodes WHERE environment_id = $1
		UNION ALL SELECT 'deployment "' || name || '" (' || status || ')' FROM deployments WHERE environment_id = $1 AND status <> 'deleted'
		ORDER BY 1`, id)
	if err != nil {
		return e, fmt.Errorf("referrers of environment %d: %w", id, err)
	}
	if len(refs) > 0 {
		return e, &InUseError{What: fmt.Sprintf("environment %q", e.Name), Referrers: refs}
	}
	if _, err := q.Exec(ctx, `DELETE FROM deployments WHERE environment_id = $1 AND status = 'deleted'`, id); err != nil {
		return e, fmt.Errorf("delete deleted deployments of environment %d: %w", id, err)
	}
	if _, err := q.Exec(ctx, `DELETE FROM environments WHERE id = $1`, id); err != nil {
		if IsForeignKeyViolation(err) {
			return e, fmt.Errorf("environment %q is still referenced: %w", e.Name, ErrConflict)
		}
		return e, fmt.Errorf("delete environment %d: %w", id, err)
	}
	return e, nil
}
