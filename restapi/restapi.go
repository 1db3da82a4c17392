// Package restapi is the REST contract of nullops-server: the request and
// response bodies of /api/v1 as the server encodes them and the CLI, the
// demo and the tests decode them, the list page and the error body. It
// imports nothing of the server, so clients do not pull the server in.
// docs/api.md describes every route with these shapes.
package restapi

import (
	"fmt"
	"sort"
)

// Prefix is where the API is mounted.
const Prefix = "/api/v1"

// List is one page of a list endpoint (?page= from 1, ?per_page= 1..200).
// Items is never null. A list that bounds its count (deployments: at
// 1,000 or the end of the page asked for, whichever is further) sets
// TotalCapped when it stopped counting: there are more than Total items.
type List[T any] struct {
	Items       []T  `json:"items"`
	Total       int  `json:"total"`
	TotalCapped bool `json:"total_capped,omitempty"`
	Page        int  `json:"page"`
	PerPage     int  `json:"per_page"`
}

// ErrorBody is the body of every error response.
type ErrorBody struct {
	Error *Error `json:"error"`
}

// Error is an API error: a stable machine code, a message for people and,
// for a bad request, what is wrong with each field (keyed by JSON path).
// Status is the HTTP status it came with (not part of the body).
type Error struct {
	Status  int               `json:"-"`
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Details map[string]string `json:"details,omitempty"`
}

func (e *Error) Error() string {
	msg := e.Message
	if e.Status != 0 {
		msg += fmt.Sprintf(" (HTTP %d)", e.Status)
	}
	fields := make([]string, 0, len(e.Details))
	for f := range e.Details {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	for _, f := range fields {
		msg += fmt.Sprintf("\n  %s: %s", f, e.Details[f])
	}
	return msg
}
