package executor

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/protocol"
)

// crashImage is demo-web under a tag of its own: its misbehaviour switches
// must be there even when another checkout rebuilt the shared tag.
const crashImage = "nullops-test/demo-web:executor-crash"

func newCrashEnv(t *testing.T) *env {
	testImage(t, "./scripts/images/demo-web", crashImage)
	return newEnv(t, Config{})
}

// waitServiceState waits for a service.state event of the service that
// satisfies ok and returns it.
func (r *recorder) waitServiceState(t testing.TB, ctx context.Context, id int64, service string, ok func(protocol.ServiceState) bool) protocol.ServiceState {
	t.Helper()
	for {
		evs, ch := r.snapshot()
		for _, e := range evs {
			if s, is := e.Body.(protocol.ServiceState); is && s.DeploymentID == id && s.Service == service && ok(s) {
				return s
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("service %s of %d never reported the expected state; events:\n%s", service, id, r.allJSON())
		}
	}
}

// A service that exits 3 in a loop after passing its health check is
// reported as restarting (not running/healthy) with its restart count, exit
// code and last log lines, secret values masked.
func TestCrashLoopingServiceIsReported(t *testing.T) {
	e := newCrashEnv(t)
	ctx := testutil.Context(t, 3*time.Minute)
	id := int64(9101)
	const secret = "crash-secret-value-77"
	spec := specOf(id, []protocol.Node{webNode("api", func(n *protocol.Node) {
		n.Env = map[string]string{"EXIT_AFTER": "1500ms", "EXIT_CODE": "3", "CRASH_TOKEN": "${secrets.tok}"}
	})}, nil, crashImage, nil)
	spec.Secrets = map[string]string{"tok": secret}
	if err := e.ex.Deploy(ctx, protocol.DeployRequest{Spec: spec}); err != nil {
		t.Fatal(err)
	}
	e.rec.waitDeployment(t, ctx, id, protocol.StatusRunning)
	st := e.rec.waitServiceState(t, ctx, id, "api", func(s protocol.ServiceState) bool {
		return s.RestartCount >= 1 && s.ExitCode != nil && s.LastLines != ""
	})
	if *st.ExitCode != 3 || st.LastExitOOM {
		t.Fatalf("exit code %d oom %v, want 3 without OOM: %+v", *st.ExitCode, st.LastExitOOM, st)
	}
	if !strings.Contains(st.LastLines, "exiting with code 3 on purpose") {
		t.Fatalf("last lines do not show the crash: %q", st.LastLines)
	}
	if strings.Contains(st.LastLines, secret) || !strings.Contains(st.LastLines, "token=***") {
		t.Fatalf("last lines not masked: %q", st.LastLines)
	}
	// Sooner or later Docker's backoff catches it between two runs.
	st = e.rec.waitServiceState(t, ctx, id, "api", func(s protocol.ServiceState) bool {
		return s.State == protocol.ServiceRestarting || s.State == protocol.ServiceExited
	})
	if st.Running || st.Health == "healthy" {
		t.Fatalf("a crashed service reported running/healthy: %+v", st)
	}
	// The metrics sample agrees.
	for _, c := range e.ex.ContainerStats(ctx) {
		if c.DeploymentID == id && c.Health == "healthy" && c.Running {
			// It may be up for its 1.5 s between crashes; then the event
			// above already proved the crash, so only log it.
			t.Logf("sampled between two crashes: %+v", c)
		}
	}
}

// A service that allocates past its memory limit is reported as
// oom-killed, with exit code 137 and the OOM flag.
func TestOOMKilledServiceIsReported(t *testing.T) {
	e := newCrashEnv(t)
	ctx := testutil.Context(t, 3*time.Minute)
	id := int64(9102)
	spec := specOf(id, []protocol.Node{webNode("api", func(n *protocol.Node) {
		n.Env = map[string]string{"ALLOCATE_MB": "512", "ALLOCATE_AFTER": "1500ms"}
	})}, nil, crashImage, nil)
	spec.Resources = protocol.Resources{CPU: 0.5, MemoryMB: 32}
	if err := e.ex.Deploy(ctx, protocol.DeployRequest{Spec: spec}); err != nil {
		t.Fatal(err)
	}
	e.rec.waitDeployment(t, ctx, id, protocol.StatusRunning)
	st := e.rec.waitServiceState(t, ctx, id, "api", func(s protocol.ServiceState) bool {
		return s.ExitCode != nil && s.LastExitOOM
	})
	if *st.ExitCode != 137 {
		t.Fatalf("exit code %d, want 137: %+v", *st.ExitCode, st)
	}
	if !strings.Contains(st.LastLines, "allocating 512 MiB") {
		t.Fatalf("last lines: %q", st.LastLines)
	}
	e.rec.waitServiceState(t, ctx, id, "api", func(s protocol.ServiceState) bool {
		return s.State == protocol.ServiceOOMKilled && !s.Running && s.Health == "unhealthy"
	})
}

// A service that exits during its health wait fails the step at once with
// its exit code and last lines — not after the health timeout, even though
// Docker keeps restarting it.
func TestServiceExitingDuringHealthWaitFailsAtOnce(t *testing.T) {
	e := newCrashEnv(t)
	ctx := testutil.Context(t, 3*time.Minute)
	id := int64(9103)
	spec := specOf(id, []protocol.Node{webNode("api", func(n *protocol.Node) {
		n.Env = map[string]string{"EXIT_AFTER": "0s", "EXIT_CODE": "3"}
		n.Health = &protocol.Health{HTTP: "/healthz", Timeout: "90s", Interval: "5s"}
	})}, nil, crashImage, nil)
	start := time.Now()
	if err := e.ex.Deploy(ctx, protocol.DeployRequest{Spec: spec}); err != nil {
		t.Fatal(err)
	}
	ds := e.rec.waitDeployment(t, ctx, id, protocol.StatusFailed, protocol.StatusRunning)
	took := time.Since(start)
	if ds.Status != protocol.StatusFailed || ds.FailedStep != "api" {
		t.Fatalf("deployment: %+v", ds)
	}
	for _, want := range []string{"exited with code 3", "exiting with code 3 on purpose"} {
		if !strings.Contains(ds.Reason, want) {
			t.Fatalf("reason %q lacks %q", ds.Reason, want)
		}
	}
	// Far below the 90 s health timeout (and its 5 s interval): the exit
	// ended the wait, not the clock.
	if took > 45*time.Second {
		t.Fatalf("failing took %s", took)
	}
	t.Logf("failed after %s: %s", took.Round(time.Millisecond), ds.Reason)
	e.assertNothingLeft(id)
}
