// Package store is the only place in nullops-server that speaks SQL. It wraps a
// pgx connection pool and applies the embedded migrations at start.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/golang-migrate/migrate/v4"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/nullops/nullops/migrations"
	"github.com/nullops/nullops/server/errs"
)

// MigrationLockKey is the pg_advisory_lock key held while migrating, so two
// servers starting at once apply the schema one after the other.
const MigrationLockKey int64 = 0x6e756c6c6f7073 // "nullops"

// ErrNotFound is returned when a row does not exist. Its message is the
// API's vague 404: it names nothing.
var ErrNotFound = errs.New(errs.NotFound, "not_found", "not found")

// ErrConflict is returned when a unique constraint is violated; the API
// shows the message the callers wrapped around it (`team "x": already exists`).
var ErrConflict = errs.Mark(errs.Conflict, "conflict", "already exists")

// Store gives typed access to the database. Its methods run on the pool,
// or, on the Store that InTx passes to its function, inside that
// transaction: the same API either way (a domain package validates, writes
// and records the audit entry with one of them). A Store is also a Querier,
// so the package-level functions taking one accept it too.
type Store struct {
	// Pool is the connection pool (also on a transaction's Store: use it
	// only for work that must not join the transaction, such as LISTEN).
	Pool *pgxpool.Pool
	// db is the pool, or the transaction of a Store given by InTx.
	db dbtx
}

// dbtx is what both *pgxpool.Pool and pgx.Tx offer.
type dbtx interface {
	Querier
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Exec runs a statement on the pool or in the Store's transaction.
func (s *Store) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return s.db.Exec(ctx, sql, args...)
}

// Query runs a query on the pool or in the Store's transaction.
func (s *Store) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return s.db.Query(ctx, sql, args...)
}

// QueryRow runs a one-row query on the pool or in the Store's transaction.
func (s *Store) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return s.db.QueryRow(ctx, sql, args...)
}

// InTx runs fn with a Store bound to one transaction, committing when fn
// returns nil and rolling everything back otherwise. Called on a Store
// already in a transaction it opens a savepoint inside it.
func (s *Store) InTx(ctx context.Context, fn func(tx *Store) error) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		return fn(&Store{Pool: s.Pool, db: tx})
	})
}

// InTransaction reports whether s is bound to a transaction (given by InTx).
func (s *Store) InTransaction() bool {
	_, ok := s.db.(pgx.Tx)
	return ok
}

// Open connects to PostgreSQL and checks the connection.
func Open(ctx context.Context, url string, maxConns int32) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping database: %w", err)
	}
	return &Store{Pool: pool, db: pool}, nil
}

// Sibling opens a separate pool of at most maxConns connections to the same
// database, named app in pg_stat_activity, for work that must not queue
// behind the main pool's (the node lease loop: thousands of node
// connections starting at once must not delay a lease renewal past its
// TTL). Close it when done.
func (s *Store) Sibling(ctx context.Context, maxConns int32, app string) (*Store, error) {
	cfg := s.Pool.Config().Copy()
	cfg.MaxConns, cfg.MinConns = maxConns, 0
	cfg.ConnConfig.RuntimeParams["application_name"] = app
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create %s pool: %w", app, err)
	}
	return &Store{Pool: pool, db: pool}, nil
}

// Close releases the pool.
func (s *Store) Close() { s.Pool.Close() }

// Migrate applies every pending migration while holding a session-level
// advisory lock.
func Migrate(ctx context.Context, url string) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("parse database url: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()

	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect for migrations: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", MigrationLockKey); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", MigrationLockKey) //nolint:errcheck

	return migrateWith(db)
}

func migrateWith(db *sql.DB) error {
	src, err := iofs.New(migrations.FS, ".")
	if err != nil {
		return fmt.Errorf("open embedded migrations: %w", err)
	}
	drv, err := migratepgx.WithInstance(db, &migratepgx.Config{})
	if err != nil {
		return fmt.Errorf("migration driver: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", drv)
	if err != nil {
		return fmt.Errorf("migrator: %w", err)
	}
	// Close releases the driver's connection (otherwise it stays open and,
	// e.g., the test template database cannot be renamed).
	defer m.Close()
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return nil
}

// LatestMigration returns the highest migration version embedded in the binary.
func LatestMigration() (uint, error) {
	src, err := iofs.New(migrations.FS, ".")
	if err != nil {
		return 0, err
	}
	defer src.Close()
	v, err := src.First()
	if err != nil {
		return 0, err
	}
	for {
		next, err := src.Next(v)
		if err != nil {
			return v, nil
		}
		v = next
	}
}

// Ready reports whether the database answers and the schema is at the
// version this binary embeds.
func (s *Store) Ready(ctx context.Context) error {
	want, err := LatestMigration()
	if err != nil {
		return fmt.Errorf("read embedded migrations: %w", err)
	}
	var version int64
	var dirty bool
	err = s.db.QueryRow(ctx, "SELECT version, dirty FROM schema_migrations LIMIT 1").Scan(&version, &dirty)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if dirty {
		return fmt.Errorf("schema version %d is dirty", version)
	}
	if uint(version) != want {
		return fmt.Errorf("schema version %d, want %d", version, want)
	}
	return nil
}

// IsUniqueViolation reports whether err is a unique constraint violation.
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// IsUnavailable reports whether err means the database cannot be reached
// or is shutting down (as opposed to a failing statement): the caller may
// try again later.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		c := pgErr.Code
		return strings.HasPrefix(c, "08") || c == "57P01" || c == "57P02" || c == "57P03" || c == "53300"
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed)
}

// IsForeignKeyViolation reports whether err is a foreign key violation.
func IsForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503"
}

// notFound maps pgx.ErrNoRows to ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

var _ = notFound
