package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/protocol"
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

// serviceRequest is the body of POST and PUT /services.
type serviceRequest struct {
	Name        string            `json:"name"`
	RegistryID  int64             `json:"registry_id"`
	Image       string            `json:"image"`
	TagMode     string            `json:"tag_mode"`
	Tag         string            `json:"tag"`
	TagPattern  string            `json:"tag_pattern"`
	Ports       []int             `json:"ports"`
	Env         map[string]string `json:"env"`
	Health      *protocol.Health  `json:"health"`
	Description string            `json:"description"`
}

func (r serviceRequest) input() store.ServiceInput {
	return store.ServiceInput{Name: r.Name, RegistryID: r.RegistryID, Image: r.Image, TagMode: r.TagMode, Tag: r.Tag,
		TagPattern: r.TagPattern, Ports: r.Ports, Env: r.Env, Health: r.Health, Description: r.Description}
}

func (d *Deps) listServices(c echo.Context) error {
	list, err := store.ListServices(c.Request().Context(), d.Store.Pool)
	if err != nil {
		return err
	}
	return pageOf(c, list)
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
	return c.JSON(http.StatusOK, sv)
}

func (d *Deps) createService(c echo.Context) error {
	var req serviceRequest
	if err := Bind(c, &req); err != nil {
		return err
	}
	out, err := d.Catalog.CreateService(c.Request().Context(), actor(c), req.input())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, out)
}

func (d *Deps) updateService(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	var req serviceRequest
	if err := Bind(c, &req); err != nil {
		return err
	}
	out, err := d.Catalog.UpdateService(c.Request().Context(), actor(c), id, req.input())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
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
	return c.JSON(http.StatusOK, map[string]any{
		"service": sv.Name, "image": sv.Image, "tag_mode": sv.TagMode, "tag_pattern": sv.TagPattern,
		"tags": l.Tags, "order": l.Order,
	})
}
