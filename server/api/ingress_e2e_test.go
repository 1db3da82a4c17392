package api

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"
	ptypes "github.com/traefik/paerser/types"

	ingressapp "github.com/nullops/nullops/ingress/app"
	ingressconfig "github.com/nullops/nullops/ingress/config"
	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/server/changefeed"
	"github.com/nullops/nullops/server/config"
	"github.com/nullops/nullops/server/ingresspub"
	"github.com/nullops/nullops/server/store"
	"github.com/nullops/nullops/server/store/storetest"
)

// controlPlane serves the real ingress endpoints (publisher on PostgreSQL)
// on a fixed address, and can be stopped and started again there.
type controlPlane struct {
	addr string
	e    *echo.Echo
	srv  *http.Server
}

func (cp *controlPlane) start(t testing.TB) {
	t.Helper()
	var l net.Listener
	var err error
	for range 50 { // the port may linger briefly after a stop
		if l, err = net.Listen("tcp", cp.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listen %s: %v", cp.addr, err)
	}
	cp.addr = l.Addr().String()
	cp.srv = &http.Server{Handler: cp.e}
	go cp.srv.Serve(l) //nolint:errcheck
}

func (cp *controlPlane) stop() { _ = cp.srv.Close() }

type runningIngress struct {
	app    *ingressapp.App
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func startIngress(t testing.TB, serverURL, token, stateDir string) *runningIngress {
	t.Helper()
	return startIngressWith(t, serverURL, token, stateDir, nil)
}

// startIngressWith starts a nullops-ingress whose configuration tune may
// change first.
func startIngressWith(t testing.TB, serverURL, token, stateDir string, tune func(*ingressconfig.Config)) *runningIngress {
	t.Helper()
	cfg := ingressconfig.Defaults()
	cfg.Listen = "127.0.0.1:0"
	cfg.Metrics.Listen = ""
	cfg.AccessLog = false
	cfg.Server.URL = serverURL
	cfg.Server.Wait = ptypes.Duration(5 * time.Second)
	cfg.Token = token
	cfg.StateDir = stateDir
	cfg.Activity.Interval = ptypes.Duration(200 * time.Millisecond)
	if tune != nil {
		tune(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := ingressapp.New(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ri := &runningIngress{app: a, cancel: cancel, done: make(chan error, 1)}
	go func() { ri.done <- a.Serve(ctx) }()
	t.Cleanup(ri.stop)
	return ri
}

func (ri *runningIngress) stop() {
	ri.once.Do(func() {
		ri.cancel()
		select {
		case <-ri.done:
		case <-time.After(2 * time.Minute):
		}
	})
}

func (ri *runningIngress) get(host string) (int, string) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+ri.app.Addr()+"/", nil)
	req.Host = host
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (ri *runningIngress) waitFor(t *testing.T, host string, status int, text string) {
	t.Helper()
	ctx := testutil.Context(t, 2*time.Minute)
	var code int
	var body string
	for {
		code, body = ri.get(host)
		if code == status && strings.Contains(body, text) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: still %d %q, want %d with %q", host, code, body, status, text)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestIngressEndToEnd runs the real publisher on PostgreSQL, the real
// ingress endpoints and a real nullops-ingress (ingress/app) in front of a
// real backend, and walks a deployment through its states. What a real
// agent adds later (the deployments issue): the rows change because agent
// events arrive, instead of the test setting them.
func TestIngressEndToEnd(t *testing.T) {
	const token = "e2e-ingress-token"
	const host = "web.pr-1.qa.example.test"
	ctx := testutil.Context(t, 2*time.Minute)

	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from pr-1 (%s)", r.Host)
	}))
	defer svc.Close()
	svcPort := svc.Listener.Addr().(*net.TCPAddr).Port

	st := storetest.New(t)
	seed := storetest.NewRouteSeed(t, st)
	env := seed.Environment(t, "qa", "example.test", "", true)
	node := seed.Node(t, env, "n1", "127.0.0.1", "online")
	dep := seed.Deployment(t, env, node, "pr-1", "deploying", time.Hour)
	seed.Service(t, dep, "web", svcPort, true)

	pub, err := ingresspub.New(st, ingresspub.Options{Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	// The server's wiring: the publisher follows the change feed, so every
	// status change below reaches it without being told.
	feed := changefeed.New(st, changefeed.Options{Channels: []string{store.RoutesChannel}, Log: zerolog.Nop()})
	pub.Follow(feed)
	pubCtx, stopPub := context.WithCancel(ctx)
	defer stopPub()
	go pub.Run(pubCtx)
	go feed.Run(pubCtx)
	select {
	case <-feed.Ready():
	case <-ctx.Done():
		t.Fatal("the change feed did not start listening")
	}
	cfg := config.Defaults()
	cfg.Ingress.Token = token
	e := echo.New()
	e.HTTPErrorHandler = ErrorHandler(zerolog.Nop())
	registerIngress(e.Group("/api/v1"), &Deps{Config: cfg, Store: st, Log: zerolog.Nop(), Ingress: pub})
	cp := &controlPlane{addr: "127.0.0.1:0", e: e}
	cp.start(t)
	defer cp.stop()
	serverURL := "http://" + cp.addr
	stateDir := t.TempDir()

	ing := startIngress(t, serverURL, token, stateDir)
	ing.waitFor(t, host, 503, "still being deployed")

	// The deployment becomes running: routed.
	seed.SetDeploymentStatus(t, dep, "running")
	ing.waitFor(t, host, 200, "hello from pr-1 ("+host+")")

	// Its traffic counts as activity.
	before, _ := seed.Activity(t, dep)
	testutil.WaitFor(t, ctx, 50*time.Millisecond, "ingress traffic to reach last_activity_at", func() bool {
		ing.get(host)
		last, _ := seed.Activity(t, dep)
		return last.After(before)
	})

	// The node's agent stops answering: during the grace the deployment is
	// still running and stays routed (the containers do not depend on the
	// agent); after it the deployment is offline; then everything is back.
	seed.SetNodeStatus(t, node, "offline")
	if err := pub.Recompute(ctx); err != nil {
		t.Fatal(err)
	}
	if code, body := ing.get(host); code != 200 {
		t.Fatalf("node unreachable within the grace: ingress answers %d %s", code, body)
	}
	seed.SetDeploymentStatus(t, dep, "offline")
	ing.waitFor(t, host, 503, "is offline")
	seed.SetNodeStatus(t, node, "online")
	seed.SetDeploymentStatus(t, dep, "running")
	ing.waitFor(t, host, 200, "hello from pr-1")

	// The server goes away: the ingress keeps serving the last table.
	cp.stop()
	for range 10 {
		if code, body := ing.get(host); code != 200 {
			t.Fatalf("server down: ingress answers %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The ingress restarts while the server is still down: it serves the
	// routes it saved, at once.
	ing.stop()
	ing2 := startIngress(t, serverURL, token, stateDir)
	if code, body := ing2.get(host); code != 200 {
		t.Fatalf("restarted ingress without server: %d %s", code, body)
	}
	// Meanwhile the deployment is deleted; when the server is back the
	// ingress follows.
	seed.SetDeploymentStatus(t, dep, "deleted")
	cp.start(t)
	ing2.waitFor(t, host, 404, "No deployment here")
}
