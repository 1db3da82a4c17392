package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	"github.com/nullops/nullops/ingress/dynconfig"
	"github.com/nullops/nullops/ingress/proxy"
	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/server/config"
	"github.com/nullops/nullops/server/ingresspub"
	"github.com/nullops/nullops/server/store"
	"github.com/nullops/nullops/server/store/storetest"
)

// deltaPlane is a control plane whose publisher can be replaced (a server
// restart: a new publisher has no history).
type deltaPlane struct {
	st     *store.Store
	cp     *controlPlane
	pub    *ingresspub.Publisher
	cancel context.CancelFunc
}

const deltaToken = "delta-ingress-token"

func (dp *deltaPlane) start(t *testing.T, history int) {
	t.Helper()
	pub, err := ingresspub.New(dp.st, ingresspub.Options{Log: zerolog.Nop(), History: history})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go pub.Run(ctx)
	if _, ok := pub.WaitNewer(testutil.Context(t, 2*time.Minute), 0); !ok {
		t.Fatal("publisher computed no table")
	}
	cfg := config.Defaults()
	cfg.Ingress.Token = deltaToken
	e := echo.New()
	e.HTTPErrorHandler = ErrorHandler(zerolog.Nop())
	registerIngress(e.Group("/api/v1"), &Deps{Config: cfg, Store: dp.st, Log: zerolog.Nop(), Ingress: pub})
	addr := "127.0.0.1:0"
	if dp.cp != nil {
		addr = dp.cp.addr
	}
	dp.cp = &controlPlane{addr: addr, e: e}
	dp.cp.start(t)
	dp.pub, dp.cancel = pub, cancel
}

func (dp *deltaPlane) stop() {
	dp.cp.stop()
	dp.cancel()
}

func (dp *deltaPlane) url() string { return "http://" + dp.cp.addr }

// change runs f on the database and waits until the publisher has a new
// version.
func (dp *deltaPlane) change(t *testing.T, f func()) *ingresspub.Snapshot {
	t.Helper()
	before := dp.pub.Current().Version
	f()
	if err := dp.pub.Recompute(testutil.Context(t, 2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	snap := dp.pub.Current()
	if snap.Version == before {
		t.Fatal("the change did not make a new version")
	}
	return snap
}

// waitConverged waits until the ingress serves the server's current table,
// then checks that it is the same table a whole document gives: the
// configuration it kept (re-encoded) is byte for byte the server's
// document, and its routing table has the hosts and kinds of a table built
// from that document.
func waitConverged(t *testing.T, ing *runningIngress, pub *ingresspub.Publisher) {
	t.Helper()
	snap := pub.Current()
	testutil.WaitFor(t, testutil.Context(t, 2*time.Minute), 10*time.Millisecond, "the ingress to serve version "+fmt.Sprint(snap.Version), func() bool {
		return ing.app.Proxy.Current().Version == snap.ETag
	})
	cfg, etag := ing.app.Proxy.Document()
	if etag != snap.ETag {
		t.Fatalf("ingress state %s, server %s", etag, snap.ETag)
	}
	got, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, snap.Body()) {
		t.Fatalf("ingress configuration differs from the server's document:\n%s\n%s", got, snap.Body())
	}
	whole := proxy.New(proxy.Options{Log: zerolog.Nop()})
	if _, err := whole.Apply(snap.Body(), snap.ETag); err != nil {
		t.Fatal(err)
	}
	a, b := ing.app.Proxy.Current(), whole.Current()
	for _, k := range []dynconfig.Kind{dynconfig.KindBackend, dynconfig.KindOffline, dynconfig.KindDeploying, dynconfig.KindNoServer} {
		if a.Count(k) != b.Count(k) {
			t.Fatalf("%s hosts: ingress %d, whole document %d", k, a.Count(k), b.Count(k))
		}
	}
}

// TestIngressDeltasEndToEnd runs the real publisher on PostgreSQL, the real
// endpoint and a real nullops-ingress: changes travel as deltas of a few
// hundred bytes while the whole document is tens of kilobytes, a gap in the
// server's history and a server restart produce a whole document, an
// ingress restart within the history a delta, and after each the ingress
// serves exactly the table of the whole document.
func TestIngressDeltasEndToEnd(t *testing.T) {
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s", r.Host)
	}))
	defer svc.Close()
	port := svc.Listener.Addr().(*net.TCPAddr).Port

	st := storetest.New(t)
	seed := storetest.NewRouteSeed(t, st)
	env := seed.Environment(t, "qa", "example.test", "", true)
	node := seed.Node(t, env, "n1", "127.0.0.1", "online")
	seed.BulkDeployments(t, env, node, "r", "running", 300, port)
	waiting := seed.BulkDeployments(t, env, node, "w", "deploying", 20, port)
	const history = 4
	dp := &deltaPlane{st: st}
	dp.start(t, history)
	defer func() { dp.stop() }()
	stateDir := t.TempDir()

	ing := startIngress(t, dp.url(), deltaToken, stateDir)
	waitConverged(t, ing, dp.pub)
	if s := ing.app.Watcher.Stats(); s.Full != 1 || s.Delta != 0 {
		t.Fatalf("first table: %+v, want one whole document", s)
	}
	docBytes := len(dp.pub.Current().Body())

	// One deployment becomes running: one delta, a few hundred bytes.
	host := func(i int) string { return fmt.Sprintf("web.w%d.qa.example.test", i+1) }
	dp.change(t, func() { seed.SetDeploymentStatus(t, waiting[0], "running") })
	ing.waitFor(t, host(0), 200, "hello from "+host(0))
	waitConverged(t, ing, dp.pub)
	s := ing.app.Watcher.Stats()
	if s.Full != 1 || s.Delta != 1 || s.LastBytes > 600 {
		t.Fatalf("after one change: %+v (document %d bytes)", s, docBytes)
	}
	one := s.LastBytes
	// Five at once: a delta about five times as large, still far from the
	// document.
	dp.change(t, func() {
		for i := 1; i <= 5; i++ {
			seed.SetDeploymentStatus(t, waiting[i], "running")
		}
	})
	ing.waitFor(t, host(5), 200, "hello from "+host(5))
	waitConverged(t, ing, dp.pub)
	s = ing.app.Watcher.Stats()
	if s.Full != 1 || s.Delta != 2 || s.LastBytes < 3*one || s.LastBytes > 6*one || s.LastBytes*10 > int64(docBytes) {
		t.Fatalf("after five changes: %+v (one change %d bytes, document %d)", s, one, docBytes)
	}
	t.Logf("document %d bytes; delta for one change %d bytes, for five %d", docBytes, one, s.LastBytes)

	// The ingress restarts while two versions pass: within the history it
	// gets one delta covering both.
	ing.stop()
	dp.change(t, func() { seed.SetDeploymentStatus(t, waiting[6], "running") })
	dp.change(t, func() { seed.SetDeploymentStatus(t, waiting[0], "offline") })
	ing = startIngress(t, dp.url(), deltaToken, stateDir)
	ing.waitFor(t, host(0), 503, "offline")
	waitConverged(t, ing, dp.pub)
	if s := ing.app.Watcher.Stats(); s.Full != 0 || s.Delta != 1 {
		t.Fatalf("restart within the history: %+v, want one delta", s)
	}

	// It restarts again while more versions pass than the server keeps:
	// the gap makes it a whole document.
	ing.stop()
	for i := 7; i < 7+history+1; i++ {
		dp.change(t, func() { seed.SetDeploymentStatus(t, waiting[i], "running") })
	}
	ing = startIngress(t, dp.url(), deltaToken, stateDir)
	ing.waitFor(t, host(7+history), 200, "hello from")
	waitConverged(t, ing, dp.pub)
	if s := ing.app.Watcher.Stats(); s.Full != 1 || s.Delta != 0 {
		t.Fatalf("restart after a gap: %+v, want one whole document", s)
	}

	// The server restarts: the same content has the same ETag, so the
	// ingress's table is current (304) without any transfer...
	dp.stop()
	dp.start(t, history)
	req, _ := http.NewRequest(http.MethodGet, dp.url()+"/api/v1/ingress/traefik", nil)
	req.Header.Set("Authorization", "Bearer "+deltaToken)
	req.Header.Set("If-None-Match", ing.app.Proxy.Current().Version)
	req.Header.Set("Accept", dynconfig.MediaTypeDelta)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusNotModified {
		t.Fatalf("same table after a server restart: %d, want 304", res.StatusCode)
	}
	// ...and a change made while it was down arrives as a whole document
	// (the new server has no history of the ingress's table).
	before := ing.app.Watcher.Stats()
	dp.stop()
	seed.SetDeploymentStatus(t, waiting[0], "running")
	dp.start(t, history)
	ing.waitFor(t, host(0), 200, "hello from")
	waitConverged(t, ing, dp.pub)
	if s := ing.app.Watcher.Stats(); s.Full != before.Full+1 || s.Delta != before.Delta {
		t.Fatalf("server restart with a change: %+v (before %+v), want one whole document", s, before)
	}
	// Afterwards, deltas again.
	dp.change(t, func() { seed.SetDeploymentStatus(t, waiting[1], "deploying") })
	ing.waitFor(t, host(1), 503, "still being deployed")
	waitConverged(t, ing, dp.pub)
	if s := ing.app.Watcher.Stats(); s.Delta != before.Delta+1 {
		t.Fatalf("after the server restart: %+v, want a delta", s)
	}
}

// TestIngressTraefikGetsWholeDocuments: a client that does not ask for
// deltas (Traefik) gets the whole document on every change.
func TestIngressTraefikGetsWholeDocuments(t *testing.T) {
	st := storetest.New(t)
	seed := storetest.NewRouteSeed(t, st)
	env := seed.Environment(t, "qa", "example.test", "", true)
	node := seed.Node(t, env, "n1", "127.0.0.1", "online")
	ids := seed.BulkDeployments(t, env, node, "r", "running", 3, 32000)
	dp := &deltaPlane{st: st}
	dp.start(t, 8)
	defer dp.stop()
	old := dp.pub.Current()
	dp.change(t, func() { seed.SetDeploymentStatus(t, ids[0], "offline") })
	for _, accept := range []string{"", "application/json", dynconfig.MediaTypeDelta} {
		for _, query := range []string{"", "?entrypoints=web"} {
			req, _ := http.NewRequest(http.MethodGet, dp.url()+"/api/v1/ingress/traefik"+query, nil)
			req.Header.Set("Authorization", "Bearer "+deltaToken)
			req.Header.Set("If-None-Match", old.ETag)
			if accept != "" {
				req.Header.Set("Accept", accept)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			wantDelta := accept == dynconfig.MediaTypeDelta && query == ""
			if gotDelta := res.Header.Get("Content-Type") == dynconfig.MediaTypeDelta; gotDelta != wantDelta || res.StatusCode != 200 {
				t.Fatalf("Accept %q query %q: %d %s", accept, query, res.StatusCode, res.Header.Get("Content-Type"))
			}
			if wantDelta {
				if _, err := dynconfig.DecodeDelta(body); err != nil {
					t.Fatal(err)
				}
			} else if _, err := dynconfig.Decode(body); err != nil {
				t.Fatal(err)
			}
		}
	}
}
