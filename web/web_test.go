package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// newServer mounts the UI next to a fake API route, the way server/app does.
func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	e := echo.New()
	e.GET("/api/v1/me", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"username": "x"}) })
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	if err := Register(e); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestServesAssetsWithTypesAndSecurityHeaders(t *testing.T) {
	srv := newServer(t)
	cases := map[string]string{
		"/":                           "text/html; charset=utf-8",
		"/assets/js/main.js":          "text/javascript; charset=utf-8",
		"/assets/styles.css":          "text/css; charset=utf-8",
		"/assets/favicon.svg":         "image/svg+xml",
		"/assets/js/editor/editor.js": "text/javascript; charset=utf-8",
	}
	for path, want := range cases {
		res, body := get(t, srv.URL+path, nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", path, res.StatusCode)
		}
		if got := res.Header.Get("Content-Type"); got != want {
			t.Errorf("%s: Content-Type %q, want %q", path, got, want)
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("ETag") == "" {
			t.Errorf("%s: missing nosniff or ETag: %v", path, res.Header)
		}
		if body == "" {
			t.Errorf("%s: empty body", path)
		}
	}
}

func TestETagRevalidation(t *testing.T) {
	srv := newServer(t)
	res, _ := get(t, srv.URL+"/assets/js/api.js", nil)
	etag := res.Header.Get("ETag")
	res2, body := get(t, srv.URL+"/assets/js/api.js", map[string]string{"If-None-Match": etag})
	if res2.StatusCode != http.StatusNotModified || body != "" {
		t.Fatalf("revalidation: status %d, body %d bytes", res2.StatusCode, len(body))
	}
	res3, _ := get(t, srv.URL+"/assets/js/api.js", map[string]string{"If-None-Match": `"stale"`})
	if res3.StatusCode != http.StatusOK {
		t.Fatalf("stale etag: status %d", res3.StatusCode)
	}
}

func TestClientRoutesFallBackToIndexButAPIAndAssetsDoNot(t *testing.T) {
	srv := newServer(t)
	_, index := get(t, srv.URL+"/", nil)
	for _, p := range []string{"/deployments", "/deployments/42", "/admin/projects/3/pipeline"} {
		res, body := get(t, srv.URL+p, nil)
		if res.StatusCode != http.StatusOK || body != index {
			t.Errorf("%s: status %d, index served: %v", p, res.StatusCode, body == index)
		}
	}
	for _, p := range []string{"/api/v1/nosuch", "/api/v1/me/x", "/assets/nosuch.js", "/favicon.ico", "/assets/index.html"} {
		res, body := get(t, srv.URL+p, nil)
		if res.StatusCode != http.StatusNotFound || strings.Contains(body, "<html") {
			t.Errorf("%s: status %d, body %.60q", p, res.StatusCode, body)
		}
	}
	// More specific routes win over the catch-all.
	if res, body := get(t, srv.URL+"/api/v1/me", nil); res.StatusCode != 200 || !strings.Contains(body, "username") {
		t.Errorf("/api/v1/me shadowed: %d %s", res.StatusCode, body)
	}
	if res, body := get(t, srv.URL+"/healthz", nil); res.StatusCode != 200 || body != "ok" {
		t.Errorf("/healthz shadowed: %d %s", res.StatusCode, body)
	}
}

// TestNoInlineScriptOrStyle keeps index.html compatible with the CSP.
func TestNoInlineScriptOrStyle(t *testing.T) {
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	idx := string(h.index.body)
	if strings.Contains(idx, "<script>") || strings.Contains(idx, "style=") || strings.Contains(idx, "<style") || strings.Contains(idx, "onclick=") {
		t.Fatal("index.html has inline script or style, which the CSP blocks")
	}
	for p, a := range h.files {
		if strings.HasSuffix(p, ".js") && (strings.Contains(string(a.body), "innerHTML") || strings.Contains(string(a.body), "eval(")) {
			t.Errorf("%s uses innerHTML or eval", p)
		}
	}
}
