package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// JobLockApplicationPrefix starts the application_name of the dedicated
// connection that holds (or waits for) a singleton job's lock, followed by
// the job's name and its holder ("nullops-job cleanup 4711@host"): operators
// and tests find the holder in pg_stat_activity.
const JobLockApplicationPrefix = "nullops-job "

// jobLockClass is the first key of singleton job advisory locks (the
// second is the hash of the job's name).
const jobLockClass = 0x6e6f7402

// JobLock is a singleton job's lock, held by a transaction advisory lock
// on a dedicated connection (outside the pool). It is released when the
// holder releases it, when its connection closes (the process died: the
// kernel closes the socket) and when the holder stops talking to the
// database for its lease: the transaction is idle in between heartbeats,
// and idle_in_transaction_session_timeout makes PostgreSQL end the session
// of a frozen holder (SIGSTOP, a stalled machine) whose socket is still
// open. The transaction takes no snapshot between statements, so it does
// not hold back vacuum.
type JobLock struct {
	conn *pgx.Conn
}

// WaitJobLock connects, then waits until it holds the lock of job name
// (another holder's release, death or lease expiry ends the wait) or ctx
// ends. holder names this process in application_name.
func (s *Store) WaitJobLock(ctx context.Context, name, holder string, lease time.Duration) (*JobLock, error) {
	cfg := s.Pool.Config().ConnConfig.Copy()
	app := JobLockApplicationPrefix + name + " " + holder
	if len(app) > 63 {
		app = app[:63]
	}
	cfg.RuntimeParams["application_name"] = app
	cfg.RuntimeParams["idle_in_transaction_session_timeout"] = fmt.Sprint(max(lease.Milliseconds(), 1))
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect for the %s job lock: %w", name, err)
	}
	// A waiting statement is not idle: the lease timeout does not cut it.
	_, err = conn.Exec(ctx, `BEGIN`)
	if err == nil {
		_, err = conn.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, jobLockClass, name)
	}
	if err != nil {
		conn.Close(context.WithoutCancel(ctx)) //nolint:errcheck
		return nil, fmt.Errorf("wait for the %s job lock: %w", name, err)
	}
	return &JobLock{conn: conn}, nil
}

// Heartbeat proves the holder alive within its lease; an error means the
// lock is lost (or about to be): stop the job.
func (l *JobLock) Heartbeat(ctx context.Context) error {
	if _, err := l.conn.Exec(ctx, `SELECT 1`); err != nil {
		return fmt.Errorf("job lock heartbeat: %w", err)
	}
	return nil
}

// Release gives the lock up (closing the connection ends the transaction).
func (l *JobLock) Release(ctx context.Context) {
	l.conn.Close(ctx) //nolint:errcheck
}

// JobLockHolders returns the application_name of every connection that
// holds a singleton job lock (tests and diagnostics).
func (s *Store) JobLockHolders(ctx context.Context) ([]string, error) {
	rows, err := s.db.Query(ctx, `SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.classid::bigint = $1 AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		ORDER BY 1`, jobLockClass)
	if err != nil {
		return nil, fmt.Errorf("list job lock holders: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
