package deploy

import (
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/server/store"
)

// A running deployment is degraded while a service is not running or
// crashed recently, with one clause per such service; other statuses and
// old crashes are not.
func TestDegraded(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	code3, code137 := 3, 137
	recent, old := now.Add(-time.Minute), now.Add(-time.Hour)
	ok := store.DeploymentService{NodeKey: "db", State: "running"}
	loop := store.DeploymentService{NodeKey: "api", State: "restarting", RestartCount: 4, ExitCode: &code3, LastExitAt: &recent}
	oom := store.DeploymentService{NodeKey: "web", State: "oom-killed", RestartCount: 1, ExitCode: &code137, LastExitOOM: true, LastExitAt: &recent}
	back := store.DeploymentService{NodeKey: "api", State: "running", RestartCount: 2, ExitCode: &code3, LastExitAt: &recent}
	longAgo := store.DeploymentService{NodeKey: "api", State: "running", RestartCount: 2, ExitCode: &code3, LastExitAt: &old}
	for _, c := range []struct {
		name   string
		status string
		svcs   []store.DeploymentService
		want   []string // clauses; nil = not degraded
	}{
		{"all well", store.DeploymentRunning, []store.DeploymentService{ok}, nil},
		{"never reported", store.DeploymentRunning, []store.DeploymentService{{NodeKey: "x"}}, nil},
		{"crash loop", store.DeploymentRunning, []store.DeploymentService{ok, loop}, []string{"service api is restarting (exit code 3, restarted 4 time(s))"}},
		{"oom", store.DeploymentRunning, []store.DeploymentService{oom}, []string{"service web is oom-killed", "OOM killer", "137"}},
		{"back recently", store.DeploymentRunning, []store.DeploymentService{back}, []string{"service api crashed 1m0s ago (exit code 3"}},
		{"back long ago", store.DeploymentRunning, []store.DeploymentService{longAgo}, nil},
		{"not running", store.DeploymentFailed, []store.DeploymentService{loop}, nil},
		{"two", store.DeploymentRunning, []store.DeploymentService{loop, oom}, []string{"service api is restarting", "; service web is oom-killed"}},
	} {
		got, why := degraded(c.status, c.svcs, now)
		if got != (c.want != nil) {
			t.Errorf("%s: degraded %v (%q)", c.name, got, why)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(why, w) {
				t.Errorf("%s: reason %q lacks %q", c.name, why, w)
			}
		}
	}
}
