//go:build !nullopsdebug

package config

import (
	"strings"
	"testing"
)

// TestProductionBuildHasNoEventListener: without -tags nullopsdebug the
// test-only event listener is not an option at all, from flags, the
// environment or a file.
func TestProductionBuildHasNoEventListener(t *testing.T) {
	tok := "AGENT_TOKEN=0123456789abcdef"
	if _, err := load(t, []string{tok}, "--debug.eventslisten=127.0.0.1:7001"); err == nil {
		t.Fatal("--debug.eventslisten accepted by a production build")
	}
	cfg, err := load(t, []string{tok, "NULLOPS_DEBUG_EVENTSLISTEN=127.0.0.1:7001"})
	if err == nil && cfg.Debug.EventsAddr() != "" {
		t.Fatalf("NULLOPS_DEBUG_EVENTSLISTEN enabled the listener: %q", cfg.Debug.EventsAddr())
	}
	if err != nil && !strings.Contains(strings.ToLower(err.Error()), "eventslisten") {
		t.Fatalf("unexpected error: %v", err)
	}
}
