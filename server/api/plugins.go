package api

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/errs"
	"github.com/nullops/nullops/server/store"
)

func registerPlugins(g *echo.Group, d *Deps) {
	g.GET("/plugins", d.listPlugins, RequireAdmin)
	g.POST("/plugins", d.createPlugin, RequireAdmin)
	g.GET("/plugins/:id", d.getPlugin, RequireAdmin)
	g.PUT("/plugins/:id", d.updatePlugin, RequireAdmin)
	g.DELETE("/plugins/:id", d.deletePlugin, RequireAdmin)
}

// Plugin defaults (docs/architecture.md, "Agent").
const (
	defaultPluginCPU      = 0.5
	defaultPluginMemoryMB = 128
	defaultPluginTimeout  = 5 * time.Minute
)

// pluginInput is the store's input of a restapi.PluginRequest, with the
// defaults for absent limits.
func pluginInput(r restapi.PluginRequest) (store.PluginInput, error) {
	in := store.PluginInput{Name: r.Name, RegistryID: r.RegistryID, Image: r.Image, Tag: r.Tag, Description: r.Description,
		ParamsSchema: r.ParamsSchema, CPU: defaultPluginCPU, MemoryMB: defaultPluginMemoryMB,
		TimeoutSeconds: int64(defaultPluginTimeout / time.Second), JoinNetwork: true, DockerSocket: r.DockerSocket}
	if r.CPU != nil {
		in.CPU = *r.CPU
	}
	if r.MemoryMB != nil {
		in.MemoryMB = *r.MemoryMB
	}
	if r.JoinNetwork != nil {
		in.JoinNetwork = *r.JoinNetwork
	}
	if r.Timeout != "" {
		t, err := time.ParseDuration(r.Timeout)
		if err != nil || t < time.Second || t%time.Second != 0 {
			return in, errs.Fields{"timeout": "must be a Go duration of whole seconds, e.g. 90s or 5m"}.Err()
		}
		in.TimeoutSeconds = int64(t / time.Second)
	}
	if len(in.ParamsSchema) == 0 || string(in.ParamsSchema) == "null" {
		in.ParamsSchema = json.RawMessage("{}")
	}
	return in, nil
}

func (d *Deps) listPlugins(c echo.Context) error {
	list, err := store.ListPlugins(c.Request().Context(), d.Store.Pool)
	if err != nil {
		return err
	}
	return pageOf(c, mapOut(list, pluginOut))
}

func (d *Deps) getPlugin(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	p, err := store.GetPlugin(c.Request().Context(), d.Store.Pool, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, pluginOut(p))
}

func (d *Deps) createPlugin(c echo.Context) error {
	var req restapi.PluginRequest
	if err := Bind(c, &req); err != nil {
		return err
	}
	in, err := pluginInput(req)
	if err != nil {
		return err
	}
	out, err := d.Catalog.CreatePlugin(c.Request().Context(), actor(c), in)
	if err != nil {
		return err
	}
	d.pluginsChanged()
	return c.JSON(http.StatusCreated, pluginOut(out))
}

func (d *Deps) updatePlugin(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	var req restapi.PluginRequest
	if err := Bind(c, &req); err != nil {
		return err
	}
	in, err := pluginInput(req)
	if err != nil {
		return err
	}
	out, err := d.Catalog.UpdatePlugin(c.Request().Context(), actor(c), id, in)
	if err != nil {
		return err
	}
	d.pluginsChanged()
	return c.JSON(http.StatusOK, pluginOut(out))
}

func (d *Deps) deletePlugin(c echo.Context) error {
	id, err := PathID(c, "id")
	if err != nil {
		return err
	}
	if err := d.Catalog.DeletePlugin(c.Request().Context(), actor(c), id); err != nil {
		return err
	}
	d.pluginsChanged()
	return c.NoContent(http.StatusNoContent)
}

// pluginsChanged sends the current plugin list (plugins.update) to every
// online agent through Deps.BroadcastPlugins, in the background so a slow
// agent never delays the response. One broadcast runs at a time and each
// reads the list after the change that asked for it, so the last list an
// agent gets is the current one (two overlapping broadcasts could deliver
// an older list last).
func (d *Deps) pluginsChanged() {
	if d.BroadcastPlugins == nil {
		return
	}
	b := &d.pluginBroadcast
	b.mu.Lock()
	b.dirty = true
	if b.running {
		b.mu.Unlock()
		return
	}
	b.running = true
	b.mu.Unlock()
	go func() {
		for {
			b.mu.Lock()
			if !b.dirty {
				b.running = false
				b.mu.Unlock()
				return
			}
			b.dirty = false
			b.mu.Unlock()
			d.broadcastPlugins()
		}
	}()
}

// pluginBroadcast serializes pluginsChanged: dirty asks for one more
// broadcast while one is running.
type pluginBroadcast struct {
	mu             sync.Mutex
	dirty, running bool
}

func (d *Deps) broadcastPlugins() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := d.Catalog.PluginsUpdate(ctx)
	if err != nil {
		d.Log.Error().Err(err).Msg("build plugins.update")
		return
	}
	d.BroadcastPlugins(ctx, u)
}
