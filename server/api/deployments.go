package api

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/deploy"
	"github.com/nullops/nullops/server/errs"
	"github.com/nullops/nullops/server/store"
)

// registerDeployments mounts the deployment lifecycle (docs/architecture.md, "Deployments").
// Every caller sees only deployments of projects/environments their teams
// hold a grant on (404 otherwise); changes need full access.
func registerDeployments(g *echo.Group, d *Deps) {
	g.GET("/deployments", d.listDeployments)
	g.POST("/deployments", d.createDeployment)
	g.POST("/placement/dry-run", d.placementDryRun)
	g.GET("/deployments/:id", d.getDeployment)
	g.DELETE("/deployments/:id", d.changeDeployment("delete"))
	g.POST("/deployments/:id/cancel", d.changeDeployment("cancel"))
	g.POST("/deployments/:id/retry", d.changeDeployment("retry"))
	g.POST("/deployments/:id/extend", d.changeDeployment("extend"))
	g.POST("/deployments/:id/clone", d.cloneDeployment)
	g.GET("/deployments/:id/history", d.deploymentHistory)
	g.GET("/deployments/:id/steps/:step/logs", d.stepLogs)
	g.GET("/deployments/:id/logs", d.serviceLogs)
	g.GET("/deployments/:id/events", d.deploymentEvents)
	g.GET("/events", d.allEvents)
}

// deploymentFor loads the deployment of the :id path parameter and checks
// the caller's level on it (404 when they may not see it).
func (d *Deps) deploymentFor(c echo.Context, need auth.Level) (store.Deployment, error) {
	id, err := PathID(c, "id")
	if err != nil {
		return store.Deployment{}, err
	}
	dep, err := d.Deploy.Get(c.Request().Context(), id)
	if err != nil {
		return dep, err
	}
	if err := RequireLevel(c, dep.ProjectID, dep.EnvironmentID, need); err != nil {
		return dep, err
	}
	return dep, nil
}

func (d *Deps) renderDeployment(c echo.Context, status int, dep store.Deployment) error {
	out, err := d.deploymentDetail(c, dep)
	if err != nil {
		return err
	}
	return c.JSON(status, out)
}

// queryID reads an optional positive integer query parameter.
func queryID(c echo.Context, name string, v errs.Fields) int64 {
	s := c.QueryParam(name)
	if s == "" {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		v.Add(name, "must be a positive id")
		return 0
	}
	return n
}

var deploymentStatuses = map[string]bool{
	store.DeploymentPending: true, store.DeploymentDeploying: true, store.DeploymentRunning: true, store.DeploymentFailed: true,
	store.DeploymentOffline: true, store.DeploymentDeleting: true, store.DeploymentDeleted: true,
}

// listDeployments: GET /deployments?project=&environment=&status=&q=&mine=&sort=&order=&page=&per_page=
// (deleted deployments only with status=deleted).
func (d *Deps) listDeployments(c echo.Context) error {
	v := errs.Fields{}
	pg := PageInto(c, v)
	p := PrincipalFrom(c)
	f := store.DeploymentFilter{
		VisibleTo:     p.VisibleTo(),
		ProjectID:     queryID(c, "project", v),
		EnvironmentID: queryID(c, "environment", v),
		Status:        c.QueryParam("status"),
		Query:         searchQuery(c, v),
		Limit:         pg.Limit(),
		Offset:        pg.Offset(),
	}
	if f.Status != "" && !deploymentStatuses[f.Status] {
		v.Add("status", "must be one of pending, deploying, running, failed, offline, deleting, deleted")
	}
	if queryBool(c, "mine", v) {
		f.OwnerID = p.UserID
	}
	f.Sort, f.Desc = sortOrder(c, v, store.DeploymentSorts)
	if err := v.Err(); err != nil {
		return err
	}
	// One statement: the page, its total, the caller's grants on each
	// row, and what the list shows next to it (URLs, degradation).
	items, total, capped, err := d.Store.ListDeploymentPage(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out := make([]restapi.Deployment, len(items))
	for i, it := range items {
		out[i] = deploymentOut(it.Deployment, auth.LevelOfRank(p, it.GrantRank).String(),
			d.Deploy.URLsFor(it.Deployment, it.IngressKeys), d.Deploy.DegradationOf(it.Deployment, it.Crashed))
	}
	return renderDeploymentList(c, out, total, capped, pg)
}

// bindCreate decodes the body of a create (and of its dry run) and
// requires full access to the project and environment it names; deploy
// checks the rest (the name among it).
func bindCreate(c echo.Context) (deploy.CreateRequest, error) {
	var req restapi.CreateDeploymentRequest
	if err := Bind(c, &req); err != nil {
		return deploy.CreateRequest{}, err
	}
	v := errs.Fields{}
	if req.ProjectID < 1 {
		v.Add("project_id", "is required")
	}
	if req.EnvironmentID < 1 {
		v.Add("environment_id", "is required")
	}
	if err := v.Err(); err != nil {
		return deploy.CreateRequest{}, err
	}
	if err := RequireLevel(c, req.ProjectID, req.EnvironmentID, auth.Full); err != nil {
		return deploy.CreateRequest{}, err
	}
	return deploy.CreateRequest{ProjectID: req.ProjectID, EnvironmentID: req.EnvironmentID, Name: req.Name, Tags: req.Tags}, nil
}

// createDeployment: POST /deployments → 202 with the deployment (status
// deploying); progress follows through GET or the events stream.
func (d *Deps) createDeployment(c echo.Context) error {
	req, err := bindCreate(c)
	if err != nil {
		return err
	}
	dep, err := d.Deploy.Create(c.Request().Context(), actor(c), req)
	if err != nil {
		return err
	}
	return d.renderDeployment(c, http.StatusAccepted, dep)
}

func (d *Deps) getDeployment(c echo.Context) error {
	dep, err := d.deploymentFor(c, auth.Read)
	if err != nil {
		return err
	}
	return d.renderDeployment(c, http.StatusOK, dep)
}

// changeDeployment serves DELETE /deployments/{id} and POST
// /deployments/{id}/{cancel,retry,extend}; each answers 202 (extend 200)
// with the deployment as it is now.
func (d *Deps) changeDeployment(action string) echo.HandlerFunc {
	return func(c echo.Context) error {
		dep, err := d.deploymentFor(c, auth.Full)
		if err != nil {
			return err
		}
		ctx, a := c.Request().Context(), actor(c)
		status := http.StatusAccepted
		switch action {
		case "delete":
			dep, err = d.Deploy.Delete(ctx, a, dep.ID)
		case "cancel":
			dep, err = d.Deploy.Cancel(ctx, a, dep.ID)
		case "retry":
			dep, err = d.Deploy.Retry(ctx, a, dep.ID)
		case "extend":
			dep, err = d.Deploy.Extend(ctx, a, dep.ID)
			status = http.StatusOK
		}
		if err != nil {
			return err
		}
		return d.renderDeployment(c, status, dep)
	}
}

func (d *Deps) cloneDeployment(c echo.Context) error {
	src, err := d.deploymentFor(c, auth.Full)
	if err != nil {
		return err
	}
	var req restapi.CloneDeploymentRequest
	if err := Bind(c, &req); err != nil {
		return err
	}
	dep, err := d.Deploy.Clone(c.Request().Context(), actor(c), src.ID, req.Name, req.Tags)
	if err != nil {
		return err
	}
	return d.renderDeployment(c, http.StatusAccepted, dep)
}

func (d *Deps) deploymentHistory(c echo.Context) error {
	dep, err := d.deploymentFor(c, auth.Read)
	if err != nil {
		return err
	}
	items, err := d.Store.DeploymentHistory(c.Request().Context(), dep.ID)
	if err != nil {
		return err
	}
	return RenderList(c, mapOut(items, historyOut), len(items), Page{Page: 1, PerPage: len(items)})
}

// stepLogs: GET /deployments/{id}/steps/{step}/logs?after=&limit= returns
// the stored log chunks of a pipeline step (plugin stderr, pulls, health
// attempts), oldest first; `after` is the last chunk id already read.
func (d *Deps) stepLogs(c echo.Context) error {
	dep, err := d.deploymentFor(c, auth.Read)
	if err != nil {
		return err
	}
	v := errs.Fields{}
	after := int64(0)
	if s := c.QueryParam("after"); s != "" {
		if after, err = strconv.ParseInt(s, 10, 64); err != nil || after < 0 {
			v.Add("after", "must be a chunk id")
		}
	}
	limit := 1000
	if s := c.QueryParam("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > 10000 {
			v.Add("limit", "must be from 1 to 10000")
		}
	}
	if err := v.Err(); err != nil {
		return err
	}
	lines, err := d.Store.StepLogs(c.Request().Context(), dep.ID, c.Param("step"), after, limit)
	if err != nil {
		return err
	}
	out := restapi.StepLogs{Step: c.Param("step"), Items: make([]restapi.LogChunk, len(lines))}
	for i, l := range lines {
		out.Items[i] = restapi.LogChunk{ID: l.ID, Attempt: l.Attempt, Chunk: l.Chunk, At: l.At}
	}
	return c.JSON(http.StatusOK, out)
}
