package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// IngressPollsChannel is the NOTIFY channel announcing a changed
// ingress_polls row (payload: the instance), so route withdrawal on any
// server replica learns of a confirmation made through another.
const IngressPollsChannel = "nullops_ingress_polls"

// IngressPoll is the route table an ingress instance serves, as its last
// poll said ("" instance: ingresses that do not confirm, e.g. Traefik).
type IngressPoll struct {
	Instance string
	ETag     string
	PolledAt time.Time
}

// RecordIngressPoll stores a poll and announces it on IngressPollsChannel
// (a poll older than the one stored changes nothing).
func (s *Store) RecordIngressPoll(ctx context.Context, p IngressPoll) error {
	_, err := s.db.Exec(ctx, `WITH up AS (
			INSERT INTO ingress_polls (instance, etag, polled_at) VALUES ($1, $2, $3)
			ON CONFLICT (instance) DO UPDATE SET etag = excluded.etag, polled_at = excluded.polled_at
			WHERE ingress_polls.polled_at <= excluded.polled_at
			RETURNING instance)
		SELECT pg_notify($4, instance) FROM up`, p.Instance, p.ETag, p.PolledAt, IngressPollsChannel)
	if err != nil {
		return fmt.Errorf("record ingress poll: %w", err)
	}
	return nil
}

// IngressPollsSince returns the polls recorded at or after since, and
// removes older ones.
func (s *Store) IngressPollsSince(ctx context.Context, since time.Time) ([]IngressPoll, error) {
	if _, err := s.db.Exec(ctx, `DELETE FROM ingress_polls WHERE polled_at < $1`, since.Add(-time.Hour)); err != nil {
		return nil, fmt.Errorf("prune ingress polls: %w", err)
	}
	rows, err := s.db.Query(ctx, `SELECT instance, etag, polled_at FROM ingress_polls WHERE polled_at >= $1`, since)
	if err != nil {
		return nil, fmt.Errorf("read ingress polls: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (IngressPoll, error) {
		var p IngressPoll
		err := r.Scan(&p.Instance, &p.ETag, &p.PolledAt)
		return p, err
	})
}
