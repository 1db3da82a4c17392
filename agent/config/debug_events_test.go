//go:build nullopsdebug

package config

import "testing"

func TestDebugEventsListen(t *testing.T) {
	tok := "AGENT_TOKEN=0123456789abcdef"
	cfg, err := load(t, []string{tok}, "--debug.eventslisten=127.0.0.1:7001")
	if err != nil || cfg.Debug.EventsAddr() != "127.0.0.1:7001" {
		t.Fatalf("%q %v", cfg.Debug.EventsAddr(), err)
	}
	if _, err := load(t, []string{tok}, "--debug.eventslisten=nonsense"); err == nil {
		t.Fatal("bad debug.eventslisten accepted")
	}
}
