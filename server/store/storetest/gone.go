package storetest

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nullops/nullops/server/store"
)

// Removed records that a deployment was removed at the given time (action
// "deleted", "cancelled" or "expired" by actor) with the history function
// the deployment code uses, and sets its status (deleting or deleted,
// deleted_at = at for deleted).
func (s *RouteSeed) Removed(t testing.TB, id int64, status, action, actor string, at time.Time) {
	t.Helper()
	ctx, cancel := seedCtx()
	defer cancel()
	err := pgx.BeginFunc(ctx, s.st.Pool, func(tx pgx.Tx) error {
		if err := store.AddDeploymentHistory(ctx, tx, id, nil, actor, action, map[string]any{}); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE deployment_history SET created_at = $2 WHERE id = (SELECT max(id) FROM deployment_history WHERE deployment_id = $1)`, id, at); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE deployments SET status = $2, deleted_at = CASE WHEN $2 = 'deleted' THEN $3::timestamptz END WHERE id = $1`, id, status, at)
		return err
	})
	if err != nil {
		t.Fatalf("seed removal of deployment %d: %v", id, err)
	}
}
