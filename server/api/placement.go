package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/deploy"
	"github.com/nullops/nullops/server/errs"
)

// placementDryRun: POST /placement/dry-run {"project_id","environment_id",
// "name"?,"tags"?} → 200 {"fits","reason"?,"cpu","memory_mb"}: whether a
// deployment created now would find a node, decided by the same code as a
// create, reserving nothing. The reason never names nodes or their free
// figures, for admins and users alike. Needs the level a create needs.
func (d *Deps) placementDryRun(c echo.Context) error {
	var req restapi.CreateDeploymentRequest
	if err := Bind(c, &req); err != nil {
		return err
	}
	v := errs.Fields{}
	if req.ProjectID < 1 {
		v.Add("project_id", "is required")
	}
	if req.EnvironmentID < 1 {
		v.Add("environment_id", "is required")
	}
	if req.Name != "" {
		if err := deploy.ValidateName(req.Name); err != nil {
			v.Add("name", "%v", err)
		}
	}
	if err := v.Err(); err != nil {
		return err
	}
	if err := RequireLevel(c, req.ProjectID, req.EnvironmentID, auth.Full); err != nil {
		return err
	}
	verdict, err := d.Deploy.DryRun(c.Request().Context(), deploy.CreateRequest{
		ProjectID: req.ProjectID, EnvironmentID: req.EnvironmentID, Name: req.Name, Tags: req.Tags,
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, verdict)
}
