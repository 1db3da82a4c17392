package api

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/internal/safetext"
	"github.com/nullops/nullops/server/errs"
)

// Edge guards every API request before its handler runs:
//   - a query parameter or path that cannot be stored as text (invalid
//     UTF-8, NUL) answers 400 naming the parameter;
//   - a body declared larger than MaxBodyBytes answers 413 at once, and
//     reading more than MaxBodyBytes of any body fails (413 from Bind).
//
// The server's read timeout (config http.readtimeout) bounds reading the
// request only: net/http lifts the connection's read deadline once the
// body has been read, so long answers (event streams, followed logs, long
// polls) are not cut off.
func Edge() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if !strings.HasPrefix(req.URL.Path, APIPrefix+"/") {
				return next(c)
			}
			if err := safetext.Storable(req.URL.Path); err != nil {
				return &errs.Error{Kind: errs.Invalid, Code: "invalid", Message: "path: " + err.Error(),
					Fields: map[string]string{"path": err.Error()}}
			}
			if err := checkQuery(req); err != nil {
				return err
			}
			if req.ContentLength > MaxBodyBytes {
				return &errs.Error{Kind: errs.TooLarge, Code: "too_large", Message: ErrBodyTooLarge.Error()}
			}
			if req.Body != nil && req.Body != http.NoBody {
				req.Body = http.MaxBytesReader(c.Response(), req.Body, MaxBodyBytes)
			}
			return next(c)
		}
	}
}

func checkQuery(req *http.Request) error {
	q, err := url.ParseQuery(req.URL.RawQuery)
	if err != nil {
		return &errs.Error{Kind: errs.Invalid, Code: "invalid", Message: "query: " + err.Error(),
			Fields: map[string]string{"query": err.Error()}}
	}
	for k, vs := range q {
		if err := safetext.Storable(k); err != nil {
			return &errs.Error{Kind: errs.Invalid, Code: "invalid", Message: "query parameter name " + err.Error(),
				Fields: map[string]string{"query": "parameter name " + err.Error()}}
		}
		for _, v := range vs {
			if err := safetext.Storable(v); err != nil {
				return (errs.Fields{k: err.Error()}).Err()
			}
		}
	}
	return nil
}
