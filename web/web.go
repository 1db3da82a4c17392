// Package web serves the NullOps browser UI: a single-page app of static
// files (plain ES modules, no build step) embedded into the server binary.
//
// Assets live under /assets/; every other GET that is not an API, health or
// metrics route answers index.html so the client-side router can render
// deep links such as /deployments/42 after a reload.
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
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
}

// Handler serves the embedded UI.
type Handler struct {
	files map[string]*asset // keyed by URL path, e.g. "/assets/js/main.js"
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
		sum := sha256.Sum256(b)
		h.files["/"+p] = &asset{
			body:        b,
			etag:        `"` + hex.EncodeToString(sum[:12]) + `"`,
			contentType: contentType(p),
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load web assets: %w", err)
	}
	h.index = h.files["/assets/index.html"]
	if h.index == nil {
		return nil, fmt.Errorf("load web assets: assets/index.html is missing")
	}
	return h, nil
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
	hd.Set("Content-Security-Policy", ContentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")
	// File names carry no content hash (there is no build step), so the
	// browser revalidates every time and gets a cheap 304 when unchanged.
	hd.Set("Cache-Control", "no-cache")
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
