// Package app wires nullops-agent together: data dir, certificate, event
// journal, host figures, the control-plane channel behind TLS, and graceful
// shutdown.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/agent/certs"
	"github.com/nullops/nullops/agent/channel"
	"github.com/nullops/nullops/agent/config"
	"github.com/nullops/nullops/agent/docker"
	"github.com/nullops/nullops/agent/executor"
	"github.com/nullops/nullops/agent/hostinfo"
	"github.com/nullops/nullops/agent/journal"
	"github.com/nullops/nullops/agent/kube"
	"github.com/nullops/nullops/agent/runtime"
	"github.com/nullops/nullops/agent/state"
	"github.com/nullops/nullops/agent/trust"
	"github.com/nullops/nullops/internal/version"
	"github.com/nullops/nullops/protocol"
)

// Version is the agent's release version (internal/version, set at build
// time with -ldflags). The control plane refuses agents whose version it
// does not accept (node "incompatible").
var Version = version.Version

// App is a running agent.
type App struct {
	Config   *config.Config
	Log      zerolog.Logger
	Identity certs.Identity
	Journal  *journal.Journal
	Host     *hostinfo.Sampler
	Channel  *channel.Server
	Runtime  runtime.Runtime // chosen by the runtime option
	State    *state.Store
	Executor *executor.Executor

	figures executor.Host // capacity and usage: the host's, or the runtime's (runtime.HostProvider)
	// stateSecret keeps the identity in a Kubernetes Secret (runtime
	// kubernetes with kubernetes.statesecret), nil otherwise.
	stateSecret *kube.StateSecret

	listener      net.Listener
	debugListener net.Listener
}

// New prepares the data dir, the certificate (generated on first start) and
// the journal, and builds the channel. Nothing listens yet.
func New(cfg *config.Config, log zerolog.Logger) (*App, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
	}
	// In a pod without a persistent volume, the identity comes back from
	// the state Secret before the certificate is looked for.
	var stateSecret *kube.StateSecret
	if cfg.Runtime == runtime.Kubernetes && cfg.Kubernetes.StateSecret != "" {
		ss, err := kube.NewStateSecret(cfg.Kubernetes.Kubeconfig, cfg.Kubernetes.Context, cfg.Kubernetes.StateNamespace, cfg.Kubernetes.StateSecret, cfg.DataDir)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		restored, err := ss.Restore(ctx)
		cancel()
		if err != nil {
			return nil, err
		}
		if len(restored) > 0 {
			log.Info().Strs("files", restored).Str("secret", cfg.Kubernetes.StateSecret).Msg("restored the agent's identity from its state secret")
		}
		stateSecret = ss
	}
	id, err := certs.Ensure(cfg.DataDir, cfg.NodeName)
	if err != nil {
		return nil, fmt.Errorf("agent certificate: %w", err)
	}
	if id.Generated {
		log.Info().Str("thumbprint", id.Thumbprint).Str("dir", cfg.DataDir).Msg("generated a new agent certificate")
	}
	j, err := journal.Open(filepath.Join(cfg.DataDir, journal.FileName))
	if err != nil {
		return nil, err
	}
	host := hostinfo.New(cfg.DataDir)
	host.SetOtherCPUTimeConstant(time.Duration(cfg.Capacity.OtherCPUSmoothing))

	// The runtime's objects are labelled with the node name, or with the
	// data dir's instance id when no name is configured (docs/agent.md).
	node := cfg.NodeName
	if node == "" {
		node = j.InstanceID()
	}
	rt, err := NewRuntime(cfg, node)
	if err != nil {
		j.Close()
		return nil, err
	}
	// A runtime whose capacity is not this host's (a cluster) reports its
	// own figures.
	var figures config.HostInfo = host
	if hp, ok := rt.(runtime.HostProvider); ok {
		figures = hp.Host()
	}
	st, err := state.Open(filepath.Join(cfg.DataDir, state.FileName))
	if err != nil {
		j.Close()
		return nil, err
	}
	ex := executor.New(executor.Config{AllowDockerSocket: cfg.Docker.PluginSocket}, rt, st, j, log)
	// A pipeline cut short by the last stop is failed and rolled back.
	if err := ex.Recover(context.Background()); err != nil {
		log.Error().Err(err).Msg("recover interrupted deployments")
	}
	host.SetManagedCPUs(ex.ManagedCPUs)
	var handler channel.Handler = ex

	tr, err := trust.Open(filepath.Join(cfg.DataDir, trust.FileName), cfg.Token)
	if err != nil {
		ex.Close()
		_ = st.Close()
		_ = rt.Close()
		j.Close()
		return nil, fmt.Errorf("agent trust record: %w", err)
	}
	if stateSecret != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := stateSecret.Save(ctx)
		cancel()
		if err != nil {
			ex.Close()
			_ = st.Close()
			_ = rt.Close()
			j.Close()
			return nil, fmt.Errorf("keep the agent's identity in its state secret: %w", err)
		}
	}
	if tr.Revoked() {
		log.Warn().Msg("the node token was revoked by the control plane: every connection is refused until the agent is started with a new token")
	}
	ch := channel.New(channel.Options{
		Trust:           tr,
		Version:         Version,
		Journal:         j,
		Host:            cfg.Advertised(figures), // capacity caps of agent/config
		Handler:         handler,
		Containers:      ex.ContainerStats,
		MetricsInterval: time.Duration(cfg.MetricsInterval),
		Log:             log,
	})
	return &App{Config: cfg, Log: log, Identity: id, Journal: j, Host: host, Channel: ch,
		Runtime: rt, State: st, Executor: ex, figures: figures, stateSecret: stateSecret}, nil
}

// NewRuntime builds the runtime the configuration names, scoped to node.
func NewRuntime(cfg *config.Config, node string) (runtime.Runtime, error) {
	switch cfg.Runtime {
	case runtime.Docker, "":
		return docker.New(docker.Config{
			Node: node, Host: cfg.Docker.Host, PublishIP: cfg.Docker.PublishIP,
			SubnetPool: cfg.Docker.SubnetPool, SubnetBits: cfg.Docker.SubnetBits,
		})
	case runtime.Kubernetes:
		sa := cfg.Kubernetes.ServiceAccount
		if cfg.Kubernetes.WorkloadRole != "" && sa == "" {
			ns, err := kube.PodNamespace()
			if err != nil {
				return nil, fmt.Errorf("kubernetes.serviceaccount: not set and %w", err)
			}
			sa = ns + "/nullops-agent"
		}
		return kube.New(kube.Config{Node: node, Kubeconfig: cfg.Kubernetes.Kubeconfig, Context: cfg.Kubernetes.Context,
			WorkloadRole: cfg.Kubernetes.WorkloadRole, ServiceAccount: sa, RouteHost: cfg.Kubernetes.RouteHost})
	}
	return nil, fmt.Errorf("runtime: %q is not a runtime (docker or kubernetes)", cfg.Runtime)
}

// Listen binds the configured addresses (":0" picks a free port).
func (a *App) Listen() error {
	l, err := net.Listen("tcp", a.Config.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.Config.Listen, err)
	}
	a.listener = l
	if addr := a.Config.Debug.EventsAddr(); addr != "" {
		dl, err := net.Listen("tcp", addr)
		if err != nil {
			l.Close()
			return fmt.Errorf("debug.eventslisten %s: %w", addr, err)
		}
		a.debugListener = dl
	}
	return nil
}

// Addr is the bound address of the channel (after Listen).
func (a *App) Addr() string { return a.listener.Addr().String() }

// Handler is the HTTP handler served over TLS.
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(protocol.PathConnect, a.Channel)
	mux.Handle("/metrics", a.Executor.MetricsHandler(a.figures))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	return mux
}

// TLSConfig serves the agent's certificate, TLS 1.2 or later, HTTP/1.1
// only (the WebSocket upgrade).
func (a *App) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{a.Identity.Certificate},
		NextProtos:   []string{"http/1.1"},
	}
}

// Serve runs until ctx is cancelled, then shuts down gracefully.
func (a *App) Serve(ctx context.Context) error {
	if a.listener == nil {
		if err := a.Listen(); err != nil {
			return err
		}
	}
	srv := &http.Server{Handler: a.Handler(), TLSConfig: a.TLSConfig(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: newStdLogger(a.Log)}
	errc := make(chan error, 2)
	go func() { errc <- srv.ServeTLS(a.listener, "", "") }()
	dbg := a.serveDebug(errc)
	if a.stateSecret != nil {
		// The trust record changes when the token is rotated or revoked.
		mctx, stopMirror := context.WithCancel(ctx)
		defer stopMirror()
		go a.stateSecret.Mirror(mctx, 5*time.Second, func(err error) {
			a.Log.Warn().Err(err).Msg("state secret")
		})
	}
	a.Log.Info().Str("addr", a.Addr()).Str("version", Version).Int("protocol", protocol.Version).
		Str("data_dir", a.Config.DataDir).Str("thumbprint", a.Identity.Thumbprint).
		Str("instance_id", a.Journal.InstanceID()).Msg("nullops-agent listening")

	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
		a.Log.Info().Msg("shutting down")
	}
	a.Channel.Close()
	a.Executor.Close()
	_ = a.State.Close()
	_ = a.Runtime.Close()
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(shutCtx)
	if dbg != nil {
		_ = dbg.Shutdown(shutCtx)
	}
	if cerr := a.Journal.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", serveErr)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
