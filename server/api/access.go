package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/store"
)

// registerAccess mounts the grants of teams on projects and environments:
// callers who can see the project/environment list its grants; admins change them.
func registerAccess(g *echo.Group, d *Deps) {
	for _, kind := range []string{store.ScopeProject, store.ScopeEnvironment} {
		base := "/" + kind + "s/:id/access"
		g.GET(base, d.listAccess(kind))
		g.PUT(base+"/:team_id", d.putAccess(kind), RequireAdmin)
		g.DELETE(base+"/:team_id", d.deleteAccess(kind), RequireAdmin)
	}
}

// scopeFrom reads the project/environment id and answers 404 when it does
// not exist or the caller may not see it.
func (d *Deps) scopeFrom(c echo.Context, kind string) (store.GrantScope, error) {
	id, err := PathID(c, "id")
	if err != nil {
		return store.GrantScope{}, err
	}
	s := store.GrantScope{Kind: kind, ID: id}
	pid, eid := id, int64(0)
	if kind == store.ScopeEnvironment {
		pid, eid = 0, id
	}
	if err := RequireLevel(c, pid, eid, auth.Read); err != nil {
		return store.GrantScope{}, err
	}
	ok, err := d.Store.GrantTargetExists(c.Request().Context(), s)
	if err != nil {
		return store.GrantScope{}, err
	}
	if !ok {
		return store.GrantScope{}, ErrNotFound
	}
	return s, nil
}

func (d *Deps) listAccess(kind string) echo.HandlerFunc {
	return func(c echo.Context) error {
		s, err := d.scopeFrom(c, kind)
		if err != nil {
			return err
		}
		pg, err := PageFrom(c)
		if err != nil {
			return err
		}
		items, total, err := d.Store.ListGrants(c.Request().Context(), s, pg.Limit(), pg.Offset())
		if err != nil {
			return err
		}
		return RenderList(c, mapOut(items, grantOut), total, pg)
	}
}

func (d *Deps) putAccess(kind string) echo.HandlerFunc {
	return func(c echo.Context) error {
		s, err := d.scopeFrom(c, kind)
		if err != nil {
			return err
		}
		teamID, err := PathID(c, "team_id")
		if err != nil {
			return err
		}
		var req restapi.AccessRequest
		if err := Bind(c, &req); err != nil {
			return err
		}
		g, err := d.Auth.PutGrant(c.Request().Context(), actor(c), s, teamID, req.Level)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, grantOut(g))
	}
}

func (d *Deps) deleteAccess(kind string) echo.HandlerFunc {
	return func(c echo.Context) error {
		s, err := d.scopeFrom(c, kind)
		if err != nil {
			return err
		}
		teamID, err := PathID(c, "team_id")
		if err != nil {
			return err
		}
		if err := d.Auth.DeleteGrant(c.Request().Context(), actor(c), s, teamID); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
}
