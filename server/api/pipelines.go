package api

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/errs"
	"github.com/nullops/nullops/server/pipeline"
	"github.com/nullops/nullops/server/store"
)

func registerPipelines(g *echo.Group, d *Deps) {
	g.GET("/projects/:id/pipeline", d.getPipeline)
	g.PUT("/projects/:id/pipeline", d.putPipeline, RequireAdmin)
	g.POST("/projects/:id/pipeline/dry-run", d.dryRunPipeline, RequireAdmin)
	g.GET("/projects/:id/pipeline/versions", d.listPipelineVersions)
	g.GET("/projects/:id/pipeline/versions/:version", d.getPipelineVersion)
}

func readGraph(c echo.Context) ([]byte, error) {
	raw, err := ReadBody(c.Request().Body)
	if errors.Is(err, ErrBodyTooLarge) {
		return nil, &errs.Error{Kind: errs.TooLarge, Code: "too_large", Message: "the pipeline graph is too large"}
	}
	if err == nil {
		err = CheckJSONText(raw)
	}
	if err != nil {
		return nil, bodyError(err)
	}
	return raw, nil
}

// getPipeline: GET /projects/{id}/pipeline → the latest version (404
// no_pipeline when none was saved).
func (d *Deps) getPipeline(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	if err := seeProject(c, id); err != nil {
		return err
	}
	v, err := d.Catalog.LatestPipeline(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, pipelineVersionOut(v))
}

// putPipeline: PUT /projects/{id}/pipeline with a graph → 201 with the new
// immutable version and its execution order, or 400 invalid_pipeline with
// every problem in details.
func (d *Deps) putPipeline(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	raw, err := readGraph(c)
	if err != nil {
		return err
	}
	v, order, err := d.Catalog.SavePipeline(c.Request().Context(), actor(c), id, raw)
	if err != nil {
		return err
	}
	out := pipelineVersionOut(v)
	out.Order = order
	return c.JSON(http.StatusCreated, out)
}

// dryRunPipeline: POST /projects/{id}/pipeline/dry-run with a graph → 200
// {"valid", "order", "problems"}; nothing is saved.
func (d *Deps) dryRunPipeline(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	raw, err := readGraph(c)
	if err != nil {
		return err
	}
	order, err := d.Catalog.DryRun(c.Request().Context(), id, raw)
	e, _ := errs.As(err)
	switch {
	case e != nil && e.Code == pipeline.ErrCode:
		return c.JSON(http.StatusOK, restapi.PipelineDryRun{Valid: false, Order: []string{}, Problems: e.Fields})
	case err != nil:
		return err
	}
	return c.JSON(http.StatusOK, restapi.PipelineDryRun{Valid: true, Order: order})
}

// listPipelineVersions: GET /projects/{id}/pipeline/versions → versions
// with author and time, newest first (without graphs).
func (d *Deps) listPipelineVersions(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	if err := seeProject(c, id); err != nil {
		return err
	}
	pg, err := PageFrom(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if _, err := store.GetProject(ctx, d.Store.Pool, id); err != nil {
		return err
	}
	list, total, err := d.Store.ListPipelineVersions(ctx, id, pg.Limit(), pg.Offset())
	if err != nil {
		return err
	}
	return RenderList(c, mapOut(list, pipelineVersionOut), total, pg)
}

// getPipelineVersion: GET /projects/{id}/pipeline/versions/{version}.
func (d *Deps) getPipelineVersion(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	if err := seeProject(c, id); err != nil {
		return err
	}
	version, err := strconv.Atoi(c.Param("version"))
	if err != nil || version < 1 {
		return ErrNotFound
	}
	v, err := store.GetPipelineVersion(c.Request().Context(), d.Store.Pool, id, version)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, pipelineVersionOut(v))
}
