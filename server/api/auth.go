package api

import (
	"mime"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/errs"
)

// registerAuth mounts login (public) and logout (authenticated).
func registerAuth(v1, user *echo.Group, d *Deps) {
	v1.POST("/auth/login", d.login)
	user.POST("/auth/logout", d.logout)
}

// validateLogin names missing fields.
func validateLogin(r restapi.LoginRequest) error {
	v := errs.Fields{}
	if r.Username == "" {
		v.Add("username", "required")
	}
	if r.Password == "" {
		v.Add("password", "required")
	}
	return v.Err()
}

// ParseLoginRequest decodes and validates a login body.
func ParseLoginRequest(c echo.Context) (restapi.LoginRequest, error) {
	// A JSON content type makes cross-site form posts (login CSRF) need a
	// CORS preflight, which this server never grants.
	mt, _, _ := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if mt != echo.MIMEApplicationJSON {
		return restapi.LoginRequest{}, &errs.Error{Kind: errs.Unsupported, Code: "unsupported_media_type",
			Message: "send the login as Content-Type: application/json"}
	}
	var r restapi.LoginRequest
	if err := Bind(c, &r); err != nil {
		return restapi.LoginRequest{}, err
	}
	return r, validateLogin(r)
}

func (d *Deps) login(c echo.Context) error {
	req, err := ParseLoginRequest(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	res, err := d.Auth.Login(ctx, auth.LoginRequest{
		Username: req.Username, Password: req.Password,
		ClientAddr: ClientAddr(c), UserAgent: c.Request().UserAgent(),
	})
	if err != nil {
		return err // auth.Service.Login has recorded a refused login
	}
	c.SetCookie(&http.Cookie{
		Name: SessionCookie, Value: res.SessionID, Path: "/", Expires: res.ExpiresAt,
		HttpOnly: true, Secure: secureCookies(c, d), SameSite: http.SameSiteLaxMode,
	})
	teams, err := d.Store.UserTeams(ctx, res.User.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, restapi.Me{User: userOut(res.User), Via: auth.ViaSession, CSRFToken: res.CSRFToken,
		ExpiresAt: &res.ExpiresAt, Teams: teamsOut(teams)})
}

func (d *Deps) logout(c echo.Context) error {
	cookie := ""
	if ck, err := c.Cookie(SessionCookie); err == nil && ck.Value != "" && sessionFrom(c) != nil {
		cookie = ck.Value
	}
	if err := d.Auth.Logout(c.Request().Context(), actor(c), cookie); err != nil {
		return err
	}
	if cookie != "" {
		clearSessionCookie(c, d)
	}
	return c.NoContent(http.StatusNoContent)
}
