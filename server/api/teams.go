package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/auth"
)

// registerTeams mounts teams and memberships (admin only; users see their
// own teams in GET /me).
func registerTeams(g *echo.Group, d *Deps) {
	g.GET("/teams", d.listTeams, RequireAdmin)
	g.POST("/teams", d.createTeam, RequireAdmin)
	g.GET("/teams/:id", d.getTeam, RequireAdmin)
	g.PATCH("/teams/:id", d.updateTeam, RequireAdmin)
	g.DELETE("/teams/:id", d.deleteTeam, RequireAdmin)
	g.GET("/teams/:id/members", d.listMembers, RequireAdmin)
	g.PUT("/teams/:id/members/:user_id", d.addMember, RequireAdmin)
	g.DELETE("/teams/:id/members/:user_id", d.removeMember, RequireAdmin)
}

// teamInput is auth's input of a restapi.TeamRequest.
func teamInput(r restapi.TeamRequest) auth.TeamInput {
	return auth.TeamInput{Name: r.Name, Description: r.Description}
}

func (d *Deps) listTeams(c echo.Context) error {
	pg, err := PageFrom(c)
	if err != nil {
		return err
	}
	items, total, err := d.Store.ListTeams(c.Request().Context(), pg.Limit(), pg.Offset())
	if err != nil {
		return err
	}
	return RenderList(c, teamsOut(items), total, pg)
}

func (d *Deps) createTeam(c echo.Context) error {
	var req restapi.TeamRequest
	if err := Bind(c, &req); err != nil {
		return err
	}
	t, err := d.Auth.CreateTeam(c.Request().Context(), actor(c), teamInput(req))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, teamOut(t))
}

func (d *Deps) getTeam(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	t, err := d.Store.GetTeam(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, teamOut(t))
}

func (d *Deps) updateTeam(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	var req restapi.TeamRequest
	if err := Bind(c, &req); err != nil {
		return err
	}
	t, err := d.Auth.UpdateTeam(c.Request().Context(), actor(c), id, teamInput(req))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, teamOut(t))
}

func (d *Deps) deleteTeam(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	if err := d.Auth.DeleteTeam(c.Request().Context(), actor(c), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (d *Deps) listMembers(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	pg, err := PageFrom(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if _, err := d.Store.GetTeam(ctx, id); err != nil {
		return err
	}
	items, total, err := d.Store.ListTeamMembers(ctx, id, pg.Limit(), pg.Offset())
	if err != nil {
		return err
	}
	return RenderList(c, mapOut(items, memberOut), total, pg)
}

func (d *Deps) memberIDs(c echo.Context) (teamID, userID int64, err error) {
	if teamID, err = PathID(c, "id"); err != nil {
		return 0, 0, err
	}
	if userID, err = PathID(c, "user_id"); err != nil {
		return 0, 0, err
	}
	return teamID, userID, nil
}

func (d *Deps) addMember(c echo.Context) error {
	teamID, userID, err := d.memberIDs(c)
	if err != nil {
		return err
	}
	if err := d.Auth.AddTeamMember(c.Request().Context(), actor(c), teamID, userID); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (d *Deps) removeMember(c echo.Context) error {
	teamID, userID, err := d.memberIDs(c)
	if err != nil {
		return err
	}
	if err := d.Auth.RemoveTeamMember(c.Request().Context(), actor(c), teamID, userID); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
