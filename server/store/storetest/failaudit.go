package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/nullops/nullops/server/store"
)

// FailAudit makes every audit_log insert whose action matches the SQL LIKE
// pattern (e.g. "team.%") fail in st's database, with a trigger that raises,
// until the test ends. Tests use it to prove that an action whose audit entry
// cannot be written changes nothing.
func FailAudit(t testing.TB, st *store.Store, pattern string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS test_fail_audit (pattern text NOT NULL)`,
		`CREATE OR REPLACE FUNCTION test_fail_audit() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF EXISTS (SELECT 1 FROM test_fail_audit WHERE NEW.action LIKE pattern) THEN
				RAISE EXCEPTION 'test: audit insert of % refused', NEW.action;
			END IF;
			RETURN NEW;
		END $$`,
		`CREATE OR REPLACE TRIGGER test_fail_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION test_fail_audit()`,
	} {
		if _, err := st.Pool.Exec(ctx, q); err != nil {
			t.Fatalf("install the failing audit trigger: %v", err)
		}
	}
	if _, err := st.Pool.Exec(ctx, `INSERT INTO test_fail_audit (pattern) VALUES ($1)`, pattern); err != nil {
		t.Fatalf("fail audit %q: %v", pattern, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := st.Pool.Exec(ctx, `DELETE FROM test_fail_audit WHERE pattern = $1`, pattern); err != nil {
			t.Errorf("stop failing audit %q: %v", pattern, err)
		}
	})
}
