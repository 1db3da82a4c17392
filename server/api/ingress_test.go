package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	"github.com/nullops/nullops/ingress/dynconfig"
	"github.com/nullops/nullops/server/config"
	"github.com/nullops/nullops/server/ingresspub"
	"github.com/nullops/nullops/server/store/storetest"
)

type ingressFixture struct {
	srv     *httptest.Server
	pub     *ingresspub.Publisher
	seed    *storetest.RouteSeed
	node    int64
	running int64
	pending int64
}

func newIngressFixture(t *testing.T, token string) *ingressFixture {
	t.Helper()
	st := storetest.New(t)
	f := &ingressFixture{seed: storetest.NewRouteSeed(t, st)}
	env := f.seed.Environment(t, "qa", "example.test", "", true)
	f.node = f.seed.Node(t, env, "n1", "127.0.0.1", "online")
	f.running = f.seed.Deployment(t, env, f.node, "pr-1", "running", time.Hour)
	f.seed.Service(t, f.running, "web", 31000, true)
	f.pending = f.seed.Deployment(t, env, f.node, "pr-2", "deploying", time.Hour)
	f.seed.Service(t, f.pending, "web", 31001, true)

	pub, err := ingresspub.New(st, ingresspub.Options{Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	f.pub = pub
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { pub.Run(ctx); close(done) }()
	cfg := config.Defaults()
	cfg.Ingress.Token = token
	e := echo.New()
	e.HTTPErrorHandler = ErrorHandler(zerolog.Nop())
	registerIngress(e.Group("/api/v1"), &Deps{Config: cfg, Store: st, Log: zerolog.Nop(), Ingress: pub})
	f.srv = httptest.NewServer(e)
	t.Cleanup(func() { f.srv.Close(); cancel(); <-done })
	return f
}

func (f *ingressFixture) get(t *testing.T, path, token, inm string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if inm != "" {
		req.Header.Set("If-None-Match", inm)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, body
}

func TestIngressTraefikEndpoint(t *testing.T) {
	const token = "ingress-secret-token"
	f := newIngressFixture(t, token)

	if res, body := f.get(t, "/api/v1/ingress/traefik", "", ""); res.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "unauthenticated") {
		t.Fatalf("without token: %d %s", res.StatusCode, body)
	}
	if res, _ := f.get(t, "/api/v1/ingress/traefik", "wrong", ""); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", res.StatusCode)
	}
	res, body := f.get(t, "/api/v1/ingress/traefik", token, "")
	if res.StatusCode != http.StatusOK || res.Header.Get("ETag") == "" || res.Header.Get("X-Nullops-Config-Version") != "1" {
		t.Fatalf("GET: %d %v %s", res.StatusCode, res.Header, body)
	}
	cfg, err := dynconfig.Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.HTTP.Routers[dynconfig.RouterName(f.running, "web")]; r == nil || r.Rule != "Host(`web.pr-1.qa.example.test`)" {
		t.Fatalf("routers: %s", body)
	}
	etag := res.Header.Get("ETag")

	// Conditional GET without wait: 304 at once.
	if res, _ := f.get(t, "/api/v1/ingress/traefik", token, etag); res.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d", res.StatusCode)
	}
	// Long-poll times out with 304 when nothing changes.
	start := time.Now()
	if res, _ := f.get(t, "/api/v1/ingress/traefik?wait=300ms", token, etag); res.StatusCode != http.StatusNotModified || time.Since(start) < 250*time.Millisecond {
		t.Fatalf("long-poll without change: %d after %v", res.StatusCode, time.Since(start))
	}
	// Long-poll returns as soon as a deployment becomes running.
	go func() {
		time.Sleep(300 * time.Millisecond)
		f.seed.SetDeploymentStatus(t, f.pending, "running")
		f.pub.Changed()
	}()
	start = time.Now()
	res, body = f.get(t, "/api/v1/ingress/traefik?wait=60s", token, etag)
	took := time.Since(start)
	if res.StatusCode != http.StatusOK || res.Header.Get("ETag") == etag || res.Header.Get("X-Nullops-Config-Version") != "2" {
		t.Fatalf("long-poll after change: %d %v", res.StatusCode, res.Header)
	}
	if took > 45*time.Second { // before the wait ends: the change answered it (slow only on a saturated machine)
		t.Fatalf("long-poll answered after %v", took)
	}
	if !strings.Contains(string(body), `"url":"http://127.0.0.1:31001"`) {
		t.Fatalf("new version lacks pr-2: %s", body)
	}

	// A Traefik-specific variant.
	res, body = f.get(t, "/api/v1/ingress/traefik?entrypoints=websecure&tls=true&certresolver=le", token, "")
	if res.StatusCode != http.StatusOK || res.Header.Get("ETag") == etag {
		t.Fatalf("variant: %d", res.StatusCode)
	}
	cfg, err = dynconfig.Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.HTTP.Routers[dynconfig.RouterName(f.running, "web")]
	if len(r.EntryPoints) != 1 || r.EntryPoints[0] != "websecure" || r.TLS == nil || r.TLS.CertResolver != "le" {
		t.Fatalf("variant router: %+v", r)
	}
	if res, body := f.get(t, "/api/v1/ingress/traefik?wait=soon", token, ""); res.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "wait") {
		t.Fatalf("bad wait: %d %s", res.StatusCode, body)
	}
}

func TestIngressTokenNotConfigured(t *testing.T) {
	f := newIngressFixture(t, "")
	res, body := f.get(t, "/api/v1/ingress/traefik", "anything", "")
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "ingress.token") {
		t.Fatalf("no token configured: %d %s", res.StatusCode, body)
	}
}

func TestIngressActivityEndpoint(t *testing.T) {
	const token = "ingress-secret-token"
	f := newIngressFixture(t, token)
	post := func(body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/api/v1/ingress/activity", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := post(`{"deployments":[{"id":0,"last_request_at":"2020-01-01T00:00:00Z"}]}`); code != http.StatusBadRequest || !strings.Contains(body, "deployments[0].id") {
		t.Fatalf("bad id: %d %s", code, body)
	}
	if code, body := post(`{"deployments":[{"id":1}], "extra":1}`); code != http.StatusBadRequest {
		t.Fatalf("unknown field: %d %s", code, body)
	}
	at := time.Now().Add(-time.Second).UTC().Truncate(time.Microsecond)
	payload, _ := json.Marshal(map[string]any{"deployments": []map[string]any{{"id": f.running, "last_request_at": at}}})
	code, body := post(string(payload))
	if code != http.StatusOK || !strings.Contains(body, `"updated":1`) {
		t.Fatalf("report: %d %s", code, body)
	}
	last, exp := f.seed.Activity(t, f.running)
	if !last.Equal(at) || !exp.Equal(at.Add(time.Hour)) {
		t.Fatalf("deployment activity: last %v exp %v, want %v", last, exp, at)
	}
}
