package api

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/server/auth"
)

// StreamRecheck is how often an open stream (event streams, followed
// service logs) authenticates its caller again and re-checks their access:
// a stream ends within this interval (plus one check) after the session is
// logged out or expires, the API token is revoked, the user is disabled or
// demoted, or the grant it relied on is removed.
var StreamRecheck = time.Second

// errAccessEnded ends a stream whose caller lost access.
var errAccessEnded = errors.New("access ended")

// reauthenticate repeats what RequireUser did for this request (without
// CSRF: streams are GETs, and without recording the session's use, so an
// open stream does not keep a session from idling out) and returns the
// caller as the database says now.
func (d *Deps) reauthenticate(ctx context.Context, c echo.Context) (*auth.Principal, error) {
	if h := c.Request().Header.Get(echo.HeaderAuthorization); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return nil, auth.ErrUnauthenticated
		}
		return d.Auth.Token(ctx, strings.TrimSpace(tok))
	}
	ck, err := c.Cookie(SessionCookie)
	if err != nil || ck.Value == "" {
		return nil, auth.ErrUnauthenticated
	}
	s, err := d.Auth.CheckSession(ctx, ck.Value)
	if err != nil {
		return nil, err
	}
	return s.Principal, nil
}

// guardStream returns a context derived from the request's that is
// cancelled (with errAccessEnded as its cause) as soon as a periodic
// re-check finds that the caller is no longer authenticated or that still
// refuses their current principal. Any error of a check ends the stream:
// the client reconnects and gets the answer a new request gets. The
// returned stop releases the watcher.
func (d *Deps) guardStream(c echo.Context, still func(ctx context.Context, p *auth.Principal) error) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(c.Request().Context())
	go func() {
		t := time.NewTicker(StreamRecheck)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			p, err := d.reauthenticate(ctx, c)
			if err == nil && still != nil {
				err = still(ctx, p)
			}
			if err != nil {
				if ctx.Err() == nil {
					d.Log.Info().Err(err).Str("path", c.Path()).Str("user", PrincipalFrom(c).Username).
						Msg("stream closed: the caller's access ended")
				}
				cancel(errAccessEnded)
				return
			}
		}
	}()
	return ctx, func() { cancel(context.Canceled) }
}

// accessEnded reports whether ctx was ended by guardStream.
func accessEnded(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), errAccessEnded)
}

// stillLevel is a guardStream check: the caller still holds at least need
// on a resource of projectID/environmentID.
func (d *Deps) stillLevel(projectID, environmentID int64, need auth.Level) func(context.Context, *auth.Principal) error {
	return func(ctx context.Context, p *auth.Principal) error {
		lvl, err := d.Auth.Level(ctx, p, projectID, environmentID)
		if err != nil {
			return err
		}
		if lvl < need {
			return errAccessEnded
		}
		return nil
	}
}

// stillSees is a guardStream check: the caller still sees everything they
// saw when the stream started (a stream that would now show less ends; the
// client reconnects with the narrower view).
func (d *Deps) stillSees(before auth.Visibility) func(context.Context, *auth.Principal) error {
	return func(ctx context.Context, p *auth.Principal) error {
		now, err := d.Auth.Visible(ctx, p)
		if err != nil {
			return err
		}
		if now.All {
			return nil
		}
		if before.All {
			return errAccessEnded
		}
		for _, id := range before.ProjectIDs {
			if !now.Sees(id, 0) {
				return errAccessEnded
			}
		}
		for _, id := range before.EnvironmentIDs {
			if !now.Sees(0, id) {
				return errAccessEnded
			}
		}
		return nil
	}
}
