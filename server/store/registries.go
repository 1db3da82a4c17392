package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nullops/nullops/server/errs"
)

// InUseError refuses deleting (or renaming) something still referenced. It
// wraps ErrConflict (HTTP 409); its message names the referrers.
type InUseError struct {
	What      string   // e.g. `registry "acme"`
	Referrers []string // e.g. `service "api"`, `project "shop" (latest pipeline)`
}

func (e *InUseError) Error() string {
	const max = 5
	refs := e.Referrers
	more := ""
	if len(refs) > max {
		more = fmt.Sprintf(" and %d more", len(refs)-max)
		refs = refs[:max]
	}
	return fmt.Sprintf("%s is still used by %s%s", e.What, strings.Join(refs, ", "), more)
}

func (e *InUseError) Unwrap() error { return errInUse }

// errInUse is the kind of an InUseError: a conflict (it wraps ErrConflict)
// with the code in_use.
var errInUse = &errs.Error{Kind: errs.Conflict, Code: "in_use", Message: "still in use", Chain: true, Err: ErrConflict}

// referrers runs a query returning one text column per referrer.
func referrers(ctx context.Context, q Querier, sql string, args ...any) ([]string, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return collectRows(rows, func(r pgx.Rows) (string, error) {
		var s string
		err := r.Scan(&s)
		return s, err
	})
}

// Registry is a container registry. The password is never part of it; only
// whether one is set.
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

// RegistryInput are the writable fields of a registry (the password is set
// separately, sealed).
type RegistryInput struct {
	Name     string
	URL      string
	Username string
	Insecure bool
}

// Sealed is an encrypted value with the id of the key that sealed it.
type Sealed struct {
	Ciphertext []byte
	KeyID      string
}

const registryColumns = `r.id, r.name, r.url, r.username, r.password_enc IS NOT NULL, r.insecure, r.is_default, r.created_at, r.updated_at`

func scanRegistry(row pgx.Row, extra ...any) (Registry, error) {
	var r Registry
	dest := append([]any{&r.ID, &r.Name, &r.URL, &r.Username, &r.HasPassword, &r.Insecure, &r.IsDefault, &r.CreatedAt, &r.UpdatedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return Registry{}, notFound(err)
	}
	return r, nil
}

// ListRegistries returns every registry, the default first, then by name.
func (s *Store) ListRegistries(ctx context.Context) ([]Registry, error) {
	rows, err := s.db.Query(ctx, `SELECT `+registryColumns+` FROM registries r ORDER BY r.is_default DESC, r.name`)
	if err != nil {
		return nil, fmt.Errorf("list registries: %w", err)
	}
	out, err := collectRows(rows, func(r pgx.Rows) (Registry, error) { return scanRegistry(r) })
	if err != nil {
		return nil, fmt.Errorf("list registries: %w", err)
	}
	return out, nil
}

// GetRegistry returns one registry.
func GetRegistry(ctx context.Context, q Querier, id int64) (Registry, error) {
	r, err := scanRegistry(q.QueryRow(ctx, `SELECT `+registryColumns+` FROM registries r WHERE r.id = $1`, id))
	if err != nil {
		return Registry{}, fmt.Errorf("registry %d: %w", id, err)
	}
	return r, nil
}

// GetRegistryWithPassword returns a registry and its sealed password (nil
// Ciphertext when none is set).
func GetRegistryWithPassword(ctx context.Context, q Querier, id int64) (Registry, Sealed, error) {
	var sealed Sealed
	r, err := scanRegistry(q.QueryRow(ctx, `SELECT `+registryColumns+`, r.password_enc, r.key_id FROM registries r WHERE r.id = $1`, id),
		&sealed.Ciphertext, &sealed.KeyID)
	if err != nil {
		return Registry{}, Sealed{}, fmt.Errorf("registry %d: %w", id, err)
	}
	return r, sealed, nil
}

// CreateRegistry inserts a registry without a password; a taken name is
// ErrConflict.
func CreateRegistry(ctx context.Context, q Querier, in RegistryInput) (Registry, error) {
	r, err := scanRegistry(q.QueryRow(ctx, `INSERT INTO registries AS r (name, url, username, insecure)
		VALUES ($1, $2, $3, $4) RETURNING `+registryColumns, in.Name, in.URL, in.Username, in.Insecure))
	if IsUniqueViolation(err) {
		return Registry{}, fmt.Errorf("registry %q: %w", in.Name, ErrConflict)
	}
	if err != nil {
		return Registry{}, fmt.Errorf("create registry: %w", err)
	}
	return r, nil
}

// UpdateRegistry changes the writable fields.
func UpdateRegistry(ctx context.Context, q Querier, id int64, in RegistryInput) (Registry, error) {
	r, err := scanRegistry(q.QueryRow(ctx, `UPDATE registries AS r SET name = $2, url = $3, username = $4, insecure = $5, updated_at = now()
		WHERE r.id = $1 RETURNING `+registryColumns, id, in.Name, in.URL, in.Username, in.Insecure))
	if IsUniqueViolation(err) {
		return Registry{}, fmt.Errorf("registry %q: %w", in.Name, ErrConflict)
	}
	if err != nil {
		return Registry{}, fmt.Errorf("update registry %d: %w", id, err)
	}
	return r, nil
}

// SetRegistryPassword stores a sealed password; a nil Ciphertext clears it.
func SetRegistryPassword(ctx context.Context, q Querier, id int64, p Sealed) error {
	var enc any
	if p.Ciphertext != nil {
		enc = p.Ciphertext
	}
	tag, err := q.Exec(ctx, `UPDATE registries SET password_enc = $2, key_id = $3, updated_at = now() WHERE id = $1`, id, enc, p.KeyID)
	if err != nil {
		return fmt.Errorf("set password of registry %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("registry %d: %w", id, ErrNotFound)
	}
	return nil
}

// DeleteRegistry deletes a registry no service, plugin or live deployment
// (pulling with its credentials) uses. The default
// registry cannot be deleted.
func DeleteRegistry(ctx context.Context, q Querier, id int64) (Registry, error) {
	r, err := scanRegistry(q.QueryRow(ctx, `SELECT `+registryColumns+` FROM registries r WHERE r.id = $1 FOR UPDATE`, id))
	if err != nil {
		return Registry{}, fmt.Errorf("registry %d: %w", id, err)
	}
	if r.IsDefault {
		return r, &InUseError{What: fmt.Sprintf("registry %q", r.Name), Referrers: []string{"the platform (it is the default registry)"}}
	}
	refs, err := referrers(ctx, q, `SELECT 'service "' || name || '"' FROM services WHERE registry_id = $1
		UNION ALL SELECT 'plugin "' || name || '"' FROM plugins WHERE registry_id = $1
		UNION ALL SELECT DISTINCT 'deployment "' || d.name || '" in ' || e.name || ' (' || d.status || ')'
			FROM deployments d JOIN environments e ON e.id = d.environment_id
			CROSS JOIN LATERAL jsonb_each_text(CASE WHEN jsonb_typeof(d.definition->'registries') = 'object' THEN d.definition->'registries' ELSE '{}'::jsonb END) r
			WHERE d.status IN `+liveStatuses+` AND r.value = $1::text
		ORDER BY 1`, id)
	if err != nil {
		return r, fmt.Errorf("referrers of registry %d: %w", id, err)
	}
	if len(refs) > 0 {
		return r, &InUseError{What: fmt.Sprintf("registry %q", r.Name), Referrers: refs}
	}
	if _, err := q.Exec(ctx, `DELETE FROM registries WHERE id = $1`, id); err != nil {
		if IsForeignKeyViolation(err) {
			return r, fmt.Errorf("registry %q is still referenced: %w", r.Name, ErrConflict)
		}
		return r, fmt.Errorf("delete registry %d: %w", id, err)
	}
	return r, nil
}
