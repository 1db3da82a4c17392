package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/internal/safetext"
	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/errs"
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
	now := d.Auth.Now()
	v := errs.Fields{}
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" || len(req.Name) > auth.MaxTokenNameLen {
		v.Add("name", "required, at most %d characters", auth.MaxTokenNameLen)
	} else if err := safetext.Name(req.Name); err != nil {
		v.Add("name", "%s", err.Error())
	}
	exp := req.ExpiresAt
	switch {
	case req.ExpiresAt != nil && req.ExpiresInDays != nil:
		v.Add("expires_at", "set expires_at or expires_in_days, not both")
	case req.ExpiresAt != nil && !req.ExpiresAt.After(now):
		v.Add("expires_at", "must be in the future")
	case req.ExpiresInDays != nil:
		if *req.ExpiresInDays < 1 || *req.ExpiresInDays > 3650 {
			v.Add("expires_in_days", "must be from 1 to 3650")
		} else {
			t := now.Add(time.Duration(*req.ExpiresInDays) * 24 * time.Hour)
			exp = &t
		}
	}
	p := PrincipalFrom(c)
	if p.Via == auth.ViaToken && p.TokenExpiresAt != nil && (exp == nil || exp.After(*p.TokenExpiresAt)) {
		v.Add(expiryField(req), "a token can only create tokens that expire no later than itself (%s)", p.TokenExpiresAt.UTC().Format(time.RFC3339))
	}
	if err := v.Err(); err != nil {
		return err
	}
	tok, t, err := d.Auth.CreateToken(c.Request().Context(), actor(c), p.UserID, req.Name, exp)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, restapi.TokenCreated{APIToken: tokenOut(t), Token: tok})
}

// expiryField names the expiry field the caller used.
func expiryField(r restapi.TokenRequest) string {
	if r.ExpiresInDays != nil {
		return "expires_in_days"
	}
	return "expires_at"
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
