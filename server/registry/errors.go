package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/nullops/nullops/server/errs"
)

// Kind classifies a registry failure so the API and UI can say what to fix.
type Kind string

// Failure kinds.
const (
	KindUnreachable  Kind = "unreachable"    // no answer: DNS, refused, timeout, TLS
	KindUnauthorized Kind = "unauthorized"   // credentials refused (or required)
	KindNotFound     Kind = "not_found"      // unknown repository
	KindInvalid      Kind = "invalid"        // bad URL, image or pattern
	KindUpstream     Kind = "registry_error" // the registry answered with another error
)

// Error is a classified registry failure. Its message never contains
// credentials.
type Error struct {
	Kind     Kind
	Registry string // host
	Image    string // repository, when relevant
	Msg      string
	Err      error
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the kind of a registry error ("" for other errors).
func KindOf(err error) Kind {
	var re *Error
	if errors.As(err, &re) {
		return re.Kind
	}
	return ""
}

func invalid(format string, args ...any) *Error {
	return &Error{Kind: KindInvalid, Msg: fmt.Sprintf(format, args...)}
}

// classify turns a go-containerregistry or network error into an *Error.
func classify(err error, host, image string, anonymous bool) *Error {
	if err == nil {
		return nil
	}
	var re *Error
	if errors.As(err, &re) {
		return re
	}
	e := &Error{Registry: host, Image: image, Err: err}
	what := "registry " + host
	var te *transport.Error
	if errors.As(err, &te) {
		code := te.StatusCode
		for _, d := range te.Errors {
			switch d.Code {
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				if code != http.StatusNotFound {
					code = http.StatusUnauthorized
				}
			case transport.NameUnknownErrorCode, transport.ManifestUnknownErrorCode:
				code = http.StatusNotFound
			}
		}
		switch {
		case code == http.StatusUnauthorized || code == http.StatusForbidden:
			e.Kind = KindUnauthorized
			switch {
			case anonymous && image != "":
				e.Msg = fmt.Sprintf("%s refused anonymous access to %q: the repository is private or does not exist; set a username and password", what, image)
			case anonymous:
				e.Msg = fmt.Sprintf("%s requires credentials; set a username and password", what)
			case image != "":
				e.Msg = fmt.Sprintf("%s refused the credentials for %q: check username and password (and that the account may pull this repository)", what, image)
			default:
				e.Msg = fmt.Sprintf("%s refused the credentials: check username and password", what)
			}
		case code == http.StatusNotFound:
			e.Kind = KindNotFound
			e.Msg = fmt.Sprintf("%s has no repository %q", what, image)
		case code == http.StatusTooManyRequests:
			e.Kind = KindUpstream
			e.Msg = fmt.Sprintf("%s is rate-limiting requests; try again later", what)
		default:
			e.Kind = KindUpstream
			e.Msg = fmt.Sprintf("%s answered HTTP %d", what, code)
		}
		return e
	}
	var recErr tls.RecordHeaderError
	var certErr *tls.CertificateVerificationError
	var unkAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var netErr net.Error
	switch {
	case errors.As(err, &recErr):
		e.Kind = KindUnreachable
		e.Msg = fmt.Sprintf("%s does not speak HTTPS; if it serves plain HTTP, mark the registry insecure", what)
	case errors.As(err, &certErr), errors.As(err, &unkAuth), errors.As(err, &hostErr):
		e.Kind = KindUnreachable
		e.Msg = fmt.Sprintf("%s presented a TLS certificate that is not trusted: %v", what, err)
	case errors.Is(err, context.DeadlineExceeded):
		e.Kind = KindUnreachable
		e.Msg = fmt.Sprintf("%s did not answer in time", what)
	case errors.As(err, &netErr):
		e.Kind = KindUnreachable
		e.Msg = fmt.Sprintf("%s is unreachable: %v", what, rootCause(err))
	default:
		e.Kind = KindUpstream
		e.Msg = fmt.Sprintf("%s: %v", what, err)
	}
	return e
}

// rootCause drops URL wrappers so messages read "dial tcp ...: connection
// refused" without repeating the URL.
func rootCause(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return op
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns
	}
	return err
}

// kinds gives each registry failure its kind and code in the server's error
// vocabulary: the same status and code from every route that asks a
// registry (tag listing, connection test, creating a deployment).
var kinds = map[Kind]struct {
	kind errs.Kind
	code string
}{
	KindInvalid:      {errs.Invalid, "invalid"},
	KindNotFound:     {errs.NotFound, "image_not_found"},
	KindUnauthorized: {errs.Upstream, "registry_unauthorized"},
	KindUnreachable:  {errs.Upstream, "registry_unreachable"},
	KindUpstream:     {errs.Upstream, "registry_error"},
}

// As lets errors.As find a registry failure as an *errs.Error.
func (e *Error) As(target any) bool {
	t, ok := target.(**errs.Error)
	if !ok {
		return false
	}
	k, ok := kinds[e.Kind]
	if !ok {
		k = kinds[KindUpstream]
	}
	*t = &errs.Error{Kind: k.kind, Code: k.code, Message: e.Msg, Err: e}
	return true
}
