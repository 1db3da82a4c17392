// Package runtimetest checks that a runtime.Runtime keeps the promises of
// the interface's doc comments, whichever system it drives. An
// implementation's own tests call Run with a Harness:
//
//	func TestContract(t *testing.T) { runtimetest.Run(t, runtimetest.Harness{New: …, Image: …}) }
//
// The workloads are the repository's test images: scripts/images/demo-web
// (an HTTP server on :8080 that can crash on demand) and
// scripts/images/test-plugin (a plugin following docs/plugins.md).
package runtimetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nullops/nullops/agent/runtime"
	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/plugins/sdk"
	"github.com/nullops/nullops/protocol"
)

// Harness tells Run how to make runtimes of the implementation.
type Harness struct {
	// New returns a runtime scoped to node (Run closes it and removes what
	// it left). Two calls with different nodes must give runtimes that
	// share one daemon or cluster (ownership is checked between them).
	New func(t testing.TB, node string) runtime.Runtime
	// Image makes ref, built on the local Docker daemon, startable by the
	// runtime's workloads; nil when nothing is needed.
	Image func(t testing.TB, ref string)
	// LossyStreams, when set, says why the runtime's Exec may lose the
	// output of a process that exits at once (exit status right, nothing
	// read): the Exec check tries up to twice more and logs it, so the loss
	// is visible in the test log without failing the suite. RunOneShot's
	// output is never excused: a plugin's result must arrive.
	LossyStreams string
}

const (
	webImage    = "nullops-test/demo-web:runtimetest"
	pluginImage = "nullops-test/test-plugin:runtimetest"
)

var nodeMu sync.Mutex
var nodeSeq int

func (h Harness) runtime(t *testing.T, suffix string) runtime.Runtime {
	t.Helper()
	nodeMu.Lock()
	nodeSeq++
	node := fmt.Sprintf("rt%d-%d%s", time.Now().UnixNano()%1e7, nodeSeq, suffix)
	nodeMu.Unlock()
	r := h.New(t, node)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if objs, err := r.ListManaged(ctx, 0); err == nil {
			_, _ = r.Remove(ctx, objs)
		}
		_ = r.Close()
	})
	if r.Node() != node {
		t.Fatalf("Node() = %q, want %q", r.Node(), node)
	}
	return r
}

func (h Harness) images(t *testing.T) {
	t.Helper()
	for dir, ref := range map[string]string{"./scripts/images/demo-web": webImage, "./scripts/images/test-plugin": pluginImage} {
		testutil.ScratchImage(t, dir, ref)
		if h.Image != nil {
			h.Image(t, ref)
		}
	}
}

// Run runs the contract's tests as subtests of t.
func Run(t *testing.T, h Harness) {
	h.images(t)
	t.Run("Service", func(t *testing.T) { testService(t, h) })
	t.Run("OneShot", func(t *testing.T) { testOneShot(t, h) })
	t.Run("Ownership", func(t *testing.T) { testOwnership(t, h) })
	t.Run("Events", func(t *testing.T) { testEvents(t, h) })
}

func serviceSpec(id int64, net runtime.Network, env map[string]string) runtime.ServiceSpec {
	e := map[string]string{"SERVICE_NAME": "web"}
	for k, v := range env {
		e[k] = v
	}
	return runtime.ServiceSpec{
		DeploymentID: id, Service: "web", Image: webImage, Env: e, Ports: []int{8080},
		HealthPort: 8080, Resources: protocol.Resources{CPU: 0.25, MemoryMB: 64}, Network: net.Name,
	}
}

// waitRunning polls InspectService until the workload runs.
func waitRunning(t *testing.T, ctx context.Context, r runtime.Runtime, id string) runtime.ServiceInfo {
	t.Helper()
	var info runtime.ServiceInfo
	testutil.WaitFor(t, ctx, 200*time.Millisecond, "service workload running", func() bool {
		var err error
		info, err = r.InspectService(ctx, id)
		if err != nil {
			t.Fatalf("InspectService(%s): %v", id, err)
		}
		return info.State() == runtime.StateRunning
	})
	return info
}

func workloads(t *testing.T, ctx context.Context, r runtime.Runtime, id int64) []runtime.Object {
	t.Helper()
	objs, err := r.ListManaged(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var out []runtime.Object
	for _, o := range objs {
		if o.Kind == runtime.KindWorkload {
			out = append(out, o)
		}
		if o.DeploymentID != id {
			t.Errorf("ListManaged(%d) returned %+v of deployment %d", id, o, o.DeploymentID)
		}
	}
	return out
}

// testService: the network is idempotent, a service starts, is listed,
// inspected, logged, sampled, runs a command (Exec), is replaced by a second
// StartService, and RemoveDeployment leaves nothing (twice); a removed
// workload is ErrNotFound.
func testService(t *testing.T, h Harness) {
	r := h.runtime(t, "")
	ctx := testutil.Context(t, 4*time.Minute)
	const id = 71
	netSpec := runtime.NetworkSpec{DeploymentID: id, Resources: protocol.Resources{CPU: 1, MemoryMB: 256}}
	n1, err := r.EnsureNetwork(ctx, netSpec)
	if err != nil {
		t.Fatal(err)
	}
	n2, err := r.EnsureNetwork(ctx, netSpec)
	if err != nil || n2.Name != n1.Name || n1.Name == "" {
		t.Fatalf("EnsureNetwork twice: %+v then %+v, %v", n1, n2, err)
	}
	info, err := r.StartService(ctx, serviceSpec(id, n1, map[string]string{"LOG_ON_START": "hello-runtimetest"}))
	if err != nil {
		t.Fatal(err)
	}
	if info.ID == "" {
		t.Fatalf("StartService returned no workload id: %+v", info)
	}
	info = waitRunning(t, ctx, r, info.ID)
	ws := workloads(t, ctx, r, id)
	if len(ws) != 1 || ws[0].ID != info.ID || ws[0].Service != "web" || !ws[0].Running {
		t.Fatalf("ListManaged(%d) workloads %+v, want the one service workload %s running", id, ws, info.ID)
	}

	// Logs: the tail, then a followed stream that ends with ctx.
	var logs strings.Builder
	testutil.WaitFor(t, ctx, 200*time.Millisecond, "the service's log line", func() bool {
		logs.Reset()
		if err := r.Logs(ctx, info.ID, 50, false, false, func(stream, data string) error {
			if stream != "stdout" && stream != "stderr" {
				t.Errorf("log stream %q", stream)
			}
			logs.WriteString(data)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return strings.Contains(logs.String(), "hello-runtimetest")
	})
	fctx, fcancel := context.WithCancel(ctx)
	got := make(chan struct{}, 1)
	ferr := make(chan error, 1)
	go func() {
		ferr <- r.Logs(fctx, info.ID, 1, true, true, func(_, data string) error {
			select {
			case got <- struct{}{}:
			default:
			}
			return nil
		})
	}()
	select {
	case <-got:
	case <-ctx.Done():
		t.Fatal("followed logs gave nothing")
	}
	fcancel()
	if err := <-ferr; err != nil {
		t.Errorf("Logs ended by its context returned %v, want nil", err)
	}

	if _, err := r.Stats(ctx, info.ID); err != nil {
		t.Errorf("Stats: %v", err)
	}
	code, out, err := r.Exec(ctx, info.ID, []string{"/app", "healthcheck"})
	for try := 2; h.LossyStreams != "" && err == nil && code == 0 && out == "" && try <= 3; try++ {
		t.Logf("Exec healthcheck: exit 0 with no output (%s); try %d", h.LossyStreams, try)
		code, out, err = r.Exec(ctx, info.ID, []string{"/app", "healthcheck"})
	}
	if err != nil || code != 0 || !strings.Contains(out, "ok web") {
		t.Errorf("Exec healthcheck: code %d, output %q, %v", code, out, err)
	}

	// A second StartService replaces the workload.
	again, err := r.StartService(ctx, serviceSpec(id, n1, nil))
	if err != nil {
		t.Fatal(err)
	}
	waitRunning(t, ctx, r, again.ID)
	if ws := workloads(t, ctx, r, id); len(ws) != 1 || ws[0].ID != again.ID {
		t.Fatalf("after a second StartService: workloads %+v, want only %s", ws, again.ID)
	}

	removed, err := r.RemoveDeployment(ctx, id)
	if err != nil || len(removed) == 0 {
		t.Fatalf("RemoveDeployment: removed %v, %v", removed, err)
	}
	if left, err := r.ListManaged(ctx, id); err != nil || len(left) != 0 {
		t.Fatalf("after RemoveDeployment: %+v, %v", left, err)
	}
	if removed, err := r.RemoveDeployment(ctx, id); err != nil || len(removed) != 0 {
		t.Fatalf("RemoveDeployment again: removed %v, %v; want nothing, nil", removed, err)
	}
	if _, err := r.InspectService(ctx, again.ID); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("InspectService of a removed workload: %v, want ErrNotFound", err)
	}
	if err := r.StartWorkload(ctx, again.ID); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("StartWorkload of a removed workload: %v, want ErrNotFound", err)
	}
	if err := r.Logs(ctx, again.ID, 1, false, false, func(string, string) error { return nil }); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("Logs of a removed workload: %v, want ErrNotFound", err)
	}
	if _, err := r.RemoveDeployment(ctx, 0); err == nil {
		t.Error("RemoveDeployment(0) did not fail")
	}
}

// testOneShot: stdin in, stdout and stderr out, the exit code, the timeout
// and the context; no step workload is listed afterwards (where the
// runtime lists them at all).
func testOneShot(t *testing.T, h Harness) {
	r := h.runtime(t, "")
	ctx := testutil.Context(t, 4*time.Minute)
	const id = 72
	net, err := r.EnsureNetwork(ctx, runtime.NetworkSpec{DeploymentID: id})
	if err != nil {
		t.Fatal(err)
	}
	// sawStderr is closed when a run's stderr first contains "sleeping".
	sawStderr := make(chan struct{})
	run := func(ctx context.Context, attempt int, params map[string]any, timeout time.Duration) (runtime.OneShotResult, string, string, error) {
		in, _ := json.Marshal(sdk.Input{
			Deployment: sdk.Deployment{ID: id, Node: r.Node(), Network: net.Name},
			Step:       "plug", Attempt: attempt, Params: params,
			Secrets: map[string]string{"a": "x"}, Services: map[string]sdk.Service{}, Outputs: map[string]map[string]string{},
		})
		var stdout bytes.Buffer
		stderr := &watchWriter{needle: "sleeping", seen: sawStderr}
		res, err := r.RunOneShot(ctx, runtime.OneShotSpec{
			DeploymentID: id, Step: "plug", Attempt: attempt, Image: pluginImage, Input: in,
			Resources: protocol.Resources{CPU: 0.25, MemoryMB: 32}, Network: net.Name, Timeout: timeout,
			Stdout: &stdout, Stderr: stderr,
		})
		return res, stdout.String(), stderr.String(), err
	}
	noStepLeft := func(what string) {
		t.Helper()
		for _, o := range workloads(t, ctx, r, id) {
			if o.Step != "" {
				t.Errorf("%s: step workload %+v left", what, o)
			}
		}
	}

	res, stdout, stderr, err := run(ctx, 1, map[string]any{"outputs": map[string]any{"k": "v"}, "stderr": "to-stderr"}, time.Minute)
	if err != nil || res.ExitCode != 0 || res.TimedOut {
		t.Fatalf("ok run: %+v, %v; stderr %q", res, err, stderr)
	}
	var doc struct{ Outputs map[string]string }
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil || doc.Outputs["k"] != "v" || doc.Outputs["secret_names"] != "a" {
		t.Fatalf("stdout %q (%v): want the plugin's outputs from its stdin", stdout, err)
	}
	if !strings.Contains(stderr, "to-stderr") || strings.Contains(stdout, "to-stderr") {
		t.Errorf("stderr %q / stdout %q: the streams are mixed up", stderr, stdout)
	}
	noStepLeft("after success")

	res, _, stderr, err = run(ctx, 2, map[string]any{"mode": "exit", "code": 7}, time.Minute)
	if err != nil || res.ExitCode != 7 || !strings.Contains(stderr, "failing on purpose") {
		t.Fatalf("exit 7: %+v, %v, stderr %q", res, err, stderr)
	}
	noStepLeft("after exit 7")

	started := time.Now()
	res, _, _, err = run(ctx, 3, map[string]any{"mode": "sleep", "sleep": "5m"}, 3*time.Second)
	if err != nil || !res.TimedOut {
		t.Fatalf("timeout: %+v, %v; want TimedOut and no error", res, err)
	}
	if d := time.Since(started); d > 90*time.Second {
		t.Errorf("a 3s timeout took %s", d)
	}
	noStepLeft("after the timeout")

	sawStderr = make(chan struct{}) // the timed-out run above closed the first one
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, _, _, err := run(cctx, 4, map[string]any{"mode": "sleep", "sleep": "5m"}, time.Hour)
		done <- err
	}()
	select { // the plugin runs: it said so on stderr
	case <-sawStderr:
	case <-ctx.Done():
		t.Fatal("the sleeping plugin never wrote to stderr")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled run returned %v, want context.Canceled", err)
		}
	case <-ctx.Done():
		t.Fatal("a cancelled RunOneShot did not return")
	}
	noStepLeft("after cancel")
}

// testOwnership: a runtime lists only its own node's objects; an agent of
// the same node uid under another node name finds what the first one made
// (Predecessors), and the first one never lists its own objects there.
func testOwnership(t *testing.T, h Harness) {
	ctx := testutil.Context(t, 4*time.Minute)
	uid := fmt.Sprintf("uid-%d", time.Now().UnixNano())
	a := h.runtime(t, "a")
	b := h.runtime(t, "b")
	a.SetNodeUID(uid)
	b.SetNodeUID(uid)
	const id = 73
	net, err := a.EnsureNetwork(ctx, runtime.NetworkSpec{DeploymentID: id})
	if err != nil {
		t.Fatal(err)
	}
	info, err := a.StartService(ctx, serviceSpec(id, net, nil))
	if err != nil {
		t.Fatal(err)
	}
	if objs, err := b.ListManaged(ctx, 0); err != nil || len(objs) != 0 {
		t.Fatalf("node b lists %+v (%v) of node a", objs, err)
	}
	if objs, err := b.ListManaged(ctx, id); err != nil || len(objs) != 0 {
		t.Fatalf("node b lists %+v (%v) of node a's deployment", objs, err)
	}
	if removed, err := b.RemoveDeployment(ctx, id); err != nil || len(removed) != 0 {
		t.Fatalf("node b removed %v (%v) of node a", removed, err)
	}
	if mine, err := a.Predecessors(ctx, uid); err != nil || len(mine) != 0 {
		t.Fatalf("Predecessors lists the runtime's own objects: %+v, %v", mine, err)
	}
	prev, err := b.Predecessors(ctx, uid)
	if err != nil || len(prev) == 0 {
		t.Fatalf("b.Predecessors(uid) = %+v, %v; want node a's objects", prev, err)
	}
	for _, o := range prev {
		if o.DeploymentID != id {
			t.Errorf("b.Predecessors(uid) lists %+v, not of node a's deployment %d", o, id)
		}
	}
	if _, err := b.Remove(ctx, prev); err != nil {
		t.Fatal(err)
	}
	if left, err := a.ListManaged(ctx, id); err != nil || len(left) != 0 {
		t.Fatalf("after removing the predecessor's objects a still has %+v, %v", left, err)
	}
	if _, err := a.InspectService(ctx, info.ID); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("node a's service after b removed the predecessor objects: %v, want ErrNotFound", err)
	}
	if _, err := b.Remove(ctx, prev); err != nil {
		t.Errorf("removing objects that are gone: %v, want nil", err)
	}
}

// testEvents: WatchServices reports a service's start and its exit with
// the exit code, and ends when its context does.
func testEvents(t *testing.T, h Harness) {
	r := h.runtime(t, "")
	ctx := testutil.Context(t, 4*time.Minute)
	const id = 74
	wctx, stop := context.WithCancel(ctx)
	evs := make(chan runtime.ServiceEvent, 64)
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		r.WatchServices(wctx, time.Second, nil, func(ev runtime.ServiceEvent) {
			select {
			case evs <- ev:
			default:
			}
		})
	}()
	net, err := r.EnsureNetwork(ctx, runtime.NetworkSpec{DeploymentID: id})
	if err != nil {
		t.Fatal(err)
	}
	// The watch may start after the first start: the service crashes
	// and is restarted until an exit is seen.
	info, err := r.StartService(ctx, serviceSpec(id, net, map[string]string{"EXIT_AFTER": "1s", "EXIT_CODE": "5"}))
	if err != nil {
		t.Fatal(err)
	}
	var sawStart bool
	for {
		select {
		case ev := <-evs:
			if ev.DeploymentID != id || ev.Service != "web" || ev.ID != info.ID {
				t.Fatalf("event %+v, want deployment %d service web workload %s", ev, id, info.ID)
			}
			sawStart = sawStart || ev.Action == runtime.EventStart
			if ev.Action == runtime.EventExit {
				if ev.Exit == nil || ev.Exit.ExitCode != 5 || ev.Exit.ID != info.ID || ev.Exit.At.IsZero() {
					t.Fatalf("exit event %+v (exit %+v), want code 5", ev, ev.Exit)
				}
				if !sawStart {
					continue // the start was before the watch: wait for the restart's
				}
				stop()
				select {
				case <-watching:
				case <-ctx.Done():
					t.Fatal("WatchServices did not return when its context ended")
				}
				info, err := r.InspectService(ctx, info.ID)
				if err != nil || (info.RestartCount == 0 && info.FinishedAt.IsZero()) {
					t.Errorf("after an exit: %+v, %v; want a restart count or a last exit", info, err)
				}
				return
			}
		case <-ctx.Done():
			t.Fatal("no start and exit events of the crashing service")
		}
	}
}

// watchWriter is a goroutine-safe writer that closes seen the first time
// what was written contains needle.
type watchWriter struct {
	needle string
	seen   chan struct{}

	mu   sync.Mutex
	buf  strings.Builder
	done bool
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.done && strings.Contains(w.buf.String(), w.needle) {
		w.done = true
		select {
		case <-w.seen:
		default:
			close(w.seen)
		}
	}
	return len(p), nil
}

func (w *watchWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
