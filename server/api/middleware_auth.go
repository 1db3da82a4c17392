package api

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/errs"
)

// APIPrefix is where the REST API is mounted.
const APIPrefix = "/api/v1"

// SessionCookie is the name of the session cookie; CSRFHeader is the header
// in which cookie-authenticated state-changing requests echo the session's
// CSRF token (returned by login and GET /api/v1/me).
const (
	SessionCookie = "nullops_session"
	CSRFHeader    = "X-CSRF-Token"
)

// Context keys set by RequireUser.
const (
	ctxPrincipal = "nullops.principal"
	ctxSession   = "nullops.session"
	ctxAuth      = "nullops.auth"
	ctxLevels    = "nullops.levels" // auth.Levels, cached by LevelsOf
)

// Errors of the auth layer.
var (
	ErrCSRF         = &errs.Error{Kind: errs.Forbidden, Code: "csrf", Message: "missing or wrong " + CSRFHeader + " header; reload the page (GET /api/v1/me returns the token)"}
	ErrNeedsFull    = &errs.Error{Kind: errs.Forbidden, Code: "forbidden", Message: "this action needs full access; you have read access"}
	errBadAuthzHead = &errs.Error{Kind: errs.Unauthenticated, Code: "unauthenticated", Message: "the Authorization header must be `Bearer <api token>`"}
)

// RequireUser authenticates the caller from `Authorization: Bearer <api
// token>` or the session cookie, and refuses with 401 when neither is valid.
// Cookie-authenticated requests other than GET/HEAD/OPTIONS must carry the
// session's CSRF token in X-CSRF-Token (403 otherwise). Unknown paths under
// the group still answer 404 to everyone.
func RequireUser(d *Deps) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if p := c.Path(); p == APIPrefix || p == APIPrefix+"/*" {
				return next(c) // echo's not-found catch-all of this group
			}
			c.Set(ctxAuth, d.Auth)
			ctx := c.Request().Context()
			if h := c.Request().Header.Get(echo.HeaderAuthorization); h != "" {
				tok, ok := strings.CutPrefix(h, "Bearer ")
				if !ok {
					return errBadAuthzHead
				}
				p, err := d.Auth.Token(ctx, strings.TrimSpace(tok))
				if err != nil {
					return authError(err)
				}
				c.Set(ctxPrincipal, p)
				return next(c)
			}
			ck, err := c.Cookie(SessionCookie)
			if err != nil || ck.Value == "" {
				return ErrUnauthenticated
			}
			s, err := d.Auth.Session(ctx, ck.Value)
			if err != nil {
				if errors.Is(err, auth.ErrUnauthenticated) {
					clearSessionCookie(c, d)
				}
				return authError(err)
			}
			switch c.Request().Method {
			case http.MethodGet, http.MethodHead, http.MethodOptions:
			default:
				if !auth.CheckCSRF(c.Request().Header.Get(CSRFHeader), s.CSRFToken) {
					return ErrCSRF
				}
			}
			c.Set(ctxPrincipal, s.Principal)
			c.Set(ctxSession, &s)
			return next(c)
		}
	}
}

func authError(err error) error {
	if errors.Is(err, auth.ErrUnauthenticated) {
		return ErrUnauthenticated
	}
	return err
}

// RequireAdmin refuses non-admins with 403 (and anonymous callers with 401).
// Use it as route middleware after RequireUser:
// g.POST("/registries", h, api.RequireAdmin).
func RequireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p := PrincipalFrom(c)
		if p == nil {
			return ErrUnauthenticated
		}
		if !p.Admin {
			return ErrForbidden
		}
		return next(c)
	}
}

// PrincipalFrom returns the authenticated caller, or nil outside RequireUser.
func PrincipalFrom(c echo.Context) *auth.Principal {
	p, _ := c.Get(ctxPrincipal).(*auth.Principal)
	return p
}

// sessionFrom returns the caller's session (nil when authenticated by token).
func sessionFrom(c echo.Context) *auth.SessionInfo {
	s, _ := c.Get(ctxSession).(*auth.SessionInfo)
	return s
}

func authorizer(c echo.Context) (*auth.Service, error) {
	a, _ := c.Get(ctxAuth).(*auth.Service)
	if a == nil {
		return nil, errors.New("api: authorization used on a route without RequireUser")
	}
	return a, nil
}

// RequireLevel checks the caller's level on a resource of projectID in
// environmentID (0 = not applicable; see auth.Authorizer.Level). It returns
// ErrNotFound when the caller may not see the resource at all (not revealing
// that it exists), 403 when they can read but need more, and nil otherwise.
func RequireLevel(c echo.Context, projectID, environmentID int64, need auth.Level) error {
	lvl, err := LevelOf(c, projectID, environmentID)
	if err != nil {
		return err
	}
	switch {
	case lvl == auth.None:
		return ErrNotFound
	case lvl < need:
		return ErrNeedsFull
	}
	return nil
}

// LevelOf returns the caller's level on a resource (for responses that show
// what the caller may do, e.g. to enable buttons).
func LevelOf(c echo.Context, projectID, environmentID int64) (auth.Level, error) {
	a, err := authorizer(c)
	if err != nil {
		return auth.None, err
	}
	return a.Level(c.Request().Context(), PrincipalFrom(c), projectID, environmentID)
}

// LevelsOf returns the caller's levels on every project and environment,
// loaded once per request (one query for users, none for admins), to show
// on each row of a list what the caller may do with it.
func LevelsOf(c echo.Context) (auth.Levels, error) {
	if l, ok := c.Get(ctxLevels).(auth.Levels); ok {
		return l, nil
	}
	a, err := authorizer(c)
	if err != nil {
		return auth.Levels{}, err
	}
	l, err := a.Levels(c.Request().Context(), PrincipalFrom(c))
	if err != nil {
		return auth.Levels{}, err
	}
	c.Set(ctxLevels, l)
	return l, nil
}

// Visible returns the projects and environments the caller may list (All
// for admins). For SQL filters, PrincipalFrom(c).VisibleTo() is simpler.
func Visible(c echo.Context) (auth.Visibility, error) {
	a, err := authorizer(c)
	if err != nil {
		return auth.Visibility{}, err
	}
	return a.Visible(c.Request().Context(), PrincipalFrom(c))
}

// ClientAddr is the caller's address as recorded in sessions and the audit
// log (the server's IP extractor decides whether proxies are trusted).
func ClientAddr(c echo.Context) string { return c.RealIP() }

func secureCookies(c echo.Context, d *Deps) bool {
	return c.IsTLS() || d.Config.TLS.CertFile != "" || strings.HasPrefix(d.Config.PublicURL, "https://")
}

func clearSessionCookie(c echo.Context, d *Deps) {
	c.SetCookie(&http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: secureCookies(c, d), SameSite: http.SameSiteLaxMode})
}

// IPExtractor decides the client address (c.RealIP, ClientAddr): the
// connection's address, or — when it is one of the trusted proxies (CIDRs,
// config trustedproxies) — the nearest untrusted address in X-Forwarded-For.
// Without trusted proxies, X-Forwarded-For is ignored, so clients cannot
// spoof their address to dodge login throttling or the audit log.
func IPExtractor(trustedProxies []string) (echo.IPExtractor, error) {
	if len(trustedProxies) == 0 {
		return echo.ExtractIPDirect(), nil
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trustedProxies {
		_, n, err := net.ParseCIDR(p)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %w", p, err)
		}
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...), nil
}
