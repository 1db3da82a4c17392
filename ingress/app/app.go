// Package app wires nullops-ingress together: the proxy on its listeners,
// the watcher that feeds it from the server, activity reporting and the
// metrics listener, with graceful shutdown.
package app

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
	"github.com/rs/zerolog/diode"

	"github.com/nullops/nullops/ingress/activity"
	"github.com/nullops/nullops/ingress/config"
	"github.com/nullops/nullops/ingress/dynconfig"
	"github.com/nullops/nullops/ingress/proxy"
	"github.com/nullops/nullops/ingress/watch"
	"github.com/nullops/nullops/internal/version"
)

// App is a configured ingress.
type App struct {
	cfg     *config.Config
	log     zerolog.Logger
	Proxy   *proxy.Proxy
	Watcher *watch.Watcher
	gone    *watch.GoneWatcher
	tracker *activity.Tracker
	access  diode.Writer
	hasLog  bool

	httpL, tlsL, metricsL net.Listener
	tlsConfig             *tls.Config
}

// New builds the ingress and loads the routes saved by the last run.
func New(cfg *config.Config, log zerolog.Logger) (*App, error) {
	a := &App{cfg: cfg, log: log, tracker: activity.NewTracker()}
	opts := proxy.Options{Log: log, Activity: a.tracker, Incremental: cfg.Server.Deltas, UIURL: cfg.UI.URL}
	if cfg.AccessLog {
		// A diode buffers access-log lines and hands them to one goroutine,
		// which batches them into few writes to stdout: requests never wait on
		// stdout (lines are dropped, and counted in the log, if stdout cannot
		// keep up).
		out := newBatchWriter(os.Stdout, 64<<10, 100*time.Millisecond)
		a.access = diode.NewWriter(out, 100000, 10*time.Millisecond, func(missed int) {
			log.Warn().Int("lines", missed).Msg("access log lines dropped")
		})
		al := zerolog.New(a.access).With().Timestamp().Str("component", "ingress-access").Logger()
		opts.AccessLog = &al
		a.hasLog = true
	}
	a.Proxy = proxy.New(opts)
	wopts := watch.Options{
		ServerURL: cfg.Server.URL,
		Token:     cfg.Token,
		StateDir:  cfg.StateDir,
		Wait:      time.Duration(cfg.Server.Wait),
		Apply:     a.applyRoutes,
		Log:       log,
	}
	if cfg.Server.Deltas {
		wopts.ApplyDelta, wopts.Document = a.applyDelta, a.Proxy.Document
	}
	w, err := watch.New(wopts)
	if err != nil {
		return nil, err
	}
	a.Watcher = w
	a.gone = w.NewGoneWatcher(a.Proxy.SetGone, 0)
	if err := os.MkdirAll(cfg.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	if err := a.gone.LoadState(); err != nil {
		log.Error().Err(err).Msg("ignoring the saved removed hosts")
	}
	if _, err := w.LoadState(); err != nil {
		// A corrupt state file must not keep the ingress down: the server
		// sends a fresh table as soon as it answers.
		log.Error().Err(err).Msg("ignoring the saved routes")
	}
	if cfg.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls certificate: %w", err)
		}
		a.tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	}
	return a, nil
}

// applyRoutes swaps in a routing table, then asks for the list of removed
// hosts: a delete withdraws routes, and the host should say "deleted"
// rather than "unknown" right after.
func (a *App) applyRoutes(body []byte, version string) ([]dynconfig.Problem, error) {
	problems, err := a.Proxy.Apply(body, version)
	if err == nil && a.gone != nil {
		a.gone.Trigger()
	}
	return problems, err
}

// applyDelta is applyRoutes for an incremental update.
func (a *App) applyDelta(d *dynconfig.Delta) ([]dynconfig.Problem, error) {
	problems, err := a.Proxy.ApplyDelta(d)
	if err == nil && a.gone != nil {
		a.gone.Trigger()
	}
	return problems, err
}

// Listen binds every configured address (":0" picks a free port).
func (a *App) Listen() error {
	inherited, ok, err := inherit(a.cfg.StateDir)
	if err != nil {
		return err
	}
	if ok && !(sameAddr(a.cfg.Listen, inherited["http"]) && sameAddr(a.cfg.TLS.Listen, inherited["tls"]) &&
		sameAddr(a.cfg.Metrics.Listen, inherited["metrics"])) {
		// The running ingress listens elsewhere: it has handed over and
		// stops; listen on the configured addresses instead.
		for _, l := range inherited {
			l.Close()
		}
		a.log.Warn().Msg("the running nullops-ingress listened on other addresses; not taking its sockets over")
		ok = false
	}
	if ok {
		a.httpL, a.tlsL, a.metricsL = inherited["http"], inherited["tls"], inherited["metrics"]
		if a.httpL == nil {
			return errors.New("handover: the running ingress sent no HTTP listener")
		}
		if a.tlsL != nil && a.tlsConfig == nil {
			a.tlsL.Close()
			a.tlsL = nil
		}
		a.log.Info().Str("addr", a.httpL.Addr().String()).Msg("took over the listening sockets of the running nullops-ingress")
	} else if a.httpL, err = net.Listen("tcp", a.cfg.Listen); err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.Listen, err)
	}
	if a.tlsConfig != nil && a.tlsL == nil {
		if a.tlsL, err = net.Listen("tcp", a.cfg.TLS.Listen); err != nil {
			return fmt.Errorf("tls.listen on %s: %w", a.cfg.TLS.Listen, err)
		}
	}
	if a.cfg.Metrics.Listen != "" && a.metricsL == nil {
		if a.metricsL, err = net.Listen("tcp", a.cfg.Metrics.Listen); err != nil {
			return fmt.Errorf("metrics.listen on %s: %w", a.cfg.Metrics.Listen, err)
		}
	}
	return nil
}

// Addr is the bound HTTP address (after Listen).
func (a *App) Addr() string { return a.httpL.Addr().String() }

// TLSAddr is the bound HTTPS address, or "".
func (a *App) TLSAddr() string {
	if a.tlsL == nil {
		return ""
	}
	return a.tlsL.Addr().String()
}

// MetricsAddr is the bound metrics address, or "".
func (a *App) MetricsAddr() string {
	if a.metricsL == nil {
		return ""
	}
	return a.metricsL.Addr().String()
}

// Serve runs until ctx ends, then shuts down gracefully.
func (a *App) Serve(ctx context.Context) error {
	if a.httpL == nil {
		if err := a.Listen(); err != nil {
			return err
		}
	}
	bg, stop := context.WithCancel(ctx)
	defer stop()
	// The watcher writes the table in use to the state dir before it
	// returns (Serve waits for it: the next process starts from that file).
	watchDone := make(chan struct{})
	go func() { a.Watcher.Run(bg); close(watchDone) }()
	goneDone := make(chan struct{})
	go func() { a.gone.Run(bg); close(goneDone) }()
	defer func() { <-goneDone }()
	actDone := make(chan struct{})
	go func() {
		activity.Run(bg, a.tracker, a.Watcher, time.Duration(a.cfg.Activity.Interval), a.log)
		close(actDone)
	}()

	var servers []*http.Server
	errc := make(chan error, 3)
	serve := func(srv *http.Server, l net.Listener) {
		servers = append(servers, srv)
		go func() { errc <- srv.Serve(l) }()
	}
	newSrv := func(h http.Handler) *http.Server {
		return &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			// No WriteTimeout: streams and WebSockets last as long as they do.
		}
	}
	serve(newSrv(a.Proxy), a.httpL)
	if a.tlsL != nil {
		serve(newSrv(a.Proxy), tls.NewListener(a.tlsL, a.tlsConfig))
	}
	if a.metricsL != nil {
		serve(newSrv(a.metricsMux()), a.metricsL)
	}
	a.log.Info().Str("addr", a.Addr()).Str("tls_addr", a.TLSAddr()).Str("metrics_addr", a.MetricsAddr()).
		Str("server", a.cfg.Server.URL).Str("version", version.Version).Int("hosts", a.Proxy.Current().Hosts()).Msg("nullops-ingress listening")

	// A successor started with the same state dir takes the listeners over.
	handedOver := make(chan struct{})
	stopOffer, err := offerHandover(a.cfg.StateDir, map[string]net.Listener{"http": a.httpL, "tls": a.tlsL, "metrics": a.metricsL}, handedOver)
	if err != nil {
		a.log.Warn().Err(err).Msg("no socket handover for the next restart")
		stopOffer = func() {}
	}
	serving := len(servers)
	select {
	case err = <-errc:
		serving--
		err = fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	case <-handedOver:
		a.log.Info().Msg("a new nullops-ingress took over the listening sockets; draining")
	}
	a.log.Info().Msg("shutting down")
	stopOffer()
	stop()
	shutCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	shutdown := func() {
		for _, s := range servers {
			if e := s.Shutdown(shutCtx); e != nil && !errors.Is(e, http.ErrServerClosed) && err == nil {
				err = fmt.Errorf("shutdown: %w", e)
			}
		}
	}
	shutdown()
	// A connection accepted just before its listener closed may be tracked
	// only after Shutdown found nothing active: once every Serve has
	// returned, nothing more can be accepted, and a second Shutdown waits
	// for such late connections too (a successor holding the same socket
	// keeps serving meanwhile).
	for ; serving > 0; serving-- {
		select {
		case <-errc:
		case <-shutCtx.Done():
			serving = 0
		}
	}
	shutdown()
	<-actDone
	<-watchDone
	if a.hasLog {
		_ = a.access.Close()
	}
	return err
}

func (a *App) metricsMux() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.Handler())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		t := a.Proxy.Current()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"status":    "ok",
			"etag":      t.Version,
			"hosts":     t.Hosts(),
			"backend":   t.Count(dynconfig.KindBackend),
			"offline":   t.Count(dynconfig.KindOffline),
			"deploying": t.Count(dynconfig.KindDeploying),
		})
	})
	return mux
}

// sameAddr reports whether listener l (nil: none) serves the configured
// address want ("" for none; port 0 matches any port; an empty host any
// host).
func sameAddr(want string, l net.Listener) bool {
	if l == nil {
		return true // the configured listener is opened later, if wanted
	}
	if want == "" {
		return false
	}
	host, port, err := net.SplitHostPort(want)
	if err != nil {
		return false
	}
	got, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return false
	}
	if port != "0" && port != strconv.Itoa(got.Port) {
		return false
	}
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.Equal(got.IP)
}
