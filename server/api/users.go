package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/errs"
	"github.com/nullops/nullops/server/store"
)

// registerUsers mounts user administration (admin only).
func registerUsers(g *echo.Group, d *Deps) {
	g.GET("/users", d.listUsers, RequireAdmin)
	g.POST("/users", d.createUser, RequireAdmin)
	g.GET("/users/:id", d.getUser, RequireAdmin)
	g.PATCH("/users/:id", d.updateUser, RequireAdmin)
	g.DELETE("/users/:id", d.deleteUser, RequireAdmin)
	g.PUT("/users/:id/password", d.resetPassword, RequireAdmin)
}

// listUsers: GET /users?q=&sort=&order=&page=&per_page=
func (d *Deps) listUsers(c echo.Context) error {
	v := errs.Fields{}
	pg := PageInto(c, v)
	f := store.UserFilter{Query: searchQuery(c, v), Limit: pg.Limit(), Offset: pg.Offset()}
	f.Sort, f.Desc = sortOrder(c, v, store.UserSorts)
	if err := v.Err(); err != nil {
		return err
	}
	items, total, err := d.Store.ListUsers(c.Request().Context(), f)
	if err != nil {
		return err
	}
	return RenderList(c, mapOut(items, userOut), total, pg)
}

func (d *Deps) createUser(c echo.Context) error {
	var req restapi.UserRequest
	if err := Bind(c, &req); err != nil {
		return err
	}
	u, err := d.Auth.CreateUser(c.Request().Context(), actor(c), auth.NewUser{
		Username: req.Username, DisplayName: req.DisplayName, Password: req.Password, Role: req.Role,
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, userOut(u))
}

func (d *Deps) getUser(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	u, err := d.Store.GetUser(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, userOut(u))
}

func (d *Deps) updateUser(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	var req restapi.UserPatch
	if err := Bind(c, &req); err != nil {
		return err
	}
	u, err := d.Auth.UpdateUser(c.Request().Context(), actor(c), id, store.UserUpdate{DisplayName: req.DisplayName, Role: req.Role, Active: req.Active})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, userOut(u))
}

func (d *Deps) deleteUser(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	_, err = d.Auth.DeleteUser(c.Request().Context(), actor(c), id)
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (d *Deps) resetPassword(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	var req restapi.PasswordReset
	if err := Bind(c, &req); err != nil {
		return err
	}
	// An admin resetting their own password keeps the session in use.
	var keep []byte
	if s := sessionFrom(c); s != nil && PrincipalFrom(c).UserID == id {
		keep = s.IDHash
	}
	if err := d.Auth.ResetPassword(c.Request().Context(), actor(c), id, req.Password, keep); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
