package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/deploy"
	"github.com/nullops/nullops/server/errs"
	"github.com/nullops/nullops/server/ingresspub"
	"github.com/nullops/nullops/server/store"
)

func registerEnvironments(g *echo.Group, d *Deps) {
	g.GET("/environments", d.listEnvironments)
	g.POST("/environments", d.createEnvironment, RequireAdmin)
	g.GET("/environments/:id", d.getEnvironment)
	g.PUT("/environments/:id", d.updateEnvironment, RequireAdmin)
	g.DELETE("/environments/:id", d.deleteEnvironment, RequireAdmin)
}

// defaultEnvironmentTTL is the auto-cleanup TTL of a new environment.
const defaultEnvironmentTTL = 168 * time.Hour

// environmentsOut shapes environments for the caller.
func (d *Deps) environmentsOut(c echo.Context, list ...store.Environment) ([]restapi.Environment, error) {
	lv, err := LevelsOf(c)
	if err != nil {
		return nil, err
	}
	links := deploy.Links{Scheme: d.Config.Ingress.LinkScheme, Port: d.Config.Ingress.LinkPort}
	out := make([]restapi.Environment, len(list))
	for i, e := range list {
		tpl := e.HostTemplate
		if tpl == "" {
			tpl = ingresspub.DefaultHostTemplate
		}
		host := strings.NewReplacer(ingresspub.PlaceholderEnvironment, strings.ToLower(e.Name),
			ingresspub.PlaceholderBaseDomain, strings.ToLower(strings.TrimSuffix(e.BaseDomain, "."))).Replace(tpl)
		out[i] = restapi.Environment{ID: e.ID, Name: e.Name, BaseDomain: e.BaseDomain, HostTemplate: e.HostTemplate,
			TrafficIsActivity: e.TrafficIsActivity, CPUOvercommit: e.CPUOvercommit, Description: e.Description,
			CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt, DefaultTTL: (time.Duration(e.DefaultTTLSeconds) * time.Second).String(),
			URLPattern: links.URL(host), Access: lv.Of(0, e.ID).String()}
	}
	return out, nil
}

func (d *Deps) renderEnvironment(c echo.Context, status int, e store.Environment) error {
	out, err := d.environmentsOut(c, e)
	if err != nil {
		return err
	}
	return c.JSON(status, out[0])
}

// environmentInput is the store's input of a restapi.EnvironmentRequest,
// with the defaults for absent fields.
func environmentInput(r restapi.EnvironmentRequest) (store.EnvironmentInput, error) {
	in := store.EnvironmentInput{Name: r.Name, BaseDomain: r.BaseDomain, HostTemplate: r.HostTemplate,
		DefaultTTLSeconds: int64(defaultEnvironmentTTL / time.Second), TrafficIsActivity: true, Description: r.Description}
	if r.TrafficIsActivity != nil {
		in.TrafficIsActivity = *r.TrafficIsActivity
	}
	in.CPUOvercommit = store.DefaultCPUOvercommit
	if r.CPUOvercommit != nil {
		if *r.CPUOvercommit == 0 {
			return in, errs.Fields{"cpu_overcommit": "must be between 1 (other CPU use counts in full) and 10"}.Err()
		}
		in.CPUOvercommit = *r.CPUOvercommit
	}
	if r.DefaultTTL != "" {
		ttl, err := time.ParseDuration(r.DefaultTTL)
		if err != nil || ttl%time.Second != 0 {
			return in, errs.Fields{"default_ttl": "must be a Go duration such as 168h or 90m"}.Err()
		}
		in.DefaultTTLSeconds = int64(ttl / time.Second)
	}
	return in, nil
}

// seeEnvironment answers 404 unless the caller may see the environment
// (auth.Visibility.SeesEnvironment).
func seeEnvironment(c echo.Context, id int64) error {
	v, err := Visible(c)
	if err != nil {
		return err
	}
	if v.SeesEnvironment(id) {
		return nil
	}
	return ErrNotFound
}

func (d *Deps) listEnvironments(c echo.Context) error {
	list, err := d.Store.ListEnvironments(c.Request().Context(), PrincipalFrom(c).VisibleTo())
	if err != nil {
		return err
	}
	out, err := d.environmentsOut(c, list...)
	if err != nil {
		return err
	}
	return pageOf(c, out)
}

func (d *Deps) getEnvironment(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	if err := seeEnvironment(c, id); err != nil {
		return err
	}
	e, err := store.GetEnvironment(c.Request().Context(), d.Store.Pool, id)
	if err != nil {
		return err
	}
	return d.renderEnvironment(c, http.StatusOK, e)
}

func (d *Deps) createEnvironment(c echo.Context) error {
	var req restapi.EnvironmentRequest
	if err := Bind(c, &req); err != nil {
		return err
	}
	in, err := environmentInput(req)
	if err != nil {
		return err
	}
	out, err := d.Catalog.CreateEnvironment(c.Request().Context(), actor(c), in)
	if err != nil {
		return err
	}
	return d.renderEnvironment(c, http.StatusCreated, out)
}

func (d *Deps) updateEnvironment(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	var req restapi.EnvironmentRequest
	if err := Bind(c, &req); err != nil {
		return err
	}
	in, err := environmentInput(req)
	if err != nil {
		return err
	}
	out, err := d.Catalog.UpdateEnvironment(c.Request().Context(), actor(c), id, in)
	if err != nil {
		return err
	}
	return d.renderEnvironment(c, http.StatusOK, out)
}

func (d *Deps) deleteEnvironment(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	if err := d.Catalog.DeleteEnvironment(c.Request().Context(), actor(c), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
