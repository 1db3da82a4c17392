// Package errs is the one error vocabulary of the server: every domain
// package (store, catalog, pipeline, deploy, auth, agents, registry) says
// what went wrong with a Kind, a stable machine Code and a message for
// people, and a request's field problems with the one Fields type.
// server/api translates them to HTTP in one function (docs/architecture.md,
// "Errors"). It imports nothing of this repository.
package errs

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Kind classifies an error by who can fix it; it decides the HTTP status.
type Kind uint8

// The kinds. Internal is the zero value: anything unclassified is a bug or
// a failure the caller cannot fix.
const (
	Internal        Kind = iota // 500: see the server log
	Invalid                     // 400: the request is wrong (Fields say where)
	Unauthenticated             // 401: no or wrong credentials
	Forbidden                   // 403: known caller, not allowed
	NotFound                    // 404: does not exist, or may not be seen
	Timeout                     // 408: the request did not arrive in time
	Conflict                    // 409: the current state refuses the change
	TooLarge                    // 413: the body is over the limit
	Unsupported                 // 415: wrong content type
	Throttled                   // 429: too many attempts (RetryAfter)
	Upstream                    // 502: a system the server depends on (a registry) failed
	Unavailable                 // 503: the server cannot answer now (RetryAfter)
)

var kindNames = [...]string{"internal", "invalid", "unauthenticated", "forbidden", "not_found", "timeout",
	"conflict", "too_large", "unsupported", "throttled", "upstream", "unavailable"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Error is a kinded error. Code is the stable machine code clients branch
// on (the kind's name unless a finer one is set); Message is for people.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	// Fields names each bad field of an Invalid request.
	Fields Fields
	// RetryAfter, when set, tells the caller when to try again.
	RetryAfter time.Duration
	// Chain: the message shown is the whole chain's (the text the callers
	// wrapped around this error), not Message alone. Set on sentinels like
	// a unique-name conflict, whose wrappers name the object.
	Chain bool
	// Err is the cause, for logs and errors.Is/As; never shown.
	Err error
}

func (e *Error) Error() string {
	switch {
	case len(e.Fields) > 1:
		return "invalid request: " + e.Fields.String()
	case e.Message == "" && e.Err != nil:
		return e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// New builds an Error of kind with code (the kind's name when "") and a
// formatted message.
func New(kind Kind, code, format string, args ...any) *Error {
	if code == "" {
		code = kind.String()
	}
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap gives err a kind and code; its message is err's.
func Wrap(kind Kind, code string, err error) *Error {
	e := New(kind, code, "%s", err.Error())
	e.Err = err
	return e
}

// Mark builds a sentinel whose shown message is the chain wrapped around it
// (see Error.Chain): fmt.Errorf("team %q: %w", name, ErrConflict) answers
// `team "x": already exists`.
func Mark(kind Kind, code, message string) *Error {
	e := New(kind, code, "%s", message)
	e.Chain = true
	return e
}

// As returns the outermost *Error in err's chain.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// KindOf is the kind of err (Internal when it has none).
func KindOf(err error) Kind {
	if e, ok := As(err); ok {
		return e.Kind
	}
	return Internal
}

// Is reports whether err has kind k.
func Is(err error, k Kind) bool { return err != nil && KindOf(err) == k }

// Fields maps a field of a request (a JSON path such as "tags.web" or
// "nodes.api.env.X") to what is wrong with it. It is the one field-error
// type of the server: collect problems with Add, return them with Err.
type Fields map[string]string

// Add records a problem with field; a field with several problems lists
// each once, separated by "; ".
func (f Fields) Add(field, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if old, ok := f[field]; ok {
		if old == msg || strings.Contains(old, msg) {
			return
		}
		msg = old + "; " + msg
	}
	f[field] = msg
}

// Merge adds every problem of other, each field prefixed with prefix.
func (f Fields) Merge(prefix string, other Fields) {
	for k, m := range other {
		f.Add(prefix+k, "%s", m)
	}
}

// Err is nil without problems, else an Invalid error with code "invalid".
func (f Fields) Err() error { return f.ErrCode("invalid") }

// ErrCode is Err with another code (e.g. "invalid_pipeline").
func (f Fields) ErrCode(code string) error {
	if len(f) == 0 {
		return nil
	}
	return &Error{Kind: Invalid, Code: code, Message: f.summary(), Fields: f}
}

// summary is "field: problem" for one field, else the number of fields.
func (f Fields) summary() string {
	if len(f) == 1 {
		for k, m := range f {
			return k + ": " + m
		}
	}
	return fmt.Sprintf("invalid request: %d fields have problems", len(f))
}

// String lists every problem, sorted by field.
func (f Fields) String() string {
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+": "+f[k])
	}
	return strings.Join(parts, "; ")
}

// FieldsOf returns the field problems of an Invalid error (nil otherwise).
func FieldsOf(err error) Fields {
	if e, ok := As(err); ok && e.Kind == Invalid {
		return e.Fields
	}
	return nil
}

// Field is an Invalid error naming one field.
func Field(field, format string, args ...any) error {
	return Fields{field: fmt.Sprintf(format, args...)}.Err()
}
