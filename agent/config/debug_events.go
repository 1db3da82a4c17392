//go:build nullopsdebug

package config

import (
	"fmt"
	"net"
)

// Debug holds switches meant for tests only. This variant, with the
// test-only event listener, is compiled only with -tags nullopsdebug.
type Debug struct {
	ZeroUsage    bool   `description:"TEST ONLY: report zero OS-level CPU and memory usage, so placement depends only on reservations (deterministic capacity tests). Off by default." export:"true"`
	EventsListen string `description:"TEST ONLY: plain-HTTP address (e.g. 127.0.0.1:5001) of POST /events, which journals a caller-supplied event as if the agent had produced it. Off (empty) by default; only in binaries built with -tags nullopsdebug." export:"true"`
}

func (d *Debug) validate() error {
	if d.EventsListen != "" {
		if _, _, err := net.SplitHostPort(d.EventsListen); err != nil {
			return fmt.Errorf("debug.eventslisten: %q is not host:port: %v", d.EventsListen, err)
		}
	}
	return nil
}

// EventsAddr is the address of the test-only event listener.
func (d *Debug) EventsAddr() string { return d.EventsListen }
