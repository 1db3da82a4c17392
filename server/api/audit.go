package api

import (
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/server/errs"
	"github.com/nullops/nullops/server/store"
)

// actor is the caller of the current request as domain packages record it
// in the audit log.
func actor(c echo.Context) store.Actor {
	a := store.Actor{ClientAddr: ClientAddr(c)}
	if p := PrincipalFrom(c); p != nil {
		a = store.UserActor(p.UserID, p.Username, a.ClientAddr)
	}
	return a
}

func registerAudit(g *echo.Group, d *Deps) {
	g.GET("/audit", d.listAudit)
}

// listAudit: GET /audit?action=&actor=&target_type=&target_id=&since=&until=&page=&per_page=
// Admins see every entry; users see entries about projects or environments
// they hold a grant on.
func (d *Deps) listAudit(c echo.Context) error {
	v := errs.Fields{}
	pg := PageInto(c, v)
	f := store.AuditFilter{
		VisibleTo:  PrincipalFrom(c).VisibleTo(),
		Action:     c.QueryParam("action"),
		Actor:      c.QueryParam("actor"),
		TargetType: c.QueryParam("target_type"),
		TargetID:   c.QueryParam("target_id"),
		Limit:      pg.Limit(),
		Offset:     pg.Offset(),
	}
	for _, q := range []struct {
		name string
		dst  **time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		s := c.QueryParam(q.name)
		if s == "" {
			continue
		}
		t, err := parseTime(s)
		if err != nil {
			v.Add(q.name, "must be an RFC 3339 time (2006-01-02T15:04:05Z) or a Unix time in seconds")
			continue
		}
		*q.dst = &t
	}
	if err := v.Err(); err != nil {
		return err
	}
	items, total, err := d.Store.ListAudit(c.Request().Context(), f)
	if err != nil {
		return err
	}
	return RenderList(c, mapOut(items, auditOut), total, pg)
}

func parseTime(s string) (time.Time, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Parse(time.RFC3339Nano, s)
}
