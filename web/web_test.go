package web

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
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

// TestHashedNamesAreImmutableAndIndexUsesThem: index.html names every asset
// by its content-hashed name, whose answer may be cached for good; its
// import map sends every module to its hashed name, and the page's CSP
// allows exactly that inline import map.
func TestHashedNamesAreImmutableAndIndexUsesThem(t *testing.T) {
	srv := newServer(t)
	res, index := get(t, srv.URL+"/", nil)
	if cc := res.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("index.html: Cache-Control %q, want no-cache", cc)
	}
	refs := regexp.MustCompile(`"(/assets/[^"]+)"`).FindAllStringSubmatch(index, -1)
	if len(refs) < 20 {
		t.Fatalf("index.html names %d assets; want the page's files and an import map of every module", len(refs))
	}
	hashed := regexp.MustCompile(`\.[0-9a-f]{10}\.[a-z]+$`)
	for _, m := range refs {
		p := m[1]
		r, body := get(t, srv.URL+p, nil)
		isKey := strings.Contains(index, `"`+p+`":`) // a plain name on the left of the import map
		switch {
		case isKey:
			continue
		case !hashed.MatchString(p):
			t.Errorf("index.html names %s without a content hash", p)
		case r.StatusCode != http.StatusOK || r.Header.Get("Cache-Control") != "public, max-age=31536000, immutable":
			t.Errorf("%s: %d, Cache-Control %q", p, r.StatusCode, r.Header.Get("Cache-Control"))
		case len(body) == 0:
			t.Errorf("%s: empty", p)
		}
	}
	start := strings.Index(index, `<script type="importmap">`)
	end := strings.Index(index[start:], "</script>")
	if start < 0 || end < 0 {
		t.Fatal("index.html has no import map")
	}
	m := index[start+len(`<script type="importmap">`) : start+end]
	sum := sha256.Sum256([]byte(m))
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") {
		t.Errorf("CSP %q does not allow the import map by its hash", csp)
	}
	var im struct{ Imports map[string]string }
	if err := json.Unmarshal([]byte(m), &im); err != nil || im.Imports["/assets/js/api.js"] == "" {
		t.Errorf("import map %s: %v", m, err)
	}
}
