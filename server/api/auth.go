package api

import (
	"errors"
	"math"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/store"
)

// registerAuth mounts login (public) and logout (authenticated).
func registerAuth(v1, user *echo.Group, d *Deps) {
	v1.POST("/auth/login", d.login)
	user.POST("/auth/logout", d.logout)
}

// LoginRequest is the body of POST /auth/login.
type LoginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// Validate names missing fields.
func (r LoginRequest) Validate() error {
	v := Validation{}
	if r.Username == "" {
		v.Add("username", "required")
	}
	if r.Password == "" {
		v.Add("password", "required")
	}
	return v.Err()
}

// ParseLoginRequest decodes and validates a login body.
func ParseLoginRequest(c echo.Context) (LoginRequest, error) {
	// A JSON content type makes cross-site form posts (login CSRF) need a
	// CORS preflight, which this server never grants.
	mt, _, _ := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if mt != echo.MIMEApplicationJSON {
		return LoginRequest{}, &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
			Message: "send the login as Content-Type: application/json"}
	}
	var r LoginRequest
	if err := Bind(c, &r); err != nil {
		return LoginRequest{}, err
	}
	return r, r.Validate()
}

// MeResponse is GET /me and the login response.
type MeResponse struct {
	User      store.User   `json:"user"`
	Via       string       `json:"via"`
	CSRFToken string       `json:"csrf_token,omitempty"`
	ExpiresAt *time.Time   `json:"session_expires_at,omitempty"`
	Teams     []store.Team `json:"teams"`
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
		return loginFailed(c, err)
	}
	c.SetCookie(&http.Cookie{
		Name: SessionCookie, Value: res.SessionID, Path: "/", Expires: res.ExpiresAt,
		HttpOnly: true, Secure: secureCookies(c, d), SameSite: http.SameSiteLaxMode,
	})
	teams, err := d.Store.UserTeams(ctx, res.User.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, MeResponse{User: res.User, Via: auth.ViaSession, CSRFToken: res.CSRFToken, ExpiresAt: &res.ExpiresAt, Teams: teams})
}

// loginFailed translates a refused login (auth.Service.Login has recorded it).
func loginFailed(c echo.Context, err error) error {
	if out := passwordAttemptError(c, err); out != nil {
		return out
	}
	switch {
	case errors.Is(err, auth.ErrInvalidCredentials):
		return &Error{Status: http.StatusUnauthorized, Code: "invalid_credentials", Message: auth.ErrInvalidCredentials.Error()}
	case errors.Is(err, auth.ErrDisabled):
		return &Error{Status: http.StatusForbidden, Code: "account_disabled", Message: auth.ErrDisabled.Error()}
	}
	return err
}

// passwordAttemptError translates the refusals of a password attempt (login
// or password change) that happen before any password is checked: 429 while
// throttled and 503 while every hashing slot is busy, both with Retry-After.
// Other errors give nil.
func passwordAttemptError(c echo.Context, err error) error {
	var th *auth.ThrottledError
	switch {
	case errors.As(err, &th):
		secs := strconv.Itoa(max(int(math.Ceil(th.RetryAfter.Seconds())), 1))
		c.Response().Header().Set("Retry-After", secs)
		return &Error{Status: http.StatusTooManyRequests, Code: "too_many_attempts", Message: th.Error(),
			Details: map[string]string{"retry_after_seconds": secs}}
	case errors.Is(err, auth.ErrBusy):
		secs := strconv.Itoa(int(auth.BusyRetryAfter.Seconds()))
		c.Response().Header().Set("Retry-After", secs)
		return &Error{Status: http.StatusServiceUnavailable, Code: "busy", Message: err.Error(),
			Details: map[string]string{"retry_after_seconds": secs}}
	}
	return nil
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
