//go:build !nullopsdebug

package config

// Debug holds switches meant for tests only. The test-only event
// listener exists only in binaries built with -tags nullopsdebug
// (debug_events.go); production builds do not know the option.
type Debug struct {
	ZeroUsage bool `description:"TEST ONLY: report zero OS-level CPU and memory usage, so placement depends only on reservations (deterministic capacity tests). Off by default." export:"true"`
}

func (d *Debug) validate() error { return nil }

// EventsAddr is the address of the test-only event listener: always empty
// in production builds.
func (d *Debug) EventsAddr() string { return "" }
