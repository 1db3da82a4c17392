// Package api holds the HTTP layer of nullops-server: thin echo handlers that
// validate input, call the domain packages and render JSON. Every error
// leaves through ErrorHandler as {"error":{"code","message","details"}}.
package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	"github.com/nullops/nullops/server/store"
)

// Error is an API error with a machine code, a human message and optional
// per-field details.
type Error struct {
	Status  int               `json:"-"`
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Details map[string]string `json:"details,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// Errorf builds an Error.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Common errors.
var (
	ErrUnauthenticated = &Error{Status: http.StatusUnauthorized, Code: "unauthenticated", Message: "log in or send an API token as Authorization: Bearer"}
	ErrForbidden       = &Error{Status: http.StatusForbidden, Code: "forbidden", Message: "this action needs the admin role"}
	ErrNotFound        = &Error{Status: http.StatusNotFound, Code: "not_found", Message: "not found"}
	// ErrNotReady is the answer while the database cannot be reached.
	ErrNotReady = &Error{Status: http.StatusServiceUnavailable, Code: "not_ready", Message: "the database is not reachable; try again shortly"}
)

// Validation collects field errors; Err returns nil when there are none.
type Validation map[string]string

// Add records a problem with field.
func (v Validation) Add(field, format string, args ...any) {
	if _, ok := v[field]; !ok {
		v[field] = fmt.Sprintf(format, args...)
	}
}

// Err returns a 400 naming every bad field, or nil.
func (v Validation) Err() error {
	if len(v) == 0 {
		return nil
	}
	msg := "invalid request"
	if len(v) == 1 {
		for f, m := range v {
			msg = f + ": " + m
		}
	} else {
		msg = fmt.Sprintf("invalid request: %d fields have problems", len(v))
	}
	return &Error{Status: http.StatusBadRequest, Code: "invalid", Message: msg, Details: v}
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
func clientGone(c echo.Context, err error, apiErr *Error) bool {
	if !errors.Is(c.Request().Context().Err(), context.Canceled) {
		return false
	}
	return errors.Is(err, context.Canceled) || apiErr.Status >= 500
}

// ErrorHandler renders every error in the one JSON shape and logs 5xx.
// A request whose client went away is not a server error: it is recorded
// as 499 and logged at debug level only.
func ErrorHandler(log zerolog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		apiErr := toAPIError(err)
		if clientGone(c, err, apiErr) {
			log.Debug().Err(err).Str("method", c.Request().Method).Str("path", c.Path()).Msg("client went away before the answer")
			_ = c.NoContent(StatusClientClosedRequest)
			return
		}
		if apiErr.Status >= 500 {
			log.Error().Err(err).Str("method", c.Request().Method).Str("path", c.Path()).Msg("request failed")
		}
		if apiErr.Status == http.StatusServiceUnavailable {
			c.Response().Header().Set("Retry-After", "5")
		}
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(apiErr.Status)
			return
		}
		_ = c.JSON(apiErr.Status, map[string]*Error{"error": apiErr})
	}
}

func toAPIError(err error) *Error {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return apiErr
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		msg := http.StatusText(he.Code)
		if s, ok := he.Message.(string); ok && s != "" {
			msg = s
		}
		code := "http_error"
		switch he.Code {
		case http.StatusNotFound:
			code = "not_found"
		case http.StatusMethodNotAllowed:
			code = "method_not_allowed"
		case http.StatusBadRequest:
			code = "invalid"
		case http.StatusRequestEntityTooLarge:
			code = "too_large"
		case http.StatusUnauthorized:
			code = "unauthenticated"
		case http.StatusForbidden:
			code = "forbidden"
		}
		return &Error{Status: he.Code, Code: code, Message: msg}
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return ErrNotFound
	case errors.Is(err, store.ErrConflict):
		return &Error{Status: http.StatusConflict, Code: "conflict", Message: err.Error()}
	case store.IsUnavailable(err):
		return ErrNotReady
	}
	return &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error; see the server log"}
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
		return &Error{Status: http.StatusRequestTimeout, Code: "request_timeout", Message: "the request body was not received in time"}
	case errors.Is(err, ErrBodyTooLarge):
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Message: err.Error()}
	case errors.As(err, &te) && te.Field != "":
		return (Validation{te.Field: te.Err.Error()}).Err()
	}
	return &Error{Status: http.StatusBadRequest, Code: "invalid_json", Message: err.Error()}
}
