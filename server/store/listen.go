package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ListenerApplicationName is the application_name of the change feed's
// listening connection, so operators (and tests) can find it in
// pg_stat_activity.
const ListenerApplicationName = "nullops-changefeed"

// Listen holds one dedicated connection (outside the pool, so the pool never
// hands out a connection in LISTEN state) LISTENing on every channel. It
// calls listening once all LISTENs are in place, then fn for every
// notification in commit order, until ctx ends or the connection fails; the
// error is returned and the caller reconnects (notifications sent while
// nobody listens are lost, so the caller's consumers resynchronize).
func (s *Store) Listen(ctx context.Context, channels []string, listening func(), fn func(channel, payload string)) error {
	cfg := s.Pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = ListenerApplicationName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect for LISTEN: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx)) //nolint:errcheck
	for _, ch := range channels {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return fmt.Errorf("listen %s: %w", ch, err)
		}
	}
	listening()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("wait for notification: %w", err)
		}
		fn(n.Channel, n.Payload)
	}
}
