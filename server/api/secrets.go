package api

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/errs"
	"github.com/nullops/nullops/server/store"
)

func registerSecrets(g *echo.Group, d *Deps) {
	g.GET("/secrets", d.listSecrets, RequireAdmin)
	g.POST("/secrets", d.createSecret, RequireAdmin)
	g.GET("/secrets/:id", d.getSecret, RequireAdmin)
	g.PUT("/secrets/:id", d.updateSecret, RequireAdmin)
	g.DELETE("/secrets/:id", d.deleteSecret, RequireAdmin)
	g.GET("/projects/:id/secrets", d.listProjectSecrets)
}

// listSecrets: GET /secrets[?scope=global|?project_id=N] → names, scopes,
// who changed them and when; never values.
func (d *Deps) listSecrets(c echo.Context) error {
	var f store.SecretFilter
	switch {
	case c.QueryParam("scope") == store.SecretScopeGlobal:
		f.Global = true
	case c.QueryParam("project_id") != "":
		id, err := strconv.ParseInt(c.QueryParam("project_id"), 10, 64)
		if err != nil || id <= 0 {
			return errs.Fields{"project_id": "must be a project id"}.Err()
		}
		f.ProjectID = id
	}
	list, err := d.Store.ListSecrets(c.Request().Context(), f)
	if err != nil {
		return err
	}
	return pageOf(c, mapOut(list, secretOut))
}

// listProjectSecrets: GET /projects/{id}/secrets → metadata of the
// project's own secrets, for anyone who can see the project.
func (d *Deps) listProjectSecrets(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	if err := seeProject(c, id); err != nil {
		return err
	}
	list, err := d.Store.ListSecrets(c.Request().Context(), store.SecretFilter{ProjectID: id})
	if err != nil {
		return err
	}
	return pageOf(c, mapOut(list, secretOut))
}

func (d *Deps) getSecret(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	s, err := store.GetSecret(c.Request().Context(), d.Store.Pool, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, secretOut(s))
}

func (d *Deps) createSecret(c echo.Context) error {
	var req restapi.SecretRequest
	if err := Bind(c, &req); err != nil {
		return err
	}
	out, err := d.Catalog.CreateSecret(c.Request().Context(), actor(c), req.Name, req.ProjectID, req.Value)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, secretOut(out))
}

func (d *Deps) updateSecret(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	var req restapi.SecretValue
	if err := Bind(c, &req); err != nil {
		return err
	}
	out, err := d.Catalog.SetSecret(c.Request().Context(), actor(c), id, req.Value)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, secretOut(out))
}

func (d *Deps) deleteSecret(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	if err := d.Catalog.DeleteSecret(c.Request().Context(), actor(c), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
