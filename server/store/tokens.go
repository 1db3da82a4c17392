package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// APIToken is an API token's metadata; the token itself is never stored,
// only its SHA-256 (which is not part of this struct either).
type APIToken struct {
	ID         int64      `json:"id"`
	UserID     int64      `json:"user_id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	CreatedAt  time.Time  `json:"created_at"`
}

const tokenColumns = `t.id, t.user_id, t.name, t.prefix, t.expires_at, t.last_used_at, t.revoked_at, t.created_at`

func scanToken(row pgx.Row, extra ...any) (APIToken, error) {
	var t APIToken
	dest := append([]any{&t.ID, &t.UserID, &t.Name, &t.Prefix, &t.ExpiresAt, &t.LastUsedAt, &t.RevokedAt, &t.CreatedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return APIToken{}, notFound(err)
	}
	return t, nil
}

// NewAPIToken is a token to store.
type NewAPIToken struct {
	UserID    int64
	Name      string
	Hash      []byte
	Prefix    string
	ExpiresAt *time.Time
	CreatedAt time.Time
}

// CreateAPIToken stores a token's hash and metadata.
func CreateAPIToken(ctx context.Context, q Querier, n NewAPIToken) (APIToken, error) {
	t, err := scanToken(q.QueryRow(ctx, `INSERT INTO api_tokens AS t (user_id, name, token_hash, prefix, expires_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+tokenColumns, n.UserID, n.Name, n.Hash, n.Prefix, n.ExpiresAt, n.CreatedAt))
	if err != nil {
		return APIToken{}, fmt.Errorf("create api token: %w", err)
	}
	return t, nil
}

// APITokenByHash returns a token and its owner.
func (s *Store) APITokenByHash(ctx context.Context, hash []byte) (APIToken, User, error) {
	var t APIToken
	u, err := scanUser(s.db.QueryRow(ctx, "SELECT "+userColumns+", "+tokenColumns+
		" FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1", hash),
		&t.ID, &t.UserID, &t.Name, &t.Prefix, &t.ExpiresAt, &t.LastUsedAt, &t.RevokedAt, &t.CreatedAt)
	if err != nil {
		return APIToken{}, User{}, fmt.Errorf("api token: %w", err)
	}
	return t, u, nil
}

// TouchAPIToken records use of a token.
func (s *Store) TouchAPIToken(ctx context.Context, id int64, at time.Time) error {
	if _, err := s.db.Exec(ctx, "UPDATE api_tokens SET last_used_at = $2 WHERE id = $1", id, at); err != nil {
		return fmt.Errorf("touch api token: %w", err)
	}
	return nil
}

// ListAPITokens pages through a user's tokens, newest first (revoked ones
// included, so the owner sees what happened to them).
func (s *Store) ListAPITokens(ctx context.Context, userID int64, limit, offset int) ([]APIToken, int, error) {
	var total int
	if err := s.db.QueryRow(ctx, "SELECT count(*) FROM api_tokens WHERE user_id = $1", userID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count api tokens: %w", err)
	}
	rows, err := s.db.Query(ctx, "SELECT "+tokenColumns+" FROM api_tokens t WHERE t.user_id = $1 ORDER BY t.id DESC LIMIT $2 OFFSET $3",
		userID, pageLimit(limit), max(offset, 0))
	if err != nil {
		return nil, 0, fmt.Errorf("list api tokens: %w", err)
	}
	out, err := collectRows(rows, func(r pgx.Rows) (APIToken, error) { return scanToken(r) })
	if err != nil {
		return nil, 0, fmt.Errorf("list api tokens: %w", err)
	}
	return out, total, nil
}

// RevokeAPIToken marks a token of userID revoked; a token of another user is
// ErrNotFound. Revoking twice keeps the first revocation time.
func RevokeAPIToken(ctx context.Context, q Querier, userID, id int64, at time.Time) (APIToken, error) {
	t, err := scanToken(q.QueryRow(ctx, `UPDATE api_tokens AS t SET revoked_at = COALESCE(t.revoked_at, $3)
		WHERE t.id = $1 AND t.user_id = $2 RETURNING `+tokenColumns, id, userID, at))
	if err != nil {
		return APIToken{}, fmt.Errorf("revoke api token %d: %w", id, err)
	}
	return t, nil
}

// RevokeUserAPITokens revokes every unrevoked token of a user (after an
// admin password reset or when the user is disabled) and returns how many.
func RevokeUserAPITokens(ctx context.Context, q Querier, userID int64, at time.Time) (int64, error) {
	tag, err := q.Exec(ctx, "UPDATE api_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL", userID, at)
	if err != nil {
		return 0, fmt.Errorf("revoke api tokens of user %d: %w", userID, err)
	}
	return tag.RowsAffected(), nil
}
