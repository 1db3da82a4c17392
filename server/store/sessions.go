package store

import (
	"context"
	"fmt"
	"time"
)

// Session is a browser session. IDHash is the SHA-256 of the cookie value;
// the cookie value itself is never stored.
type Session struct {
	IDHash     []byte
	UserID     int64
	CSRFToken  string
	ClientAddr string
	UserAgent  string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time // absolute expiry
}

// CreateSession stores a new session.
func (s *Store) CreateSession(ctx context.Context, ss Session) error {
	_, err := s.db.Exec(ctx, `INSERT INTO sessions (id_hash, user_id, csrf_token, client_addr, user_agent, created_at, last_seen_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6, $7)`,
		ss.IDHash, ss.UserID, ss.CSRFToken, ss.ClientAddr, ss.UserAgent, ss.CreatedAt, ss.ExpiresAt)
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// SessionByHash returns a session and its user.
func (s *Store) SessionByHash(ctx context.Context, idHash []byte) (Session, User, error) {
	var ss Session
	u, err := scanUser(s.db.QueryRow(ctx, "SELECT "+userColumns+`, s.id_hash, s.user_id, s.csrf_token, s.client_addr, s.user_agent,
			s.created_at, s.last_seen_at, s.expires_at
		FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1`, idHash),
		&ss.IDHash, &ss.UserID, &ss.CSRFToken, &ss.ClientAddr, &ss.UserAgent, &ss.CreatedAt, &ss.LastSeenAt, &ss.ExpiresAt)
	if err != nil {
		return Session{}, User{}, fmt.Errorf("session: %w", err)
	}
	return ss, u, nil
}

// TouchSession records use of a session.
func (s *Store) TouchSession(ctx context.Context, idHash []byte, at time.Time) error {
	if _, err := s.db.Exec(ctx, "UPDATE sessions SET last_seen_at = $2 WHERE id_hash = $1", idHash, at); err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// DeleteSession removes one session (logout, expiry).
func (s *Store) DeleteSession(ctx context.Context, idHash []byte) error {
	if _, err := s.db.Exec(ctx, "DELETE FROM sessions WHERE id_hash = $1", idHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteUserSessions removes every session of a user except keep (nil =
// all), e.g. after a password change or when the user is disabled.
func DeleteUserSessions(ctx context.Context, q Querier, userID int64, keep []byte) error {
	if _, err := q.Exec(ctx, "DELETE FROM sessions WHERE user_id = $1 AND ($2::bytea IS NULL OR id_hash <> $2)", userID, keep); err != nil {
		return fmt.Errorf("delete sessions of user %d: %w", userID, err)
	}
	return nil
}

// DeleteExpiredSessions removes sessions past their absolute expiry or idle
// since before idleCutoff, and returns how many.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now, idleCutoff time.Time) (int64, error) {
	tag, err := s.db.Exec(ctx, "DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2", now, idleCutoff)
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	return tag.RowsAffected(), nil
}
