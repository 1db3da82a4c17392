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
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
	"github.com/rs/zerolog/diode"

	"github.com/nullops/nullops/ingress/activity"
	"github.com/nullops/nullops/ingress/config"
	"github.com/nullops/nullops/ingress/drain"
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
	pred                  *predecessor // the ingress whose sockets Listen took over
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

// applyRoutes swaps in a routing table. A delete withdraws routes, and the
// host must say "deleted" rather than "unknown" from the first request on:
// the server lists a deployment's hosts as removed when it withdraws them,
// so the list is fetched before the table goes in (and again after, for the
// interval).
func (a *App) applyRoutes(body []byte, version string) ([]dynconfig.Problem, error) {
	a.refreshGone()
	problems, err := a.Proxy.Apply(body, version)
	if err == nil && a.gone != nil {
		a.gone.Trigger()
	}
	return problems, err
}

// applyDelta is applyRoutes for an incremental update.
func (a *App) applyDelta(d *dynconfig.Delta) ([]dynconfig.Problem, error) {
	if len(d.RemoveRouters) > 0 {
		a.refreshGone()
	}
	problems, err := a.Proxy.ApplyDelta(d)
	if err == nil && a.gone != nil {
		a.gone.Trigger()
	}
	return problems, err
}

// refreshGone fetches the removed hosts now; routing goes on without them
// when the server does not answer in time.
func (a *App) refreshGone() {
	if a.gone == nil || a.Proxy.Current().Hosts() == 0 {
		return // nothing routed yet (e.g. the saved table at start), so nothing withdrawn
	}
	if err := a.gone.Refresh(context.Background()); err != nil {
		a.log.Debug().Err(err).Msg("removed hosts not refreshed before the routing update")
	}
}

// Listen binds every configured address (":0" picks a free port), or takes
// the listening sockets over from a running nullops-ingress with the same
// state dir (see handover.go).
func (a *App) Listen() (err error) {
	inherited, pred, err := inherit(a.cfg.StateDir)
	if err != nil {
		return err
	}
	if pred != nil && !(sameAddr(a.cfg.Listen, inherited["http"]) && sameAddr(a.cfg.TLS.Listen, inherited["tls"]) &&
		sameAddr(a.cfg.Metrics.Listen, inherited["metrics"])) {
		// The running ingress listens elsewhere: listen on the configured
		// addresses; it still hands over (stops) once this one serves.
		for _, l := range inherited {
			l.Close()
		}
		inherited = nil
		a.log.Warn().Msg("the running nullops-ingress listens on other addresses; not taking its sockets over")
	}
	// Until the predecessor is told this one is ready it keeps serving; if
	// this process fails before, it just carries on.
	defer func() {
		if err != nil && pred != nil {
			pred.abandon()
		}
	}()
	a.pred = pred
	a.httpL, a.tlsL, a.metricsL = inherited["http"], inherited["tls"], inherited["metrics"]
	if inherited != nil {
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

// Serve runs until ctx ends or a successor took the listening sockets over,
// then drains: it stops accepting, answers every request that reached it
// and exits once its connections are closed (package ingress/drain).
func (a *App) Serve(ctx context.Context) (err error) {
	if a.httpL == nil {
		if err := a.Listen(); err != nil {
			return err
		}
	}
	bg, stop := context.WithCancel(ctx)
	defer stop()
	// The watcher writes the table in use to the state dir before it
	// returns (Serve waits for it: the next process starts from that file),
	// unless a successor took the sockets over: that one owns the file.
	watchDone := make(chan struct{})
	go func() { a.Watcher.Run(bg); close(watchDone) }()
	goneDone := make(chan struct{})
	go func() { a.gone.Run(bg); close(goneDone) }()
	defer func() { <-goneDone }()
	// Activity is reported until the drain is over, so the requests the
	// drain still answers count too (its last report goes out then).
	actCtx, stopAct := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAct()
	actDone := make(chan struct{})
	go func() {
		activity.Run(actCtx, a.tracker, a.Watcher, time.Duration(a.cfg.Activity.Interval), a.log)
		close(actDone)
	}()

	newSrv := func(h http.Handler) *http.Server {
		return &http.Server{
			Handler: h,
			// Also bounds how long a draining ingress waits for the first
			// request of a connection it accepted.
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			// No WriteTimeout: streams and WebSockets last as long as they do.
		}
	}
	servers := []*drain.Server{drain.Start(newSrv(a.Proxy), a.httpL, nil)}
	if a.tlsL != nil {
		servers = append(servers, drain.Start(newSrv(a.Proxy), a.tlsL, a.tlsConfig))
	}
	if a.metricsL != nil {
		servers = append(servers, drain.Start(newSrv(a.metricsMux()), a.metricsL, nil))
	}
	failed := make(chan error, len(servers))
	for _, s := range servers {
		go func() {
			<-s.Stopped()
			failed <- s.Err()
		}()
	}
	a.log.Info().Str("addr", a.Addr()).Str("tls_addr", a.TLSAddr()).Str("metrics_addr", a.MetricsAddr()).
		Str("server", a.cfg.Server.URL).Str("version", version.Version).Int("hosts", a.Proxy.Current().Hosts()).Msg("nullops-ingress listening")
	if a.pred != nil {
		// This process serves: the predecessor may stop accepting.
		if perr := a.pred.ready(); perr != nil {
			a.log.Warn().Err(perr).Msg("the previous nullops-ingress may still be serving")
		} else {
			a.log.Info().Msg("the previous nullops-ingress drains")
		}
	}

	// A successor started with the same state dir takes the listeners over.
	handedOver := make(chan struct{})
	stopOffer, oerr := offerHandover(a.cfg.StateDir, map[string]net.Listener{"http": a.httpL, "tls": a.tlsL, "metrics": a.metricsL}, handedOver)
	if oerr != nil {
		a.log.Warn().Err(oerr).Msg("no socket handover for the next restart")
		stopOffer = func() {}
	}
	// Stopped without a successor, the sockets close with this process:
	// requests that reached it are still answered, but nothing waits for
	// idle keep-alive connections or WebSockets.
	opts := drain.Options{}
	select {
	case serr := <-failed:
		err = fmt.Errorf("http server: %w", serr)
	case <-ctx.Done():
	case <-handedOver:
		a.log.Info().Msg("a new nullops-ingress took over the listening sockets; draining")
		a.Watcher.Disown() // the successor writes the state dir from now on
		opts = drain.Options{Idle: time.Duration(a.cfg.Drain.Idle), WaitUpgraded: true}
	}
	a.log.Info().Msg("shutting down")
	stopOffer()
	stop()
	drainCtx, cancel := context.WithTimeout(context.Background(), time.Duration(a.cfg.Drain.Timeout))
	defer cancel()
	var wg sync.WaitGroup
	var cut atomic.Int64
	for _, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, _ := s.Drain(drainCtx, opts)
			cut.Add(int64(n))
		}()
	}
	wg.Wait()
	if n := cut.Load(); n > 0 {
		a.log.Warn().Int64("connections", n).Dur("drain_timeout", time.Duration(a.cfg.Drain.Timeout)).Msg("closed connections still open after drain.timeout")
	}
	stopAct()
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
