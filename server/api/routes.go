package api

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/agents"
	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/catalog"
	"github.com/nullops/nullops/server/config"
	"github.com/nullops/nullops/server/deploy"
	"github.com/nullops/nullops/server/errs"
	"github.com/nullops/nullops/server/ingresspub"
	"github.com/nullops/nullops/server/secretbox"
	"github.com/nullops/nullops/server/store"
	"github.com/nullops/nullops/server/usage"
)

// Deps are what handlers need. Domain services are added here as fields as
// they appear; handlers never reach for globals.
type Deps struct {
	pluginBroadcast pluginBroadcast // see pluginsChanged

	Config *config.Config
	Store  *store.Store
	Box    *secretbox.Box
	Log    zerolog.Logger
	// Ingress publishes the ingress route table (it follows the change
	// feed: nothing needs to tell it about changes).
	Ingress *ingresspub.Publisher
	// Auth authenticates callers and decides access (see RequireUser,
	// RequireAdmin, RequireLevel in middleware_auth.go).
	Auth *auth.Service
	// Deploy is the deployment lifecycle (server/deploy); the deployment
	// and event routes are mounted when it is set.
	Deploy *deploy.Service
	// Catalog is registries, services, plugins, secrets, environments,
	// projects and pipelines (server/catalog).
	Catalog *catalog.Catalog
	// BroadcastPlugins sends plugins.update to every online agent (the
	// agent connection manager); nil = no agents to tell.
	BroadcastPlugins func(ctx context.Context, u protocol.PluginsUpdate)
	// Nodes performs the admin actions on nodes (tokens, pinning,
	// enable/disable); Agents is the connection manager (live node state).
	// The node routes are mounted when Nodes is set.
	Nodes  *agents.Admin
	Agents *agents.Manager
	// Usage is the services' CPU and memory history; its route is mounted
	// when it is set (with Deploy).
	Usage *usage.History
	// Draining, when set and true, makes /readyz answer 503 (the server is
	// shutting down: a load balancer stops sending it requests).
	Draining func() bool
}

// Register mounts every route on e. Each area of the API registers its routes
// in its own file through a registerX function called from here.
func Register(e *echo.Echo, d *Deps) {
	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	e.GET("/readyz", func(c echo.Context) error {
		if d.Draining != nil && d.Draining() {
			return &errs.Error{Kind: errs.Unavailable, Code: "draining", Message: "shutting down"}
		}
		if err := d.Store.Ready(c.Request().Context()); err != nil {
			return &errs.Error{Kind: errs.Unavailable, Code: "not_ready", Message: err.Error()}
		}
		return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
	})
	e.GET("/metrics", echo.WrapHandler(promhttp.Handler()))

	v1 := e.Group(APIPrefix)
	registerIngress(v1, d)
	// Every route on user needs an authenticated caller (401 otherwise);
	// admin-only routes add RequireAdmin as route middleware, and handlers of
	// project/environment resources call RequireLevel.
	user := v1.Group("", RequireUser(d))
	registerAuth(v1, user, d)
	registerMe(user, d)
	registerTokens(user, d)
	registerUsers(user, d)
	registerTeams(user, d)
	registerAccess(user, d)
	registerAudit(user, d)
	registerCatalog(user, d)
	if d.Deploy != nil {
		registerDeployments(user, d)
		if d.Usage != nil {
			registerUsage(user, d)
		}
	}
	if d.Nodes != nil {
		registerNodes(user, d)
		registerFleet(user, d)
	}
}
