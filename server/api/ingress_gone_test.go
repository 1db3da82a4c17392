package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	ingressconfig "github.com/nullops/nullops/ingress/config"
	"github.com/nullops/nullops/ingress/dynconfig"
	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/server/config"
	"github.com/nullops/nullops/server/ingresspub"
	"github.com/nullops/nullops/server/store/storetest"
)

// TestIngressGoneHostsEndToEnd runs the publisher on PostgreSQL, the real
// ingress endpoints and a real nullops-ingress with a UI URL: a deploying
// host links to its deployment in the UI; once the deployment is removed
// (history entry as the deployment code writes it) the ingress answers 410
// saying when, by whom and why, and links to the deployment; a removal
// older than ingress.goneretention is an unknown host again (404, linking
// to the deployments list); a host a live deployment uses again is routed.
func TestIngressGoneHostsEndToEnd(t *testing.T) {
	const token = "gone-ingress-token"
	const ui = "https://nullops.example.test"
	ctx := testutil.Context(t, 2*time.Minute)

	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s", r.Host)
	}))
	defer svc.Close()
	svcPort := svc.Listener.Addr().(*net.TCPAddr).Port

	st := storetest.New(t)
	seed := storetest.NewRouteSeed(t, st)
	env := seed.Environment(t, "qa", "example.test", "", true)
	node := seed.Node(t, env, "n1", "127.0.0.1", "online")
	expired := seed.Deployment(t, env, node, "pr-1", "deploying", time.Hour)
	seed.Service(t, expired, "web", svcPort, true)
	deleted := seed.Deployment(t, env, node, "pr-2", "running", time.Hour)
	seed.Service(t, deleted, "web", svcPort, true)
	old := seed.Deployment(t, env, node, "pr-3", "running", time.Hour)
	seed.Service(t, old, "web", svcPort, true)
	seed.Removed(t, old, "deleted", "deleted", "carol", time.Now().Add(-3*time.Hour))

	pub, err := ingresspub.New(st, ingresspub.Options{Log: zerolog.Nop(), GoneRetention: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	pubCtx, stopPub := context.WithCancel(ctx)
	defer stopPub()
	go pub.Run(pubCtx)
	cfg := config.Defaults()
	cfg.Ingress.Token = token
	e := echo.New()
	e.HTTPErrorHandler = ErrorHandler(zerolog.Nop())
	registerIngress(e.Group("/api/v1"), &Deps{Config: cfg, Store: st, Log: zerolog.Nop(), Ingress: pub})
	cp := &controlPlane{addr: "127.0.0.1:0", e: e}
	cp.start(t)
	defer cp.stop()
	stateDir := t.TempDir()
	withUI := func(c *ingressconfig.Config) { c.UI.URL = ui + "/" }
	ing := startIngressWith(t, "http://"+cp.addr, token, stateDir, withUI)

	// Deploying: the page reloads itself and links to the deployment.
	ing.waitFor(t, "web.pr-1.qa.example.test", 503, "still being deployed")
	_, body := ing.get("web.pr-1.qa.example.test")
	for _, want := range []string{`<meta http-equiv="refresh" content="5">`, fmt.Sprintf(`href="%s/deployments/%d"`, ui, expired)} {
		if !strings.Contains(body, want) {
			t.Errorf("deploying page lacks %s:\n%s", want, body)
		}
	}
	ing.waitFor(t, "web.pr-2.qa.example.test", 200, "hello from web.pr-2")
	// Removed longer ago than the retention: unknown, linking to the list.
	ing.waitFor(t, "web.pr-3.qa.example.test", 404, `href="`+ui+`/deployments"`)

	// pr-1 expires while deploying, alice deletes pr-2.
	removedAt := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	seed.Removed(t, expired, "deleting", "expired", "system", removedAt)
	seed.Removed(t, deleted, "deleted", "deleted", "alice", removedAt)
	pub.Changed()
	ing.waitFor(t, "web.pr-1.qa.example.test", 410, "Deployment expired")
	ing.waitFor(t, "web.pr-2.qa.example.test", 410, "Deployment deleted")
	_, body = ing.get("web.pr-2.qa.example.test")
	for _, want := range []string{"by alice", removedAt.Format(time.RFC1123), fmt.Sprintf(`href="%s/deployments/%d"`, ui, deleted)} {
		if !strings.Contains(body, want) {
			t.Errorf("deleted page lacks %q:\n%s", want, body)
		}
	}
	if _, body = ing.get("web.pr-1.qa.example.test"); !strings.Contains(body, "automatic cleanup") {
		t.Errorf("expired page does not say why:\n%s", body)
	}
	if code, _ := ing.get("web.pr-3.qa.example.test"); code != 404 {
		t.Errorf("host removed beyond the retention: %d, want 404", code)
	}

	// The endpoint itself: the same list with an ETag, 304 when unchanged.
	req, _ := http.NewRequest(http.MethodGet, "http://"+cp.addr+"/api/v1/ingress/gone", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var doc dynconfig.GoneDocument
	err = json.NewDecoder(res.Body).Decode(&doc)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 || len(doc.Hosts) != 2 {
		t.Fatalf("GET /ingress/gone: %d %+v %v", res.StatusCode, doc, err)
	}
	req.Header.Set("If-None-Match", res.Header.Get("ETag"))
	if res2, err := http.DefaultClient.Do(req); err != nil || res2.StatusCode != http.StatusNotModified {
		t.Fatalf("GET /ingress/gone with its ETag: %v %v", res2, err)
	} else {
		res2.Body.Close()
	}

	// The ingress restarts while the server is away: it still knows.
	cp.stop()
	ing.stop()
	ing = startIngressWith(t, "http://"+cp.addr, token, stateDir, withUI)
	if code, body := ing.get("web.pr-1.qa.example.test"); code != 410 || !strings.Contains(body, "Deployment expired") {
		t.Fatalf("restarted ingress without server: %d %s", code, body)
	}
	cp.start(t)

	// pr-2 is created again under the same name: routed, not "deleted".
	again := seed.Deployment(t, env, node, "pr-2", "running", time.Hour)
	seed.Service(t, again, "web", svcPort, true)
	pub.Changed()
	ing.waitFor(t, "web.pr-2.qa.example.test", 200, "hello from web.pr-2")
	gone, _, err := pub.Gone(ctx)
	if err != nil || strings.Contains(string(gone), "web.pr-2") {
		t.Errorf("gone list still has the host a live deployment uses: %s %v", gone, err)
	}
}
