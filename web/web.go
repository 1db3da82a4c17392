// Package web serves the NullOps browser UI: a single-page app of static
// files (plain ES modules, no build step) embedded into the server binary.
//
// Assets live under /assets/; every other GET that is not an API, health or
// metrics route answers index.html so the client-side router can render
// deep links such as /deployments/42 after a reload.
//
// Caching without a build step: when the server starts, every asset also
// gets a content-hashed name (/assets/js/api.<hash>.js) served as immutable
// for a year. index.html (revalidated on every load) names the hashed
// files, and an import map in it sends every module import to the hashed
// name, so a warm load of a page asks the server for index.html and the
// API only; a new release changes the hashes and nothing stale is used.
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strings"

	"github.com/labstack/echo/v4"
)

//go:embed assets
var assetsFS embed.FS

// ContentSecurityPolicy allows nothing but this origin: no inline scripts or
// styles, no eval, no third-party hosts, no framing.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// reservedPrefixes never fall back to index.html: a miss there is a real 404
// rendered by the server's JSON error handler.
var reservedPrefixes = []string{"/api/", "/assets/", "/healthz", "/readyz", "/metrics"}

// asset is one embedded file with its precomputed validator.
type asset struct {
	body        []byte
	etag        string
	contentType string
	immutable   bool   // served under its content-hashed name
	csp         string // Content-Security-Policy of this file
}

// Handler serves the embedded UI.
type Handler struct {
	files map[string]*asset // keyed by URL path, e.g. "/assets/js/main.js" and "/assets/js/main.1a2b3c4d5e.js"
	index *asset
}

// New loads every embedded file and computes its ETag once.
func New() (*Handler, error) {
	return newFromFS(assetsFS)
}

func newFromFS(fsys fs.FS) (*Handler, error) {
	h := &Handler{files: map[string]*asset{}}
	err := fs.WalkDir(fsys, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		h.files["/"+p] = newAsset(b, contentType(p), ContentSecurityPolicy)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load web assets: %w", err)
	}
	tmpl := h.files["/assets/index.html"]
	if tmpl == nil {
		return nil, fmt.Errorf("load web assets: assets/index.html is missing")
	}
	hashed := map[string]string{} // plain URL path -> hashed one
	for p, a := range h.files {
		if p == "/assets/index.html" {
			continue
		}
		hp := hashedPath(p, a.body)
		hashed[p] = hp
		h.files[hp] = &asset{body: a.body, etag: a.etag, contentType: a.contentType, immutable: true, csp: a.csp}
	}
	h.index, err = renderIndex(tmpl.body, hashed)
	if err != nil {
		return nil, fmt.Errorf("load web assets: %w", err)
	}
	return h, nil
}

func newAsset(body []byte, contentType, csp string) *asset {
	sum := sha256.Sum256(body)
	return &asset{body: body, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, contentType: contentType, csp: csp}
}

// hashedPath is p with the first 10 hex digits of its content's SHA-256
// before the extension: /assets/js/api.js -> /assets/js/api.1a2b3c4d5e.js.
func hashedPath(p string, body []byte) string {
	sum := sha256.Sum256(body)
	ext := path.Ext(p)
	return strings.TrimSuffix(p, ext) + "." + hex.EncodeToString(sum[:5]) + ext
}

// assetRef matches a quoted asset path in index.html.
var assetRef = regexp.MustCompile(`"(/assets/[^"]+)"`)

// renderIndex makes the index.html that is served: every asset it names
// replaced by its hashed name, and an import map sending each module's
// plain path to its hashed one. The import map is an inline script, so the
// page's Content-Security-Policy allows exactly it by its SHA-256.
func renderIndex(tmpl []byte, hashed map[string]string) (*asset, error) {
	var missing []string
	body := assetRef.ReplaceAllStringFunc(string(tmpl), func(m string) string {
		p := strings.Trim(m, `"`)
		if hp, ok := hashed[p]; ok {
			return `"` + hp + `"`
		}
		missing = append(missing, p)
		return m
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("index.html names assets that do not exist: %s", strings.Join(missing, ", "))
	}
	imports := map[string]string{}
	for p, hp := range hashed {
		if strings.HasSuffix(p, ".js") {
			imports[p] = hp
		}
	}
	m, err := json.Marshal(map[string]any{"imports": imports})
	if err != nil {
		return nil, err
	}
	const marker = "<!-- importmap -->"
	if !strings.Contains(body, marker) {
		return nil, fmt.Errorf("index.html lacks the %s marker", marker)
	}
	body = strings.Replace(body, marker, `<script type="importmap">`+string(m)+`</script>`, 1)
	sum := sha256.Sum256(m)
	csp := strings.Replace(ContentSecurityPolicy, "script-src 'self'",
		"script-src 'self' 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'", 1)
	return newAsset([]byte(body), contentType("index.html"), csp), nil
}

// contentType names the type of each kind of file the UI ships; browsers
// refuse ES modules served with anything but a JavaScript type.
func contentType(p string) string {
	switch path.Ext(p) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case ".ico":
		return "image/x-icon"
	case ".json":
		return "application/json"
	case ".txt":
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}

// Register mounts the UI on e as the catch-all GET/HEAD route. More specific
// routes (the API, /healthz, /readyz, /metrics) keep precedence in echo's
// router whatever the registration order.
func Register(e *echo.Echo) error {
	h, err := New()
	if err != nil {
		return err
	}
	e.Match([]string{http.MethodGet, http.MethodHead}, "/*", h.Serve)
	return nil
}

// Serve answers one request: an asset, index.html for a client route, or a
// 404 error for unknown assets and API paths.
func (h *Handler) Serve(c echo.Context) error {
	p := c.Request().URL.Path
	if p == "/" || p == "/index.html" {
		return h.write(c, h.index)
	}
	if a, ok := h.files[p]; ok && p != "/assets/index.html" {
		return h.write(c, a)
	}
	for _, pre := range reservedPrefixes {
		if strings.HasPrefix(p, pre) || p+"/" == pre {
			return echo.ErrNotFound
		}
	}
	// A path with a file extension is a missing file, not a client route.
	if path.Ext(p) != "" {
		return echo.ErrNotFound
	}
	return h.write(c, h.index)
}

func (h *Handler) write(c echo.Context, a *asset) error {
	hd := c.Response().Header()
	hd.Set("Content-Security-Policy", a.csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")
	if a.immutable {
		// The name changes with the content: keep it for good.
		hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		// index.html and the plain names: revalidate every time (a cheap
		// 304 when unchanged).
		hd.Set("Cache-Control", "no-cache")
	}
	hd.Set("ETag", a.etag)
	if etagMatches(c.Request().Header.Get("If-None-Match"), a.etag) {
		return c.NoContent(http.StatusNotModified)
	}
	hd.Set("Content-Type", a.contentType)
	if c.Request().Method == http.MethodHead {
		hd.Set("Content-Length", fmt.Sprint(len(a.body)))
		return c.NoContent(http.StatusOK)
	}
	return c.Blob(http.StatusOK, a.contentType, a.body)
}

// etagMatches implements the weak comparison of If-None-Match.
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}
