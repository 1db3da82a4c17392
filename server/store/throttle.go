package store

import (
	"context"
	"fmt"
	"time"
)

// ThrottleTally is one login throttle key's recent failures (table
// login_throttle; the rules are server/auth's, throttle.go).
type ThrottleTally struct {
	Key      string
	Failures int
	LastAt   time.Time
	ForgetAt time.Time
}

// throttleLockClass is the first key of the transaction advisory locks
// that serialize attempts of one throttle key across server replicas.
const throttleLockClass = 0x6e6f7401

// LockThrottleKeys takes a transaction advisory lock on each key (in the
// order given: callers sort them) and returns the tallies that exist and
// are not yet forgotten at now. Call it in InTx; the locks hold until the
// transaction ends, so concurrent attempts on any replica queue here.
func (s *Store) LockThrottleKeys(ctx context.Context, keys []string, now time.Time) (map[string]ThrottleTally, error) {
	for _, k := range keys {
		if _, err := s.db.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, throttleLockClass, k); err != nil {
			return nil, fmt.Errorf("lock login throttle key: %w", err)
		}
	}
	rows, err := s.db.Query(ctx, `SELECT key, failures, last_at, forget_at FROM login_throttle
		WHERE key = ANY($1) AND forget_at > $2`, keys, now)
	if err != nil {
		return nil, fmt.Errorf("read login throttle: %w", err)
	}
	defer rows.Close()
	out := map[string]ThrottleTally{}
	for rows.Next() {
		var t ThrottleTally
		if err := rows.Scan(&t.Key, &t.Failures, &t.LastAt, &t.ForgetAt); err != nil {
			return nil, fmt.Errorf("read login throttle: %w", err)
		}
		out[t.Key] = t
	}
	return out, rows.Err()
}

// SaveThrottleTally writes a key's tally (a tally without failures removes
// the key).
func (s *Store) SaveThrottleTally(ctx context.Context, t ThrottleTally) error {
	var err error
	if t.Failures <= 0 {
		_, err = s.db.Exec(ctx, `DELETE FROM login_throttle WHERE key = $1`, t.Key)
	} else {
		_, err = s.db.Exec(ctx, `INSERT INTO login_throttle (key, failures, last_at, forget_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (key) DO UPDATE SET failures = $2, last_at = $3, forget_at = $4`, t.Key, t.Failures, t.LastAt, t.ForgetAt)
	}
	if err != nil {
		return fmt.Errorf("save login throttle: %w", err)
	}
	return nil
}

// ForgetThrottleKey removes a key's failures.
func (s *Store) ForgetThrottleKey(ctx context.Context, key string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM login_throttle WHERE key = $1`, key); err != nil {
		return fmt.Errorf("forget login throttle key: %w", err)
	}
	return nil
}

// UndoThrottleFailure takes one failure off each key (an attempt that
// checked nothing, or the address's share of a success); a key left with
// none is removed.
func (s *Store) UndoThrottleFailure(ctx context.Context, keys ...string) error {
	_, err := s.db.Exec(ctx, `WITH dec AS (
			UPDATE login_throttle SET failures = failures - 1 WHERE key = ANY($1) AND failures > 1 RETURNING key)
		DELETE FROM login_throttle WHERE key = ANY($1) AND failures <= 1 AND key NOT IN (SELECT key FROM dec)`, keys)
	if err != nil {
		return fmt.Errorf("undo login throttle failure: %w", err)
	}
	return nil
}

// PruneThrottle removes the tallies forgotten at now (readers ignore them
// anyway; this keeps the table small).
func (s *Store) PruneThrottle(ctx context.Context, now time.Time) (int64, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM login_throttle WHERE forget_at <= $1`, now)
	if err != nil {
		return 0, fmt.Errorf("prune login throttle: %w", err)
	}
	return tag.RowsAffected(), nil
}

// CountThrottleKeys is the number of stored tallies (tests).
func (s *Store) CountThrottleKeys(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRow(ctx, `SELECT count(*) FROM login_throttle`).Scan(&n)
	return n, err
}
