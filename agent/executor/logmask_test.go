package executor

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/protocol"
)

// dockerLineSplit is where Docker's log driver cuts a long line into two
// log messages (two chunks of the log stream).
const dockerLineSplit = 16 << 10

// collectLogs reads a service's log stream until EOF or until it
// contains until (when set).
func collectLogs(t *testing.T, ctx context.Context, e *env, req protocol.LogsOpen, until string) string {
	t.Helper()
	lctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	ch, err := e.ex.Logs(lctx, req)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for d := range ch {
		b.WriteString(d.Data)
		if until != "" && strings.Contains(b.String(), until) {
			cancel()
		}
	}
	return b.String()
}

// TestServiceLogsAreMasked: a service prints a secret value of its
// deployment in a line long enough that Docker cuts it into two log
// messages right inside the value. The tail and the followed stream show
// "***", never the value or a piece of it; the "last log lines" of a
// service that exits are masked before they are shortened.
func TestServiceLogsAreMasked(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := testutil.Context(t, 8*time.Minute)
	const secret = "S3CRET-split-value-42"
	pieces := []string{secret, secret[:10], secret[10:], "value-42", "S3CRET-sp"}

	id := int64(time.Now().UnixNano()%1e6 + 5000)
	prefix := "token="
	spec := specOf(id, []protocol.Node{webNode("web", func(n *protocol.Node) {
		n.Env = map[string]string{
			"LOG_ON_START": prefix + "${secrets.tok} end-of-line",
			// The value starts 10 bytes before Docker's cut.
			"LOG_PAD": itoa(dockerLineSplit - len(prefix) - 10),
		}
	})}, nil, demoWebImage, nil)
	spec.Secrets = map[string]string{"tok": secret}
	if err := e.ex.Deploy(ctx, protocol.DeployRequest{Spec: spec}); err != nil {
		t.Fatal(err)
	}
	if ds := e.rec.waitDeployment(t, ctx, id, protocol.StatusRunning, protocol.StatusFailed); ds.Status != protocol.StatusRunning {
		t.Fatalf("deployment %s: %s", ds.Status, ds.Reason)
	}
	check := func(what, logs string) {
		t.Helper()
		if !strings.Contains(logs, prefix+"*** end-of-line") {
			t.Errorf("%s: masked line not found (%d bytes): …%q", what, len(logs), tailString(logs, 200))
		}
		for _, p := range pieces {
			if strings.Contains(logs, p) {
				t.Errorf("%s: %q of the secret is visible", what, p)
			}
		}
	}
	// Docker writes the container's output to its log asynchronously: the
	// line may reach the log after the deployment reads running, so the
	// tail is read again until the line's end is there.
	var tail string
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		tail = collectLogs(t, ctx, e, protocol.LogsOpen{DeploymentID: id, Service: "web", Tail: 0}, "")
		if strings.Contains(tail, "end-of-line") || time.Now().After(deadline) {
			break
		}
	}
	check("tail", tail)
	check("follow", collectLogs(t, ctx, e, protocol.LogsOpen{DeploymentID: id, Service: "web", Follow: true}, "end-of-line"))

	// Without the deployment's secrets (an agent that restarted and has
	// not been synced yet) logs are refused rather than sent unmasked; the
	// next sync brings them back.
	e.ex.mon.forget(id)
	if _, err := e.ex.Logs(ctx, protocol.LogsOpen{DeploymentID: id, Service: "web"}); err == nil || !strings.Contains(err.Error(), "secrets are not known") {
		t.Fatalf("logs without known secrets: %v", err)
	}
	if _, err := e.ex.Sync(ctx, protocol.SyncRequest{Deployments: []protocol.DeploySpec{spec}}); err != nil {
		t.Fatal(err)
	}
	check("tail after sync", collectLogs(t, ctx, e, protocol.LogsOpen{DeploymentID: id, Service: "web", Tail: 5}, ""))

	// A service that exits right after printing the value followed by
	// 1495 bytes: a summary cut to its last 1500 bytes before masking
	// would show the value's last 5 bytes.
	id2 := id + 1
	spec2 := specOf(id2, []protocol.Node{webNode("dies", func(n *protocol.Node) {
		n.Env = map[string]string{"LOG_ON_START": "${secrets.tok}" + strings.Repeat("y", 1495), "EXIT_AFTER_LOG": "1"}
	})}, nil, demoWebImage, nil)
	spec2.Secrets = spec.Secrets
	if err := e.ex.Deploy(ctx, protocol.DeployRequest{Spec: spec2}); err != nil {
		t.Fatal(err)
	}
	ds := e.rec.waitDeployment(t, ctx, id2, protocol.StatusRunning, protocol.StatusFailed)
	if ds.Status != protocol.StatusFailed || !strings.Contains(ds.Reason, "last log lines") {
		t.Fatalf("deployment %s: %s", ds.Status, ds.Reason)
	}
	if !strings.Contains(ds.Reason, "***yyy") {
		t.Errorf("summary not masked: …%q", tailString(ds.Reason, 80))
	}
	for _, p := range append(pieces, "-42y") {
		if strings.Contains(ds.Reason, p) || strings.Contains(e.rec.allJSON(), p) {
			t.Errorf("%q of the secret is in the failure reason or an event", p)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
