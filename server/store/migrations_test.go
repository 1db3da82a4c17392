package store_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golang-migrate/migrate/v4"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/nullops/nullops/migrations"
	"github.com/nullops/nullops/server/store/storetest"
)

// TestMigrationsUpDownUp runs the migrations up one at a time, recording
// the schema after each; then down one at a time, checking that each down
// migration restores exactly the schema before its up (so a down file that
// forgets something is caught at its own step); then all up again, to the
// same schema as the first time.
func TestMigrationsUpDownUp(t *testing.T) {
	url := storetest.NewDatabase(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	m := migrator(t, db)
	defer m.Close()

	schemas := []string{schema(ctx, t, db)} // schemas[i]: after i migrations
	if schemas[0] != "" {
		t.Fatalf("a new database is not empty:\n%s", schemas[0])
	}
	var versions []uint
	for {
		err := m.Steps(1)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			t.Fatalf("up after %d migrations: %v", len(versions), err)
		}
		v, _, err := m.Version()
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
		schemas = append(schemas, schema(ctx, t, db))
	}
	if len(versions) < 2 || !strings.Contains(schemas[len(schemas)-1], "table deployments") {
		t.Fatalf("only %d migrations applied", len(versions))
	}
	for i := len(versions); i > 0; i-- {
		if err := m.Steps(-1); err != nil {
			t.Fatalf("down migration %d: %v", versions[i-1], err)
		}
		if got := schema(ctx, t, db); got != schemas[i-1] {
			t.Errorf("down migration %d does not restore the schema before its up:\n%s", versions[i-1], diffLines(schemas[i-1], got))
		}
	}
	if err := m.Up(); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if again := schema(ctx, t, db); again != schemas[len(schemas)-1] {
		t.Fatalf("schema after up, down, up differs from the first up:\n%s", diffLines(schemas[len(schemas)-1], again))
	}
}

// diffLines lists the lines only in want (-) and only in got (+).
func diffLines(want, got string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	w, g := in(want), in(got)
	var out []string
	for l := range w {
		if !g[l] {
			out = append(out, "- "+l)
		}
	}
	for l := range g {
		if !w[l] {
			out = append(out, "+ "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func migrator(t *testing.T, db *sql.DB) *migrate.Migrate {
	t.Helper()
	src, err := iofs.New(migrations.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	drv, err := migratepgx.WithInstance(db, &migratepgx.Config{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", drv)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// schema describes the public schema (tables with their columns, indexes,
// functions, triggers) without golang-migrate's own bookkeeping table, one
// line per object, sorted.
func schema(ctx context.Context, t *testing.T, db *sql.DB) string {
	t.Helper()
	rows, err := db.QueryContext(ctx, `
		SELECT 'table ' || c.table_name || ' ' || c.column_name || ' ' || c.data_type || ' ' || c.is_nullable || ' ' || COALESCE(c.column_default, '')
		  FROM information_schema.columns c
		 WHERE c.table_schema = 'public' AND c.table_name <> 'schema_migrations'
		UNION ALL
		SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename <> 'schema_migrations'
		UNION ALL
		SELECT 'function ' || p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'
		UNION ALL
		SELECT 'trigger ' || tgname || ' on ' || tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal
		UNION ALL
		SELECT 'type ' || t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
		 WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd')
		ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, s)
	}
	if err := rows.Err(); err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}
