package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/rs/zerolog"
)

var httpDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
	Name:    "nullops_http_request_duration_seconds",
	Help:    "Duration of HTTP requests by route and status.",
	Buckets: prometheus.DefBuckets,
}, []string{"method", "route", "status"})

// methodLabel is the method as a metrics label: the standard methods as
// they are, anything a caller invents as "OTHER".
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// routeLabel is the matched route pattern as a metrics label (a fixed set:
// the patterns registered on echo); requests that matched no route,
// including the API group's not-found catch-all, are "unmatched".
func routeLabel(path string) string {
	switch path {
	case "", APIPrefix, APIPrefix + "/*":
		return "unmatched"
	}
	return path
}

// RequestLog logs one structured line per request and records its duration.
// Query strings are not logged (they may carry tokens).
func RequestLog(log zerolog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			status := c.Response().Status
			route := routeLabel(c.Path())
			d := time.Since(start)
			httpDuration.WithLabelValues(methodLabel(c.Request().Method), route, strconv.Itoa(status)).Observe(d.Seconds())
			ev := log.Info()
			if status >= 500 {
				ev = log.Error()
			}
			ev.Str("method", c.Request().Method).
				Str("path", c.Request().URL.Path).
				Str("route", route).
				Int("status", status).
				Dur("duration", d).
				Str("remote", c.RealIP()).
				Int64("bytes_out", c.Response().Size).
				Msg("http request")
			return nil
		}
	}
}

// NoStore marks every API response `Cache-Control: no-store`: they carry
// tokens (token and node-token creation), secret metadata, CSRF tokens and
// private data, none of which a browser or proxy may keep. Handlers that
// set their own Cache-Control (event streams) keep it.
func NoStore() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if strings.HasPrefix(c.Request().URL.Path, APIPrefix+"/") {
				c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
			}
			return next(c)
		}
	}
}
