package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Secret is a named value's metadata; the value itself is never part of it.
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

// Secret scopes.
const (
	SecretScopeGlobal  = "global"
	SecretScopeProject = "project"
)

const secretColumns = `sc.id, sc.name, sc.project_id, COALESCE(p.name, ''), sc.updated_by, COALESCE(u.username, ''), sc.created_at, sc.updated_at`

const secretFrom = ` FROM secrets sc LEFT JOIN projects p ON p.id = sc.project_id LEFT JOIN users u ON u.id = sc.updated_by`

func scanSecret(row pgx.Row) (Secret, error) {
	var s Secret
	if err := row.Scan(&s.ID, &s.Name, &s.ProjectID, &s.ProjectName, &s.UpdatedByID, &s.UpdatedByName, &s.CreatedAt, &s.UpdatedAt); err != nil {
		return Secret{}, notFound(err)
	}
	s.Scope = SecretScopeGlobal
	if s.ProjectID != nil {
		s.Scope = SecretScopeProject
	}
	return s, nil
}

// SecretFilter selects secrets: Global only global ones, ProjectID only
// that project's; both zero = all.
type SecretFilter struct {
	Global    bool
	ProjectID int64
}

// ListSecrets returns secret metadata, global first, then by project and name.
func (s *Store) ListSecrets(ctx context.Context, f SecretFilter) ([]Secret, error) {
	cond, args := "", []any{}
	switch {
	case f.Global:
		cond = " WHERE sc.project_id IS NULL"
	case f.ProjectID != 0:
		cond, args = " WHERE sc.project_id = $1", []any{f.ProjectID}
	}
	rows, err := s.db.Query(ctx, `SELECT `+secretColumns+secretFrom+cond+` ORDER BY sc.project_id NULLS FIRST, sc.name`, args...)
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	out, err := collectRows(rows, func(r pgx.Rows) (Secret, error) { return scanSecret(r) })
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	return out, nil
}

// GetSecret returns one secret's metadata.
func GetSecret(ctx context.Context, q Querier, id int64) (Secret, error) {
	sc, err := scanSecret(q.QueryRow(ctx, `SELECT `+secretColumns+secretFrom+` WHERE sc.id = $1`, id))
	if err != nil {
		return Secret{}, fmt.Errorf("secret %d: %w", id, err)
	}
	return sc, nil
}

// CreateSecret inserts a secret with a placeholder value: the caller seals
// the value with the new id as associated data and calls SetSecretValue in
// the same transaction. A taken name in the scope is ErrConflict.
func CreateSecret(ctx context.Context, q Querier, name string, projectID *int64, updatedBy *int64) (int64, error) {
	var id int64
	err := q.QueryRow(ctx, `INSERT INTO secrets (name, project_id, value_enc, key_id, updated_by)
		VALUES ($1, $2, '\x'::bytea, '', $3) RETURNING id`, name, projectID, updatedBy).Scan(&id)
	if IsUniqueViolation(err) {
		return 0, fmt.Errorf("secret %q in this scope: %w", name, ErrConflict)
	}
	if IsForeignKeyViolation(err) {
		return 0, fmt.Errorf("project: %w", ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("create secret: %w", err)
	}
	return id, nil
}

// SetSecretValue stores a sealed value and who changed it.
func SetSecretValue(ctx context.Context, q Querier, id int64, v Sealed, updatedBy *int64) error {
	tag, err := q.Exec(ctx, `UPDATE secrets SET value_enc = $2, key_id = $3, updated_by = $4, updated_at = now() WHERE id = $1`,
		id, v.Ciphertext, v.KeyID, updatedBy)
	if err != nil {
		return fmt.Errorf("set secret %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("secret %d: %w", id, ErrNotFound)
	}
	return nil
}

// DeleteSecret deletes a secret. A secret that a project's latest pipeline
// version or a live deployment's pipeline version references (and that no
// project secret of the same name shadows) is refused.
func DeleteSecret(ctx context.Context, q Querier, id int64) (Secret, error) {
	sc, err := scanSecret(q.QueryRow(ctx, `SELECT `+secretColumns+secretFrom+` WHERE sc.id = $1 FOR UPDATE OF sc`, id))
	if err != nil {
		return Secret{}, fmt.Errorf("secret %d: %w", id, err)
	}
	refs, err := referrers(ctx, q, `SELECT 'project "' || p.name || '" (pipeline version ' || pv.version || ')'
		FROM projects p JOIN LATERAL (SELECT version, graph FROM pipeline_versions WHERE project_id = p.id ORDER BY version DESC LIMIT 1) pv ON TRUE
		WHERE strpos(pv.graph::text, $1) > 0
		  AND ($2::bigint IS NULL AND NOT EXISTS (SELECT 1 FROM secrets o WHERE o.project_id = p.id AND o.name = $3)
		       OR p.id = $2::bigint)
		UNION ALL
		SELECT 'deployment "' || d.name || '" in ' || e.name || ' (' || d.status || ', pipeline version ' || pv.version || ')'
		FROM deployments d JOIN pipeline_versions pv ON pv.id = d.pipeline_version_id JOIN environments e ON e.id = d.environment_id
		WHERE d.status IN `+liveStatuses+` AND strpos(pv.graph::text, $1) > 0
		  AND ($2::bigint IS NULL AND NOT EXISTS (SELECT 1 FROM secrets o WHERE o.project_id = d.project_id AND o.name = $3)
		       OR d.project_id = $2::bigint)
		ORDER BY 1`, "${secrets."+sc.Name+"}", sc.ProjectID, sc.Name)
	if err != nil {
		return sc, fmt.Errorf("referrers of secret %d: %w", id, err)
	}
	if len(refs) > 0 {
		return sc, &InUseError{What: fmt.Sprintf("secret %q", sc.Name), Referrers: refs}
	}
	if _, err := q.Exec(ctx, `DELETE FROM secrets WHERE id = $1`, id); err != nil {
		return sc, fmt.Errorf("delete secret %d: %w", id, err)
	}
	return sc, nil
}

// SealedSecret is a secret with its encrypted value, for resolving a
// deployment in memory.
type SealedSecret struct {
	ID        int64
	Name      string
	ProjectID *int64
	Value     Sealed
}

// ProjectSecrets returns the sealed secrets visible to a project: global
// ones, overridden by project ones of the same name.
func ProjectSecrets(ctx context.Context, q Querier, projectID int64) (map[string]SealedSecret, error) {
	rows, err := q.Query(ctx, `SELECT id, name, project_id, value_enc, key_id FROM secrets
		WHERE project_id IS NULL OR project_id = $1 ORDER BY project_id NULLS FIRST`, projectID)
	if err != nil {
		return nil, fmt.Errorf("secrets of project %d: %w", projectID, err)
	}
	list, err := collectRows(rows, func(r pgx.Rows) (SealedSecret, error) {
		var s SealedSecret
		err := r.Scan(&s.ID, &s.Name, &s.ProjectID, &s.Value.Ciphertext, &s.Value.KeyID)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("secrets of project %d: %w", projectID, err)
	}
	out := make(map[string]SealedSecret, len(list))
	for _, s := range list {
		out[s.Name] = s // project rows come last and override
	}
	return out, nil
}

// SecretNames returns the names of the secrets visible to a project
// (projectID 0: global ones only).
func SecretNames(ctx context.Context, q Querier, projectID int64) ([]string, error) {
	names, err := referrers(ctx, q, `SELECT DISTINCT name FROM secrets WHERE project_id IS NULL OR project_id = $1 ORDER BY 1`, projectID)
	if err != nil {
		return nil, fmt.Errorf("secret names of project %d: %w", projectID, err)
	}
	return names, nil
}

// --- key rotation -------------------------------------------------------

// Encrypted value kinds, for rotation.
const (
	SealedSecretValue      = "secret"   // secrets.value_enc, aad "secret:<id>"
	SealedRegistryPassword = "registry" // registries.password_enc, aad "registry:<id>"
	SealedNodeToken        = "node"     // nodes.token_enc, aad "node-token:<id>"
)

// SealedRow is one encrypted column value of any kind.
type SealedRow struct {
	Kind  string
	ID    int64
	Value Sealed
}

// LockSealedValues reads, under row locks, every encrypted value in the
// database (inside the caller's transaction).
func LockSealedValues(ctx context.Context, tx Querier) ([]SealedRow, error) {
	var out []SealedRow
	for _, qry := range []struct{ kind, sql string }{
		{SealedSecretValue, `SELECT id, value_enc, key_id FROM secrets ORDER BY id FOR UPDATE`},
		{SealedRegistryPassword, `SELECT id, password_enc, key_id FROM registries WHERE password_enc IS NOT NULL ORDER BY id FOR UPDATE`},
		{SealedNodeToken, `SELECT id, token_enc, token_key_id FROM nodes WHERE token_enc IS NOT NULL ORDER BY id FOR UPDATE`},
	} {
		rows, err := tx.Query(ctx, qry.sql)
		if err != nil {
			return nil, fmt.Errorf("read %s values: %w", qry.kind, err)
		}
		list, err := collectRows(rows, func(r pgx.Rows) (SealedRow, error) {
			row := SealedRow{Kind: qry.kind}
			err := r.Scan(&row.ID, &row.Value.Ciphertext, &row.Value.KeyID)
			return row, err
		})
		if err != nil {
			return nil, fmt.Errorf("read %s values: %w", qry.kind, err)
		}
		out = append(out, list...)
	}
	return out, nil
}

// ReplaceSealedValue writes a re-encrypted value without touching
// updated_at/updated_by (the plaintext did not change).
func ReplaceSealedValue(ctx context.Context, tx Querier, row SealedRow) error {
	var sql string
	switch row.Kind {
	case SealedSecretValue:
		sql = `UPDATE secrets SET value_enc = $2, key_id = $3 WHERE id = $1`
	case SealedRegistryPassword:
		sql = `UPDATE registries SET password_enc = $2, key_id = $3 WHERE id = $1`
	case SealedNodeToken:
		sql = `UPDATE nodes SET token_enc = $2, token_key_id = $3 WHERE id = $1`
	default:
		return fmt.Errorf("unknown sealed value kind %q", row.Kind)
	}
	if _, err := tx.Exec(ctx, sql, row.ID, row.Value.Ciphertext, row.Value.KeyID); err != nil {
		return fmt.Errorf("replace %s %d: %w", row.Kind, row.ID, err)
	}
	return nil
}
