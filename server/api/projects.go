package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/errs"
	"github.com/nullops/nullops/server/store"
)

func registerProjects(g *echo.Group, d *Deps) {
	g.GET("/projects", d.listProjects)
	g.POST("/projects", d.createProject, RequireAdmin)
	g.GET("/projects/:id", d.getProject)
	g.PUT("/projects/:id", d.updateProject, RequireAdmin)
	g.DELETE("/projects/:id", d.deleteProject, RequireAdmin)
}

func projectOut(p store.Project, lv auth.Levels) restapi.Project {
	out := restapi.Project{ID: p.ID, Name: p.Name, Description: p.Description, CPU: p.CPU, MemoryMB: p.MemoryMB,
		NodeSelector: p.NodeSelector, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt, Access: lv.Of(p.ID, 0).String(),
		DeployTimeout: (time.Duration(p.DeployTimeoutSeconds) * time.Second).String()}
	if p.TTLSeconds != nil {
		out.TTL = (time.Duration(*p.TTLSeconds) * time.Second).String()
	}
	return out
}

func renderProject(c echo.Context, status int, p store.Project) error {
	lv, err := LevelsOf(c)
	if err != nil {
		return err
	}
	return c.JSON(status, projectOut(p, lv))
}

// projectInput is the store's input of a restapi.ProjectRequest, with the
// defaults for absent limits (1 CPU, 512 MB, deploy timeout 30m).
func projectInput(r restapi.ProjectRequest) (store.ProjectInput, error) {
	in := store.ProjectInput{Name: r.Name, Description: r.Description, CPU: 1, MemoryMB: 512, NodeSelector: r.NodeSelector}
	if r.CPU != nil {
		in.CPU = *r.CPU
	}
	if r.MemoryMB != nil {
		in.MemoryMB = *r.MemoryMB
	}
	if r.TTL != "" {
		ttl, err := time.ParseDuration(r.TTL)
		if err != nil || ttl%time.Second != 0 {
			return in, errs.Fields{"ttl": "must be a Go duration such as 72h, or empty for the environment's default"}.Err()
		}
		s := int64(ttl / time.Second)
		in.TTLSeconds = &s
	}
	if r.DeployTimeout != "" {
		dt, err := time.ParseDuration(r.DeployTimeout)
		if err != nil || dt%time.Second != 0 || dt <= 0 {
			return in, errs.Fields{"deploy_timeout": "must be a Go duration such as 30m, or empty for the default (30m)"}.Err()
		}
		in.DeployTimeoutSeconds = int64(dt / time.Second)
	}
	return in, nil
}

// seeProject answers 404 unless the caller may see the project
// (auth.Visibility.SeesProject).
func seeProject(c echo.Context, id int64) error {
	v, err := Visible(c)
	if err != nil {
		return err
	}
	if v.SeesProject(id) {
		return nil
	}
	return ErrNotFound
}

func (d *Deps) listProjects(c echo.Context) error {
	list, err := d.Store.ListProjects(c.Request().Context(), PrincipalFrom(c).VisibleTo())
	if err != nil {
		return err
	}
	lv, err := LevelsOf(c)
	if err != nil {
		return err
	}
	out := make([]restapi.Project, len(list))
	for i, p := range list {
		out[i] = projectOut(p, lv)
	}
	return pageOf(c, out)
}

func (d *Deps) getProject(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	if err := seeProject(c, id); err != nil {
		return err
	}
	p, err := store.GetProject(c.Request().Context(), d.Store.Pool, id)
	if err != nil {
		return err
	}
	return renderProject(c, http.StatusOK, p)
}

func (d *Deps) createProject(c echo.Context) error {
	var req restapi.ProjectRequest
	if err := Bind(c, &req); err != nil {
		return err
	}
	in, err := projectInput(req)
	if err != nil {
		return err
	}
	out, err := d.Catalog.CreateProject(c.Request().Context(), actor(c), in)
	if err != nil {
		return err
	}
	return renderProject(c, http.StatusCreated, out)
}

func (d *Deps) updateProject(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	var req restapi.ProjectRequest
	if err := Bind(c, &req); err != nil {
		return err
	}
	in, err := projectInput(req)
	if err != nil {
		return err
	}
	out, err := d.Catalog.UpdateProject(c.Request().Context(), actor(c), id, in)
	if err != nil {
		return err
	}
	return renderProject(c, http.StatusOK, out)
}

func (d *Deps) deleteProject(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	if err := d.Catalog.DeleteProject(c.Request().Context(), actor(c), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
