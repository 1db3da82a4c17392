package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nullops/nullops/protocol"
)

// Service tag modes.
const (
	TagModePinned     = "pinned"
	TagModeSelectable = "selectable"
)

// Service is a catalog service: an image deployments run.
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
	Health       *protocol.Health  `json:"health,omitempty"`
	Description  string            `json:"description"`
	CreatedAt    time.Time         `json:"created_at"`
	UpdatedAt    time.Time         `json:"updated_at"`
}

// ServiceInput are a service's writable fields.
type ServiceInput struct {
	Name        string
	RegistryID  int64
	Image       string
	TagMode     string
	Tag         string
	TagPattern  string
	Ports       []int
	Env         map[string]string
	Health      *protocol.Health
	Description string
}

const serviceColumns = `sv.id, sv.name, sv.registry_id, r.name, sv.image, sv.tag_mode, sv.tag, sv.tag_pattern,
	sv.ports, sv.env, sv.health, sv.description, sv.created_at, sv.updated_at`

const serviceFrom = ` FROM services sv JOIN registries r ON r.id = sv.registry_id`

func scanService(row pgx.Row) (Service, error) {
	var s Service
	var health protocol.Health
	err := row.Scan(&s.ID, &s.Name, &s.RegistryID, &s.RegistryName, &s.Image, &s.TagMode, &s.Tag, &s.TagPattern,
		&s.Ports, &s.Env, &health, &s.Description, &s.CreatedAt, &s.UpdatedAt)
	if err != nil {
		return Service{}, notFound(err)
	}
	if health.HTTP != "" || len(health.Command) > 0 {
		s.Health = &health
	}
	if s.Ports == nil {
		s.Ports = []int{}
	}
	if s.Env == nil {
		s.Env = map[string]string{}
	}
	return s, nil
}

func serviceArgs(in ServiceInput) []any {
	ports := in.Ports
	if ports == nil {
		ports = []int{}
	}
	env := in.Env
	if env == nil {
		env = map[string]string{}
	}
	var health any = map[string]any{}
	if in.Health != nil {
		health = in.Health
	}
	return []any{in.Name, in.RegistryID, in.Image, in.TagMode, in.Tag, in.TagPattern, ports, env, health, in.Description}
}

// ListServices returns every service by name.
func ListServices(ctx context.Context, q Querier) ([]Service, error) {
	rows, err := q.Query(ctx, `SELECT `+serviceColumns+serviceFrom+` ORDER BY sv.name`)
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	out, err := collectRows(rows, func(r pgx.Rows) (Service, error) { return scanService(r) })
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	return out, nil
}

// GetService returns one service.
func GetService(ctx context.Context, q Querier, id int64) (Service, error) {
	sv, err := scanService(q.QueryRow(ctx, `SELECT `+serviceColumns+serviceFrom+` WHERE sv.id = $1`, id))
	if err != nil {
		return Service{}, fmt.Errorf("service %d: %w", id, err)
	}
	return sv, nil
}

// ServicesByName returns the named services (missing names are absent).
func ServicesByName(ctx context.Context, q Querier, names []string) (map[string]Service, error) {
	rows, err := q.Query(ctx, `SELECT `+serviceColumns+serviceFrom+` WHERE sv.name = ANY($1)`, names)
	if err != nil {
		return nil, fmt.Errorf("services by name: %w", err)
	}
	list, err := collectRows(rows, func(r pgx.Rows) (Service, error) { return scanService(r) })
	if err != nil {
		return nil, fmt.Errorf("services by name: %w", err)
	}
	out := make(map[string]Service, len(list))
	for _, sv := range list {
		out[sv.Name] = sv
	}
	return out, nil
}

// CreateService inserts a service; a taken name is ErrConflict.
func CreateService(ctx context.Context, q Querier, in ServiceInput) (Service, error) {
	var id int64
	err := q.QueryRow(ctx, `INSERT INTO services (name, registry_id, image, tag_mode, tag, tag_pattern, ports, env, health, description)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`, serviceArgs(in)...).Scan(&id)
	if IsUniqueViolation(err) {
		return Service{}, fmt.Errorf("service %q: %w", in.Name, ErrConflict)
	}
	if IsForeignKeyViolation(err) {
		return Service{}, fmt.Errorf("registry %d: %w", in.RegistryID, ErrNotFound)
	}
	if err != nil {
		return Service{}, fmt.Errorf("create service: %w", err)
	}
	return GetService(ctx, q, id)
}

// UpdateService changes a service. Renaming a service the latest pipeline
// version of a project uses is refused (pipelines refer to it by name).
func UpdateService(ctx context.Context, q Querier, id int64, in ServiceInput) (Service, error) {
	old, err := scanService(q.QueryRow(ctx, `SELECT `+serviceColumns+serviceFrom+` WHERE sv.id = $1 FOR UPDATE OF sv`, id))
	if err != nil {
		return Service{}, fmt.Errorf("service %d: %w", id, err)
	}
	if old.Name != in.Name {
		refs, err := LatestPipelineReferrers(ctx, q, "service", old.Name)
		if err != nil {
			return Service{}, err
		}
		if len(refs) > 0 {
			return Service{}, &InUseError{What: fmt.Sprintf("service %q (renaming it)", old.Name), Referrers: refs}
		}
	}
	args := append([]any{id}, serviceArgs(in)...)
	_, err = q.Exec(ctx, `UPDATE services SET name = $2, registry_id = $3, image = $4, tag_mode = $5, tag = $6, tag_pattern = $7,
		ports = $8, env = $9, health = $10, description = $11, updated_at = now() WHERE id = $1`, args...)
	if IsUniqueViolation(err) {
		return Service{}, fmt.Errorf("service %q: %w", in.Name, ErrConflict)
	}
	if IsForeignKeyViolation(err) {
		return Service{}, fmt.Errorf("registry %d: %w", in.RegistryID, ErrNotFound)
	}
	if err != nil {
		return Service{}, fmt.Errorf("update service %d: %w", id, err)
	}
	return GetService(ctx, q, id)
}

// DeleteService deletes a service no project's latest pipeline version and no
// live deployment uses.
func DeleteService(ctx context.Context, q Querier, id int64) (Service, error) {
	sv, err := scanService(q.QueryRow(ctx, `SELECT `+serviceColumns+serviceFrom+` WHERE sv.id = $1 FOR UPDATE OF sv`, id))
	if err != nil {
		return Service{}, fmt.Errorf("service %d: %w", id, err)
	}
	refs, err := LatestPipelineReferrers(ctx, q, "service", sv.Name)
	if err != nil {
		return sv, err
	}
	live, err := LiveDeploymentReferrers(ctx, q, "service", sv.Name)
	if err != nil {
		return sv, err
	}
	refs = append(refs, live...)
	if len(refs) > 0 {
		return sv, &InUseError{What: fmt.Sprintf("service %q", sv.Name), Referrers: refs}
	}
	if _, err := q.Exec(ctx, `DELETE FROM services WHERE id = $1`, id); err != nil {
		return sv, fmt.Errorf("delete service %d: %w", id, err)
	}
	return sv, nil
}
