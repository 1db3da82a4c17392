package api

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// placementDryRun: POST /placement/dry-run {"project_id","environment_id",
// "name"?,"tags"?} → 200 {"fits","reason"?,"cpu","memory_mb"}: whether a
// deployment created now would find a node, decided by the same code as a
// create, reserving nothing. The reason never names nodes or their free
// figures, for admins and users alike. Needs the level a create needs.
func (d *Deps) placementDryRun(c echo.Context) error {
	req, err := bindCreate(c)
	if err != nil {
		return err
	}
	verdict, err := d.Deploy.DryRun(c.Request().Context(), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, verdictOut(verdict))
}
