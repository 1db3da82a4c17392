package api

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/catalog"
	"github.com/nullops/nullops/server/errs"
	"github.com/nullops/nullops/server/store"
)

// Catalog API: registries, services, plugins, secrets,
// environments, projects and pipelines. Writes are admin-only and audited
// in the same transaction. Reads: registries, plugins and secrets are
// admin-only; every user reads services (and their tags) to create
// deployments; projects and environments are visible to users holding a
// grant on them, and all of them to a user holding a grant of the other
// kind (a project grant covers that project in every environment, an
// environment grant every project in it). Secret values and registry
// passwords are write-only: no response ever contains them.
func registerCatalog(g *echo.Group, d *Deps) {
	registerRegistries(g, d)
	registerServices(g, d)
	registerPlugins(g, d)
	registerSecrets(g, d)
	registerEnvironments(g, d)
	registerProjects(g, d)
	registerPipelines(g, d)
}

// pageOf renders a page of an in-memory list (catalog lists are small).
func pageOf[T any](c echo.Context, all []T) error {
	pg, err := PageFrom(c)
	if err != nil {
		return err
	}
	lo := min(pg.Offset(), len(all))
	hi := min(lo+pg.Limit(), len(all))
	return RenderList(c, all[lo:hi], len(all), pg)
}

func registerRegistries(g *echo.Group, d *Deps) {
	g.GET("/registries", d.listRegistries, RequireAdmin)
	g.POST("/registries", d.createRegistry, RequireAdmin)
	g.GET("/registries/:id", d.getRegistry, RequireAdmin)
	g.PUT("/registries/:id", d.updateRegistry, RequireAdmin)
	g.DELETE("/registries/:id", d.deleteRegistry, RequireAdmin)
	g.POST("/registries/:id/test", d.testRegistry, RequireAdmin)
	g.GET("/registries/:id/tags", d.registryTags, RequireAdmin)
}

// registryInput is the catalog's input of a restapi.RegistryRequest.
func registryInput(r restapi.RegistryRequest) catalog.RegistryInput {
	return catalog.RegistryInput{
		RegistryInput: store.RegistryInput{Name: r.Name, URL: r.URL, Username: r.Username, Insecure: r.Insecure},
		Password:      r.Password,
	}
}

func (d *Deps) listRegistries(c echo.Context) error {
	list, err := d.Store.ListRegistries(c.Request().Context())
	if err != nil {
		return err
	}
	return pageOf(c, mapOut(list, registryOut))
}

func (d *Deps) getRegistry(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	r, err := store.GetRegistry(c.Request().Context(), d.Store.Pool, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, registryOut(r))
}

func (d *Deps) createRegistry(c echo.Context) error {
	var req restapi.RegistryRequest
	if err := Bind(c, &req); err != nil {
		return err
	}
	out, err := d.Catalog.CreateRegistry(c.Request().Context(), actor(c), registryInput(req))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, registryOut(out))
}

func (d *Deps) updateRegistry(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	var req restapi.RegistryRequest
	if err := Bind(c, &req); err != nil {
		return err
	}
	out, err := d.Catalog.UpdateRegistry(c.Request().Context(), actor(c), id, registryInput(req))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, registryOut(out))
}

func (d *Deps) deleteRegistry(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	if err := d.Catalog.DeleteRegistry(c.Request().Context(), actor(c), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// testRegistry: POST /registries/{id}/test → 200 {"ok":true} or the
// registry error (502 registry_unreachable / registry_unauthorized).
func (d *Deps) testRegistry(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 30*time.Second)
	defer cancel()
	if err := d.Catalog.TestRegistry(ctx, id); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, restapi.RegistryTest{OK: true, Message: "the registry answered and accepted the credentials"})
}

// registryTags: GET /registries/{id}/tags?image=team/api&pattern=v*
func (d *Deps) registryTags(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	image := c.QueryParam("image")
	if image == "" {
		return errs.Fields{"image": "required, e.g. ?image=team/api"}.Err()
	}
	l, err := d.Catalog.RegistryTags(c.Request().Context(), id, image, c.QueryParam("pattern"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, tagsOut(l))
}
