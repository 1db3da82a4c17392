//go:build !nullopsdebug

package app

import "net/http"

// serveDebug does nothing: the test-only event endpoint is compiled only
// into binaries built with -tags nullopsdebug (debug_events.go).
func (a *App) serveDebug(chan<- error) *http.Server { return nil }
