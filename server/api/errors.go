// Package api holds the HTTP layer of nullops-server: thin echo handlers that
// validate input, call the domain packages and render JSON. Every error
// leaves through ErrorHandler as {"error":{"code","message","details"}}
// (restapi.ErrorBody), translated by ToHTTP.
package api

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/errs"
	"github.com/nullops/nullops/server/store"
)

// Errors the HTTP layer itself raises.
var (
	ErrUnauthenticated = errs.New(errs.Unauthenticated, "", "log in or send an API token as Authorization: Bearer")
	ErrForbidden       = errs.New(errs.Forbidden, "", "this action needs the admin role")
	// ErrNotFound is the answer for what does not exist and for what the
	// caller may not see: the same bytes, so the two cannot be told apart.
	ErrNotFound = store.ErrNotFound
	// ErrNotReady is the answer while the database cannot be reached.
	ErrNotReady = errs.New(errs.Unavailable, "not_ready", "the database is not reachable; try again shortly")
)

// statusOf is the HTTP status of each kind of error.
var statusOf = map[errs.Kind]int{
	errs.Internal:        http.StatusInternalServerError,
	errs.Invalid:         http.StatusBadRequest,
	errs.Unauthenticated: http.StatusUnauthorized,
	errs.Forbidden:       http.StatusForbidden,
	errs.NotFound:        http.StatusNotFound,
	errs.Timeout:         http.StatusRequestTimeout,
	errs.Conflict:        http.StatusConflict,
	errs.TooLarge:        http.StatusRequestEntityTooLarge,
	errs.Unsupported:     http.StatusUnsupportedMediaType,
	errs.Throttled:       http.StatusTooManyRequests,
	errs.Upstream:        http.StatusBadGateway,
	errs.Unavailable:     http.StatusServiceUnavailable,
}

// StatusClientClosedRequest is the status recorded (access log, metrics)
// for a request whose client went away before the answer was ready, as
// nginx records it. Nobody receives it: the connection is gone.
const StatusClientClosedRequest = 499

// clientGone reports whether err ended a request because its client went
// away (closed the connection or cancelled the request) rather than
// because the server failed: the request's context is cancelled and the
// error is that cancellation or a failure it caused (a store call cut
// short reads as a 5xx).
func clientGone(c echo.Context, err error, status int) bool {
	if !errors.Is(c.Request().Context().Err(), context.Canceled) {
		return false
	}
	return errors.Is(err, context.Canceled) || status >= 500
}

// ErrorHandler renders every error in the one JSON shape and logs 5xx.
// A request whose client went away is not a server error: it is recorded
// as 499 and logged at debug level only.
func ErrorHandler(log zerolog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		status, body, retry := ToHTTP(err)
		if clientGone(c, err, status) {
			log.Debug().Err(err).Str("method", c.Request().Method).Str("path", c.Path()).Msg("client went away before the answer")
			_ = c.NoContent(StatusClientClosedRequest)
			return
		}
		if status >= 500 {
			log.Error().Err(err).Str("method", c.Request().Method).Str("path", c.Path()).Msg("request failed")
		}
		if retry > 0 {
			c.Response().Header().Set("Retry-After", strconv.Itoa(retry))
		}
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(status)
			return
		}
		_ = c.JSON(status, restapi.ErrorBody{Error: body})
	}
}

// ToHTTP is the one translation of an error to HTTP: its status, the error
// body and the Retry-After seconds (0: none). Kinded errors (package errs)
// keep their code and message; echo's own errors (routing, body limits)
// keep their status; an unreachable database is not_ready; anything else
// is a 500 that says nothing.
func ToHTTP(err error) (status int, body *restapi.Error, retryAfter int) {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		msg := http.StatusText(he.Code)
		if s, ok := he.Message.(string); ok && s != "" {
			msg = s
		}
		code, ok := echoCodes[he.Code]
		if !ok {
			code = "http_error"
		}
		return he.Code, &restapi.Error{Status: he.Code, Code: code, Message: msg}, 0
	}
	e, ok := errs.As(err)
	switch {
	case ok:
	case store.IsUnavailable(err):
		e = ErrNotReady
	default:
		e = errs.New(errs.Internal, "", "internal error; see the server log")
	}
	status = statusOf[e.Kind]
	body = &restapi.Error{Status: status, Code: e.Code, Message: e.Message}
	if e.Chain {
		body.Message = err.Error()
	}
	if body.Code == "" {
		body.Code = e.Kind.String()
	}
	if len(e.Fields) > 0 {
		body.Details = e.Fields
	}
	if e.RetryAfter > 0 {
		retryAfter = max(int(math.Ceil(e.RetryAfter.Seconds())), 1)
		body.Details = map[string]string{"retry_after_seconds": strconv.Itoa(retryAfter)}
	} else if e.Kind == errs.Unavailable {
		retryAfter = 5
	}
	return status, body, retryAfter
}

// echoCodes names the statuses of echo's own errors.
var echoCodes = map[int]string{
	http.StatusNotFound: "not_found", http.StatusMethodNotAllowed: "method_not_allowed",
	http.StatusBadRequest: "invalid", http.StatusRequestEntityTooLarge: "too_large",
	http.StatusUnauthorized: "unauthenticated", http.StatusForbidden: "forbidden",
}

// Bind decodes a JSON body strictly (unknown fields are errors) into v.
func Bind(c echo.Context, v any) error {
	if err := DecodeJSON(c.Request().Body, v); err != nil {
		return bodyError(err)
	}
	return nil
}

// bodyError translates a body that could not be decoded: 413 too_large
// when over the limit, 400 invalid naming the field for text that cannot be
// stored, 400 invalid_json otherwise.
func bodyError(err error) error {
	var te *TextError
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return errs.New(errs.Timeout, "request_timeout", "the request body was not received in time")
	case errors.Is(err, ErrBodyTooLarge):
		return errs.New(errs.TooLarge, "", "%s", err.Error())
	case errors.As(err, &te) && te.Field != "":
		return errs.Field(te.Field, "%s", te.Err.Error())
	}
	return errs.New(errs.Invalid, "invalid_json", "%s", err.Error())
}
