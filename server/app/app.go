// Package app wires nullops-server together: database, migrations, domain
// services, the HTTP server and background jobs, with graceful shutdown.
package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/rs/zerolog"

	"github.com/nullops/nullops/internal/version"
	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/agents"
	"github.com/nullops/nullops/server/api"
	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/catalog"
	"github.com/nullops/nullops/server/changefeed"
	"github.com/nullops/nullops/server/config"
	"github.com/nullops/nullops/server/deploy"
	"github.com/nullops/nullops/server/ingresspub"
	"github.com/nullops/nullops/server/secretbox"
	"github.com/nullops/nullops/server/singleton"
	"github.com/nullops/nullops/server/store"
	"github.com/nullops/nullops/server/usage"
	"github.com/nullops/nullops/web"
)

// Version is the release version (internal/version, set at build time
// with -ldflags for every binary at once).
var Version = version.Version

// App is a running server.
type App struct {
	Config *config.Config
	Log    zerolog.Logger
	Store  *store.Store
	Box    *secretbox.Box
	Echo   *echo.Echo
	// Auth authenticates callers and decides access.
	Auth *auth.Service
	// Feed is the one LISTEN connection; it feeds the ingress publisher and
	// the live deployment events (started by Serve).
	Feed *changefeed.Feed
	// Ingress publishes the ingress route table.
	Ingress *ingresspub.Publisher
	// Catalog is registries, services, plugins, secrets, environments,
	// projects and pipelines; it also resolves deployment specs.
	Catalog *catalog.Catalog
	// BroadcastPlugins, when set (by the agent connection manager), sends
	// plugins.update to every online agent after the plugin list changes.
	BroadcastPlugins func(ctx context.Context, u protocol.PluginsUpdate)
	// Deploy is the deployment lifecycle; the agent connection manager is
	// plugged in with Deploy.Agents = deploy.ManagerAgents{m} and
	// Deploy.Attach(m) before the manager starts.
	Deploy *deploy.Service
	// Agents is the agent connection manager (started by Serve); Nodes the
	// admin actions on nodes.
	Agents *agents.Manager
	Nodes  *agents.Admin
	// Usage is the bounded CPU and memory history of the services, fed by
	// the agents' metrics pushes.
	Usage *usage.History
	// Jobs are the singleton jobs (see Serve): each runs on one replica of
	// those sharing the database at a time.
	Jobs map[string]*singleton.Runner

	listener net.Listener
	draining atomic.Bool
}

// New opens the database, applies migrations and builds the HTTP handler.
func New(ctx context.Context, cfg *config.Config, log zerolog.Logger) (*App, error) {
	box, err := secretbox.New(cfg.Secret.Key, cfg.Secret.OldKeys...)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	if err := store.Migrate(ctx, cfg.Database.URL); err != nil {
		return nil, fmt.Errorf("migrate database: %w", err)
	}
	st, err := store.Open(ctx, cfg.Database.URL, cfg.Database.MaxConns)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	a := &App{Config: cfg, Log: log, Store: st, Box: box}
	goneRetention := time.Duration(cfg.Ingress.GoneRetention)
	if goneRetention == 0 {
		goneRetention = -1 // off
	}
	a.Ingress, err = ingresspub.New(st, ingresspub.Options{File: cfg.Ingress.File, FileTempDir: cfg.Ingress.FileTempDir, Log: log,
		WithdrawGrace: time.Duration(cfg.Ingress.WithdrawGrace), ConfirmTimeout: time.Duration(cfg.Ingress.ConfirmTimeout),
		GoneRetention: goneRetention})
	if err != nil {
		st.Close()
		return nil, err
	}
	a.Auth, err = auth.New(st, log, auth.OptionsFrom(cfg.Session))
	if err != nil {
		st.Close()
		return nil, err
	}
	if err := a.Auth.Bootstrap(ctx, cfg.Admin); err != nil {
		st.Close()
		return nil, err
	}

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	if e.IPExtractor, err = api.IPExtractor(cfg.TrustedProxies); err != nil {
		st.Close()
		return nil, err
	}
	e.HTTPErrorHandler = api.ErrorHandler(log)
	e.Use(middleware.Recover())
	e.Use(api.RequestLog(log))
	e.Use(api.NoStore())
	e.Use(api.Edge())
	a.Catalog = catalog.New(st, box, log)
	a.Deploy = deploy.New(deploy.Config{Store: st, Resolver: a.Catalog, Tags: a.Catalog, Log: log,
		Links:        deploy.Links{Scheme: cfg.Ingress.LinkScheme, Port: cfg.Ingress.LinkPort},
		OfflineGrace: time.Duration(cfg.Agents.OfflineGrace), Withdraw: a.Ingress})
	a.Usage = &usage.History{Store: st, Log: log}
	a.wireAgents()
	a.Feed = changefeed.New(st, changefeed.Options{Channels: []string{store.RoutesChannel, store.DeploymentEventsChannel, store.IngressPollsChannel}, Log: log})
	a.Ingress.Follow(a.Feed)
	a.Deploy.Follow(a.Feed)
	api.Register(e, &api.Deps{Config: cfg, Store: st, Box: box, Log: log, Ingress: a.Ingress, Auth: a.Auth,
		Catalog: a.Catalog, BroadcastPlugins: a.broadcastPlugins, Deploy: a.Deploy, Nodes: a.Nodes, Agents: a.Agents, Usage: a.Usage,
		Draining: a.draining.Load})
	a.Jobs = a.singletons()
	// The web UI is the catch-all GET route; API, health and metrics routes
	// stay more specific and keep precedence.
	if err := web.Register(e); err != nil {
		st.Close()
		return nil, err
	}
	a.Echo = e
	return a, nil
}

// singletons are the periodic jobs that must run on one replica at a time
// (docs/high-availability.md, Singletons): each takes a PostgreSQL lock
// and moves to another replica when its holder stops or dies. The jobs
// are idempotent too, so the short overlap a frozen holder can cause when
// it wakes up only repeats work.
func (a *App) singletons() map[string]*singleton.Runner {
	o := singleton.Options{Store: a.Store, Log: a.Log}
	jobs := map[string]*singleton.Runner{
		"cleanup": singleton.New("cleanup", o, func(ctx context.Context) {
			if err := a.Deploy.RunCleanup(ctx, a.Config.Cleanup.Schedule); err != nil {
				a.Log.Error().Err(err).Msg("auto-cleanup")
			}
		}),
		"usage-prune": singleton.New("usage-prune", o, func(ctx context.Context) { a.Usage.RunPrune(ctx, 10*time.Minute) }),
		"auth-prune":  singleton.New("auth-prune", o, func(ctx context.Context) { a.Auth.PruneSessions(ctx, time.Hour) }),
	}
	if a.Config.Ingress.File != "" {
		a.Ingress.GateFile()
		jobs["ingress-file"] = singleton.New("ingress-file", o, a.Ingress.WriteFileWhileHeld)
	}
	return jobs
}

// wireAgents builds the agent connection manager and plugs the deployment
// lifecycle and the ingress publisher into it.
func (a *App) wireAgents() {
	c := a.Config.Agents
	a.Agents = agents.New(agents.Options{Store: a.Store, Box: a.Box, Log: a.Log, ServerVersion: Version,
		PingInterval: time.Duration(c.PingInterval), PingTimeout: time.Duration(c.PingTimeout),
		DialTimeout: time.Duration(c.DialTimeout), BackoffMin: time.Duration(c.BackoffMin), BackoffMax: time.Duration(c.BackoffMax),
		Plugins: a.Catalog.PluginsUpdate, LeaseTTL: time.Duration(a.Config.HA.LeaseTTL),
		ForwardKey: agents.ForwardKey(a.Config.Secret.Key)})
	a.Deploy.Agents = deploy.ManagerAgents{Manager: a.Agents}
	a.Deploy.Attach(a.Agents)
	a.Usage.Attach(a.Agents)
	a.BroadcastPlugins = func(ctx context.Context, u protocol.PluginsUpdate) {
		for id, err := range a.Agents.Broadcast(ctx, func(ctx context.Context, r protocol.Requester) error {
			_, err := protocol.CallPluginsUpdate.Do(ctx, r, u)
			return err
		}) {
			if err != nil {
				a.Log.Warn().Err(err).Int64("node_id", id).Msg("plugins.update not delivered to the node")
			}
		}
	}
	a.Nodes = &agents.Admin{Store: a.Store, Box: a.Box, Manager: a.Agents}
}

// broadcastPlugins forwards to BroadcastPlugins as set at call time.
func (a *App) broadcastPlugins(ctx context.Context, u protocol.PluginsUpdate) {
	if f := a.BroadcastPlugins; f != nil {
		f(ctx, u)
	}
}

// Listen binds the configured address (":0" picks a free port).
func (a *App) Listen() error {
	l, err := net.Listen("tcp", a.Config.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.Config.Listen, err)
	}
	a.listener = l
	return nil
}

// advertiseURL is ha.advertiseurl, or http(s)://<host name>:<bound port>.
func (a *App) advertiseURL() string {
	if u := a.Config.HA.AdvertiseURL; u != "" {
		return strings.TrimRight(u, "/")
	}
	scheme := "http"
	if a.Config.TLS.CertFile != "" {
		scheme = "https"
	}
	host, port, _ := net.SplitHostPort(a.Addr())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		// The host name, when it resolves (containers, most hosts); set
		// ha.advertiseurl where the replicas reach each other otherwise.
		host = "127.0.0.1"
		if h, err := os.Hostname(); err == nil && h != "" {
			if _, err := net.LookupHost(h); err == nil {
				host = h
			}
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// Addr is the bound address (after Listen).
func (a *App) Addr() string { return a.listener.Addr().String() }

// HTTPServer is the server Serve runs: header, request and idle timeouts
// from the configuration. The read timeout covers receiving the request;
// net/http lifts it once the body is read, so streams are not cut.
func (a *App) HTTPServer() *http.Server {
	h := a.Config.HTTP
	// Next to the API and UI: the calls other replicas forward for the
	// nodes this one holds (sealed with a key derived from the secret key;
	// server/agents/forward.go). Not an API route: no session, no CSRF.
	mux := http.NewServeMux()
	mux.Handle(agents.PathForward, a.Agents.ForwardHandler())
	mux.Handle("/", a.Echo)
	return &http.Server{Handler: mux, ReadHeaderTimeout: time.Duration(h.ReadHeaderTimeout),
		ReadTimeout: time.Duration(h.ReadTimeout), IdleTimeout: time.Duration(h.IdleTimeout)}
}

// Serve runs until ctx is cancelled, then shuts down gracefully.
func (a *App) Serve(ctx context.Context) error {
	if a.listener == nil {
		if err := a.Listen(); err != nil {
			return err
		}
	}
	srv := a.HTTPServer()
	// The background work (change feed, ingress publisher, delivery,
	// singleton jobs, agent connections) stops once ctx has ended and the
	// drain delay passed; that also releases the ingress long-polls and
	// ends the event streams, so shutdown does not wait for them.
	ingressCtx, stopIngress := context.WithCancel(context.WithoutCancel(ctx))
	defer stopIngress()
	if err := deploy.CheckCleanupSchedule(a.Config.Cleanup.Schedule); err != nil {
		a.close()
		return err
	}
	go a.Feed.Run(ingressCtx)
	go a.Ingress.Run(ingressCtx)
	// Delete delivery stops with ctx too (ending open event streams). It
	// runs on every replica: each delivers to the nodes it is connected to.
	go a.Deploy.Run(ingressCtx)
	var jobs sync.WaitGroup
	for _, j := range a.Jobs {
		jobs.Go(func() { j.Run(ingressCtx) })
	}
	a.Agents.SetAdvertiseURL(a.advertiseURL())
	if err := a.Agents.Start(ingressCtx); err != nil {
		stopIngress()
		jobs.Wait()
		a.close()
		return err
	}
	errc := make(chan error, 1)
	go func() {
		var err error
		if a.Config.TLS.CertFile != "" {
			err = srv.ServeTLS(a.listener, a.Config.TLS.CertFile, a.Config.TLS.KeyFile)
		} else {
			err = srv.Serve(a.listener)
		}
		errc <- err
	}()
	a.Log.Info().Str("addr", a.Addr()).Str("version", Version).Bool("tls", a.Config.TLS.CertFile != "").Msg("nullops-server listening")

	select {
	case err := <-errc:
		stopIngress()
		jobs.Wait()
		a.close()
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	a.Log.Info().Msg("shutting down")
	if d := time.Duration(a.Config.HTTP.DrainDelay); d > 0 {
		// Unready first, still serving: the load balancer's health check
		// takes this replica out before its listener closes.
		a.draining.Store(true)
		a.Log.Info().Dur("drain_delay", d).Msg("draining: /readyz answers 503")
		time.Sleep(d)
	}
	stopIngress()
	// Log streams other replicas follow through this one end too.
	a.Agents.CloseForwardedStreams()
	shutCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err := srv.Shutdown(shutCtx)
	jobs.Wait()
	a.close()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

func (a *App) close() {
	a.Agents.Stop()
	a.Store.Close()
}
