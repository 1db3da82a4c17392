package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/store"
)

func registerServices(g *echo.Group, d *Deps) {
	g.GET("/services", d.listServices)
	g.POST("/services", d.createService, RequireAdmin)
	g.GET("/services/:id", d.getService)
	g.PUT("/services/:id", d.updateService, RequireAdmin)
	g.DELETE("/services/:id", d.deleteService, RequireAdmin)
	g.GET("/services/:id/tags", d.serviceTags)
}

// serviceInput is the store's input of a restapi.ServiceRequest.
func serviceInput(r restapi.ServiceRequest) store.ServiceInput {
	return store.ServiceInput{Name: r.Name, RegistryID: r.RegistryID, Image: r.Image, TagMode: r.TagMode, Tag: r.Tag,
		TagPattern: r.TagPattern, Ports: r.Ports, Env: r.Env, Health: healthIn(r.Health), Description: r.Description}
}

func (d *Deps) listServices(c echo.Context) error {
	list, err := store.ListServices(c.Request().Context(), d.Store.Pool)
	if err != nil {
		return err
	}
	return pageOf(c, mapOut(list, serviceOut))
}

func (d *Deps) getService(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	sv, err := store.GetService(c.Request().Context(), d.Store.Pool, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, serviceOut(sv))
}

func (d *Deps) createService(c echo.Context) error {
	var req restapi.ServiceRequest
	if err := Bind(c, &req); err != nil {
		return err
	}
	out, err := d.Catalog.CreateService(c.Request().Context(), actor(c), serviceInput(req))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, serviceOut(out))
}

func (d *Deps) updateService(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	var req restapi.ServiceRequest
	if err := Bind(c, &req); err != nil {
		return err
	}
	out, err := d.Catalog.UpdateService(c.Request().Context(), actor(c), id, serviceInput(req))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, serviceOut(out))
}

func (d *Deps) deleteService(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	if err := d.Catalog.DeleteService(c.Request().Context(), actor(c), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// serviceTags: GET /services/{id}/tags → the tags a deployment may choose:
// a selectable service's registry tags matching its pattern, newest first;
// a pinned service's one tag.
func (d *Deps) serviceTags(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	sv, l, err := d.Catalog.ServiceTags(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, restapi.ServiceTags{Service: sv.Name, Image: sv.Image, TagMode: sv.TagMode,
		TagPattern: sv.TagPattern, Tags: l.Tags, Order: l.Order})
}
