package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/errs"
)

// registerUsage mounts the usage history of a deployment's services
// (docs/architecture.md, "Usage history"): whoever may read the deployment
// may read its history.
func registerUsage(g *echo.Group, d *Deps) {
	g.GET("/deployments/:id/usage", d.deploymentUsage)
}

// deploymentUsage: GET /deployments/{id}/usage?since= returns the CPU and
// memory samples of each service newer than since (RFC 3339 or Unix
// seconds; default: the whole window).
func (d *Deps) deploymentUsage(c echo.Context) error {
	dep, err := d.deploymentFor(c, auth.Read)
	if err != nil {
		return err
	}
	var since time.Time
	if s := c.QueryParam("since"); s != "" {
		if since, err = parseTime(s); err != nil {
			v := errs.Fields{}
			v.Add("since", "must be an RFC 3339 time (2006-01-02T15:04:05Z) or a Unix time in seconds")
			return v.Err()
		}
	}
	out, err := d.Usage.Of(c.Request().Context(), dep.ID, since)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, usageOut(out))
}
