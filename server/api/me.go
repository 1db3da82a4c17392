package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/auth"
)

func registerMe(g *echo.Group, d *Deps) {
	g.GET("/me", d.getMe)
	g.PUT("/me/password", d.changeMyPassword)
}

func (d *Deps) getMe(c echo.Context) error {
	p := PrincipalFrom(c)
	ctx := c.Request().Context()
	u, err := d.Store.GetUser(ctx, p.UserID)
	if err != nil {
		return err
	}
	teams, err := d.Store.UserTeams(ctx, p.UserID)
	if err != nil {
		return err
	}
	out := restapi.Me{User: userOut(u), Via: p.Via, Teams: teamsOut(teams)}
	if s := sessionFrom(c); s != nil {
		out.CSRFToken, out.ExpiresAt = s.CSRFToken, &s.ExpiresAt
	}
	return c.JSON(http.StatusOK, out)
}

func (d *Deps) changeMyPassword(c echo.Context) error {
	var req restapi.PasswordChange
	if err := Bind(c, &req); err != nil {
		return err
	}
	p := PrincipalFrom(c)
	var keep []byte
	if s := sessionFrom(c); s != nil {
		keep = s.IDHash
	}
	err := d.Auth.ChangePassword(c.Request().Context(), auth.PasswordChange{
		UserID: p.UserID, Username: p.Username, Current: req.Current, New: req.New,
		ClientAddr: ClientAddr(c), KeepSession: keep, RevokeTokens: req.RevokeTokens,
	})
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
