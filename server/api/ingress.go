package api

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/ingress/dynconfig"
	"github.com/nullops/nullops/server/errs"
	"github.com/nullops/nullops/server/ingresspub"
	"github.com/nullops/nullops/server/store"
)

// Ingress endpoints, authenticated with the ingress token (config
// ingress.token) as Authorization: Bearer — not with user sessions.
//
//	GET  /api/v1/ingress/traefik   the Traefik dynamic configuration (JSON).
//	     ETag + If-None-Match (304); ?wait=30s with If-None-Match long-polls
//	     until the next version (max 60s); ?entrypoints=a,b, ?tls=true and
//	     ?certresolver=x adapt the routers to a Traefik setup.
//	     X-Nullops-Config-Version carries the version number. With
//	     Accept: application/vnd.nullops.routes-delta+json and If-None-Match
//	     naming a recent table, the answer is a delta from that table
//	     (dynconfig.Delta) when the server still has the changes since, the
//	     whole document otherwise.
//	GET  /api/v1/ingress/gone      hosts of recently deleted/expired deployments
//	     (dynconfig.GoneDocument), ETag + If-None-Match (304).
//	POST /api/v1/ingress/activity  {"deployments":[{"id":1,"last_request_at":"RFC 3339"}]}
const (
	maxIngressWait   = 60 * time.Second
	maxActivityItems = 50000
	// headerIngressInstance: nullops-ingress names its instance on every
	// poll; its If-None-Match then confirms the table it serves.
	headerIngressInstance = "X-Nullops-Ingress-Instance"
)

func registerIngress(g *echo.Group, d *Deps) {
	ig := g.Group("/ingress", ingressAuth(d))
	ig.GET("/traefik", ingressTraefik(d))
	ig.GET("/gone", ingressGone(d))
	ig.POST("/activity", ingressActivity(d))
}

func ingressAuth(d *Deps) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			want := d.Config.Ingress.Token
			if want == "" {
				return &errs.Error{Kind: errs.Unavailable, Code: "ingress_disabled",
					Message: "the ingress token is not configured on the server (ingress.token / NULLOPS_INGRESS_TOKEN)"}
			}
			got, ok := strings.CutPrefix(c.Request().Header.Get(echo.HeaderAuthorization), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
				return &errs.Error{Kind: errs.Unauthenticated, Code: "unauthenticated", Message: "send the ingress token as Authorization: Bearer"}
			}
			return next(c)
		}
	}
}

func ingressTraefik(d *Deps) echo.HandlerFunc {
	return func(c echo.Context) error {
		v := errs.Fields{}
		var variant ingresspub.Variant
		if ep := c.QueryParam("entrypoints"); ep != "" {
			for _, e := range strings.Split(ep, ",") {
				if e = strings.TrimSpace(e); e != "" {
					variant.EntryPoints = append(variant.EntryPoints, e)
				}
			}
		}
		if t := c.QueryParam("tls"); t != "" {
			b, err := strconv.ParseBool(t)
			if err != nil {
				v.Add("tls", "must be true or false")
			}
			variant.TLS = b
		}
		variant.CertResolver = c.QueryParam("certresolver")
		var wait time.Duration
		if w := c.QueryParam("wait"); w != "" {
			dur, err := time.ParseDuration(w)
			if err != nil || dur < 0 {
				v.Add("wait", "must be a duration such as 30s")
			}
			wait = min(dur, maxIngressWait)
		}
		if err := v.Err(); err != nil {
			return err
		}

		ctx := c.Request().Context()
		inm := c.Request().Header.Get("If-None-Match")
		// nullops-ingress asks for deltas; Traefik never does.
		acceptsDelta := variant.IsZero() && inm != "" &&
			strings.Contains(c.Request().Header.Get(echo.HeaderAccept), dynconfig.MediaTypeDelta)
		if variant.IsZero() {
			d.Ingress.Polled(c.Request().Header.Get(headerIngressInstance), inm)
		} else {
			d.Ingress.Polled("", "")
		}
		if variant.IsZero() {
			d.Ingress.CatchUp(ctx, inm)
		}
		snap := d.Ingress.Current()
		if snap == nil {
			first, cancel := context.WithTimeout(ctx, 10*time.Second)
			snap, _ = d.Ingress.WaitNewer(first, 0)
			cancel()
			if snap == nil {
				return ingresspub.ErrNotReady
			}
		}
		etag, err := snapshotETag(snap, variant)
		if err != nil {
			return err
		}
		if inm == etag && wait > 0 {
			wctx, cancel := context.WithTimeout(ctx, wait)
			next, newer := d.Ingress.WaitNewer(wctx, snap.Version)
			cancel()
			if newer {
				snap = next
				if etag, err = snapshotETag(snap, variant); err != nil {
					return err
				}
			}
		}
		h := c.Response().Header()
		h.Set(echo.HeaderCacheControl, "no-cache")
		h.Set("Vary", echo.HeaderAccept)
		h.Set("ETag", etag)
		h.Set(dynconfig.HeaderConfigVersion, strconv.FormatInt(snap.Version, 10))
		if inm == etag {
			return c.NoContent(http.StatusNotModified)
		}
		if acceptsDelta {
			if body, ok := d.Ingress.Delta(inm, snap); ok {
				return c.Blob(http.StatusOK, dynconfig.MediaTypeDelta, body)
			}
		}
		body, etag, err := snap.Render(variant)
		if err != nil {
			return err
		}
		h.Set("ETag", etag)
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, body)
	}
}

// snapshotETag is the ETag of snap in variant v (rendering only a variant:
// the published table's ETag is known without rendering it).
func snapshotETag(snap *ingresspub.Snapshot, v ingresspub.Variant) (string, error) {
	if v.IsZero() {
		return snap.ETag, nil
	}
	_, etag, err := snap.Render(v)
	return etag, err
}

func ingressGone(d *Deps) echo.HandlerFunc {
	return func(c echo.Context) error {
		body, etag, err := d.Ingress.Gone(c.Request().Context())
		if err != nil {
			return err
		}
		h := c.Response().Header()
		h.Set(echo.HeaderCacheControl, "no-cache")
		h.Set("ETag", etag)
		if c.Request().Header.Get("If-None-Match") == etag {
			return c.NoContent(http.StatusNotModified)
		}
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, body)
	}
}

func ingressActivity(d *Deps) echo.HandlerFunc {
	return func(c echo.Context) error {
		var req dynconfig.ActivityReport
		if err := Bind(c, &req); err != nil {
			return err
		}
		v := errs.Fields{}
		if len(req.Deployments) > maxActivityItems {
			v.Add("deployments", "at most %d entries per report", maxActivityItems)
		}
		items := make([]store.IngressActivity, 0, len(req.Deployments))
		for i, it := range req.Deployments {
			if it.ID <= 0 {
				v.Add("deployments["+strconv.Itoa(i)+"].id", "must be a deployment id")
			}
			if it.LastRequestAt.IsZero() {
				v.Add("deployments["+strconv.Itoa(i)+"].last_request_at", "required (RFC 3339 time)")
			}
			items = append(items, store.IngressActivity{DeploymentID: it.ID, LastRequestAt: it.LastRequestAt})
		}
		if err := v.Err(); err != nil {
			return err
		}
		n, err := d.Ingress.RecordActivity(c.Request().Context(), items)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]int64{"updated": n})
	}
}
