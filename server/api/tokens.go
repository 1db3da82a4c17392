package api

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/auth"
)

func registerTokens(g *echo.Group, d *Deps) {
	g.GET("/tokens", d.listTokens)
	g.POST("/tokens", d.createToken)
	g.DELETE("/tokens/:id", d.revokeToken)
}

func (d *Deps) listTokens(c echo.Context) error {
	pg, err := PageFrom(c)
	if err != nil {
		return err
	}
	items, total, err := d.Store.ListAPITokens(c.Request().Context(), PrincipalFrom(c).UserID, pg.Limit(), pg.Offset())
	if err != nil {
		return err
	}
	return RenderList(c, mapOut(items, tokenOut), total, pg)
}

func (d *Deps) createToken(c echo.Context) error {
	var req restapi.TokenRequest
	if err := Bind(c, &req); err != nil {
		return err
	}
	p := PrincipalFrom(c)
	n := auth.NewToken{UserID: p.UserID, Name: req.Name, ExpiresAt: req.ExpiresAt, ExpiresInDays: req.ExpiresInDays}
	if p.Via == auth.ViaToken {
		n.Within = p.TokenExpiresAt
	}
	tok, t, err := d.Auth.CreateToken(c.Request().Context(), actor(c), n)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, restapi.TokenCreated{APIToken: tokenOut(t), Token: tok})
}

func (d *Deps) revokeToken(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	if _, err := d.Auth.RevokeToken(c.Request().Context(), actor(c), PrincipalFrom(c).UserID, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// PathID parses a positive integer path parameter; anything else is 404
// (an id that cannot exist names no resource).
func PathID(c echo.Context, name string) (int64, error) {
	id, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || id < 1 {
		return 0, ErrNotFound
	}
	return id, nil
}
