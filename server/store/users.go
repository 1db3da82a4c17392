package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Querier is satisfied by the pool (*pgxpool.Pool) and by a transaction
// (pgx.Tx), so one store function can run inside or outside a transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// User roles.
const (
	RoleAdmin = "admin"
	RoleUser  = "user"
)

// User is an account. The password hash is deliberately not part of it: it is
// read only by UserCredentials, so it cannot leak into a response.
type User struct {
	ID          int64     `json:"id"`
	Username    string    `json:"username"`
	DisplayName string    `json:"display_name"`
	Role        string    `json:"role"`
	Active      bool      `json:"active"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// IsAdmin reports whether the user has the admin role.
func (u User) IsAdmin() bool { return u.Role == RoleAdmin }

const userColumns = `u.id, u.username, u.display_name, u.role, u.active, u.created_at, u.updated_at`

func scanUser(row pgx.Row, extra ...any) (User, error) {
	var u User
	dest := append([]any{&u.ID, &u.Username, &u.DisplayName, &u.Role, &u.Active, &u.CreatedAt, &u.UpdatedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return User{}, notFound(err)
	}
	return u, nil
}

// NewUser is a user to create; PasswordHash is already encoded (server/auth).
type NewUser struct {
	Username     string
	DisplayName  string
	PasswordHash string
	Role         string
}

// CreateUser inserts a user; a taken username is ErrConflict.
func CreateUser(ctx context.Context, q Querier, n NewUser) (User, error) {
	u, err := scanUser(q.QueryRow(ctx, `INSERT INTO users AS u (username, display_name, password_hash, role)
		VALUES ($1, $2, $3, $4) RETURNING `+userColumns, n.Username, n.DisplayName, n.PasswordHash, n.Role))
	if IsUniqueViolation(err) {
		return User{}, fmt.Errorf("username %q: %w", n.Username, ErrConflict)
	}
	if err != nil {
		return User{}, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}

// CreateFirstUser inserts n only when the users table is empty, holding a
// transaction-level advisory lock so two servers starting at once create one
// admin. created is false when a user already existed.
func (s *Store) CreateFirstUser(ctx context.Context, n NewUser) (u User, created bool, err error) {
	err = s.InTx(ctx, func(tx *Store) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(0x6e6f7073_61646d)); err != nil {
			return fmt.Errorf("lock first user: %w", err)
		}
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM users)").Scan(&exists); err != nil {
			return fmt.Errorf("count users: %w", err)
		}
		if exists {
			return nil
		}
		u, err = CreateUser(ctx, tx, n)
		created = err == nil
		return err
	})
	return u, created, err
}

// GetUser returns a user by id.
func (s *Store) GetUser(ctx context.Context, id int64) (User, error) {
	u, err := scanUser(s.db.QueryRow(ctx, "SELECT "+userColumns+" FROM users u WHERE u.id = $1", id))
	if err != nil {
		return User{}, fmt.Errorf("get user %d: %w", id, err)
	}
	return u, nil
}

// UserCredentials returns a user and their encoded password hash by username.
func (s *Store) UserCredentials(ctx context.Context, username string) (User, string, error) {
	var hash string
	u, err := scanUser(s.db.QueryRow(ctx, "SELECT "+userColumns+", u.password_hash FROM users u WHERE u.username = $1", username), &hash)
	if err != nil {
		return User{}, "", fmt.Errorf("user credentials: %w", err)
	}
	return u, hash, nil
}

// UserPasswordHash returns the encoded password hash of a user by id.
func (s *Store) UserPasswordHash(ctx context.Context, id int64) (string, error) {
	var hash string
	if err := s.db.QueryRow(ctx, "SELECT password_hash FROM users WHERE id = $1", id).Scan(&hash); err != nil {
		return "", fmt.Errorf("user password hash: %w", notFound(err))
	}
	return hash, nil
}

// UserFilter selects users for a list.
type UserFilter struct {
	Query string // substring of username or display name
	// Sort is one of UserSorts ("" = by username); Desc reverses it.
	Sort   string
	Desc   bool
	Limit  int
	Offset int
}

// UserSorts are the columns a user list can be sorted by; ties are broken
// by username.
var UserSorts = map[string]string{
	"username": "u.username",
	"name":     "u.display_name",
	"role":     "u.role",
	"status":   "u.active",
	"created":  "u.created_at",
}

// ListUsers pages through users ordered by username.
func (s *Store) ListUsers(ctx context.Context, f UserFilter) ([]User, int, error) {
	cond, args := "", []any{}
	if f.Query != "" {
		args = append(args, "%"+likeEscape(f.Query)+"%")
		cond = " WHERE u.username ILIKE $1 OR u.display_name ILIKE $1"
	}
	var total int
	if err := s.db.QueryRow(ctx, "SELECT count(*) FROM users u"+cond, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count users: %w", err)
	}
	order := "u.username"
	if f.Sort != "" {
		col, ok := UserSorts[f.Sort]
		if !ok {
			return nil, 0, fmt.Errorf("list users: unknown sort %q", f.Sort)
		}
		dir := " ASC"
		if f.Desc {
			dir = " DESC"
		}
		order = col + dir + ", u.username"
	}
	args = append(args, pageLimit(f.Limit), max(f.Offset, 0))
	rows, err := s.db.Query(ctx, "SELECT "+userColumns+" FROM users u"+cond+
		" ORDER BY "+order+" LIMIT $"+strconv.Itoa(len(args)-1)+" OFFSET $"+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, 0, fmt.Errorf("list users: %w", err)
	}
	out, err := collectRows(rows, func(r pgx.Rows) (User, error) { return scanUser(r) })
	if err != nil {
		return nil, 0, fmt.Errorf("list users: %w", err)
	}
	return out, total, nil
}

// UserUpdate changes the non-nil fields of a user.
type UserUpdate struct {
	DisplayName *string
	Role        *string
	Active      *bool
}

// UpdateUser applies u to user id and returns the result.
func UpdateUser(ctx context.Context, q Querier, id int64, up UserUpdate) (User, error) {
	u, err := scanUser(q.QueryRow(ctx, `UPDATE users AS u SET
			display_name = COALESCE($2, u.display_name),
			role = COALESCE($3, u.role),
			active = COALESCE($4, u.active),
			updated_at = now()
		WHERE u.id = $1 RETURNING `+userColumns, id, up.DisplayName, up.Role, up.Active))
	if err != nil {
		return User{}, fmt.Errorf("update user %d: %w", id, err)
	}
	return u, nil
}

// SetUserPassword replaces a user's password hash.
func SetUserPassword(ctx context.Context, q Querier, id int64, hash string) error {
	tag, err := q.Exec(ctx, "UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1", id, hash)
	if err != nil {
		return fmt.Errorf("set password of user %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("set password of user %d: %w", id, ErrNotFound)
	}
	return nil
}

// DeleteUser removes a user (sessions, tokens and memberships cascade).
func DeleteUser(ctx context.Context, q Querier, id int64) error {
	tag, err := q.Exec(ctx, "DELETE FROM users WHERE id = $1", id)
	if err != nil {
		return fmt.Errorf("delete user %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete user %d: %w", id, ErrNotFound)
	}
	return nil
}

// LockActiveAdmins counts active admins while locking their rows, so a
// transaction that would remove the last one can refuse.
func LockActiveAdmins(ctx context.Context, tx Querier) (int, error) {
	rows, err := tx.Query(ctx, "SELECT id FROM users WHERE role = 'admin' AND active FOR UPDATE")
	if err != nil {
		return 0, fmt.Errorf("lock admins: %w", err)
	}
	ids, err := collectRows(rows, func(r pgx.Rows) (int64, error) {
		var id int64
		return id, r.Scan(&id)
	})
	if err != nil {
		return 0, fmt.Errorf("lock admins: %w", err)
	}
	return len(ids), nil
}

// LockUser reads a user FOR UPDATE.
func LockUser(ctx context.Context, tx Querier, id int64) (User, error) {
	u, err := scanUser(tx.QueryRow(ctx, "SELECT "+userColumns+" FROM users u WHERE u.id = $1 FOR UPDATE", id))
	if err != nil {
		return User{}, fmt.Errorf("lock user %d: %w", id, err)
	}
	return u, nil
}

// pageLimit returns a positive page size (50 by default).
func pageLimit(n int) int {
	if n <= 0 {
		return 50
	}
	return n
}

// likeEscape escapes LIKE wildcards in a user-supplied substring.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// collectRows scans every row with scan and closes rows.
func collectRows[T any](rows pgx.Rows, scan func(pgx.Rows) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
