package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/agent/docker"
	"github.com/nullops/nullops/agent/runtime"
	"github.com/nullops/nullops/agent/state"
	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/protocol"
)

const (
	demoWebImage    = "nullops-test/demo-web:executor"
	testPluginImage = "nullops-test/test-plugin:executor"
)

// recorder is an in-memory Emitter that lets tests wait for events.
type recorder struct {
	mu     sync.Mutex
	seq    uint64
	events []recorded
	notify chan struct{}
}

type recorded struct {
	Type string
	Body any
	JSON string
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{})} }

func (r *recorder) Emit(ev protocol.Event) (uint64, error) {
	t, body := ev.EventType(), any(ev)
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	r.events = append(r.events, recorded{t, body, string(b)})
	close(r.notify)
	r.notify = make(chan struct{})
	return r.seq, nil
}

func (r *recorder) snapshot() ([]recorded, chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.events...), r.notify
}

func (r *recorder) allJSON() string {
	evs, _ := r.snapshot()
	var b strings.Builder
	for _, e := range evs {
		b.WriteString(e.Type + " " + e.JSON + "\n")
	}
	return b.String()
}

// waitDeployment waits for a deployment.status event of id with one of the
// final statuses and returns it.
func (r *recorder) waitDeployment(t testing.TB, ctx context.Context, id int64, statuses ...string) protocol.DeploymentStatus {
	t.Helper()
	for {
		evs, ch := r.snapshot()
		for _, e := range evs {
			if ds, ok := e.Body.(protocol.DeploymentStatus); ok && ds.DeploymentID == id {
				for _, s := range statuses {
					if ds.Status == s {
						return ds
					}
				}
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("deployment %d never reached %v; events:\n%s", id, statuses, r.allJSON())
		}
	}
}

func (r *recorder) waitStep(t testing.TB, ctx context.Context, id int64, step, status string) protocol.StepStatus {
	t.Helper()
	for {
		evs, ch := r.snapshot()
		for _, e := range evs {
			if s, ok := e.Body.(protocol.StepStatus); ok && s.DeploymentID == id && s.Step == step && s.Status == status {
				return s
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("step %s of %d never %s; events:\n%s", step, id, status, r.allJSON())
		}
	}
}

func (r *recorder) steps(id int64, step string) []protocol.StepStatus {
	evs, _ := r.snapshot()
	var out []protocol.StepStatus
	for _, e := range evs {
		if s, ok := e.Body.(protocol.StepStatus); ok && s.DeploymentID == id && s.Step == step {
			out = append(out, s)
		}
	}
	return out
}

func (r *recorder) stepLogs(id int64, step string) string {
	evs, _ := r.snapshot()
	var b strings.Builder
	for _, e := range evs {
		if s, ok := e.Body.(protocol.StepLog); ok && s.DeploymentID == id && s.Step == step {
			b.WriteString(s.Chunk)
		}
	}
	return b.String()
}

func (r *recorder) serviceState(id int64, service string) (protocol.ServiceState, bool) {
	evs, _ := r.snapshot()
	var last protocol.ServiceState
	found := false
	for _, e := range evs {
		if s, ok := e.Body.(protocol.ServiceState); ok && s.DeploymentID == id && s.Service == service {
			last, found = s, true
		}
	}
	return last, found
}

// testRuntime is a runtime the executor tests run against. NULLOPS_RUNTIME
// chooses it (default docker); another runtime registers itself from a
// test file of its own:
//
//	func init() { testRuntimes[runtime.Kubernetes] = &testRuntime{…} }
//
// Tests whose subject is Docker's own behaviour (or that set up or look at
// Docker objects with the docker CLI) call requireDocker and are skipped
// on other runtimes; every other test runs on whichever is chosen.
type testRuntime struct {
	// new returns a runtime scoped to node (the harness closes it).
	new func(t testing.TB, node string) runtime.Runtime
	// image makes ref, built on the local Docker daemon
	// (testutil.ScratchImage), startable by the runtime's workloads; nil
	// when nothing is needed.
	image func(t testing.TB, ref string)
	// objects lists what the runtime holds for deployment id of node, one
	// "kind name" string each, without going through the code under test.
	objects func(t testing.TB, node string, id int64) []string
	// publishHost is where the tests reach a published service port
	// (protocol.ServiceState HostPort).
	publishHost string
}

var testRuntimes = map[string]*testRuntime{
	runtime.Docker: {
		new: func(t testing.TB, node string) runtime.Runtime {
			rt, err := docker.New(docker.Config{Node: node, SubnetPool: "10.218.0.0/16"})
			if err != nil {
				t.Fatal(err)
			}
			return rt
		},
		objects:     dockerObjects,
		publishHost: "127.0.0.1",
	},
}

// runtimeName is the runtime under test: NULLOPS_RUNTIME, default docker.
func runtimeName() string {
	if n := os.Getenv("NULLOPS_RUNTIME"); n != "" {
		return n
	}
	return runtime.Docker
}

// currentRuntime is the runtime under test; the test fails when it is not
// registered.
func currentRuntime(t testing.TB) *testRuntime {
	t.Helper()
	tr, ok := testRuntimes[runtimeName()]
	if !ok {
		t.Fatalf("NULLOPS_RUNTIME=%s: no such runtime in the executor tests", runtimeName())
	}
	return tr
}

// requireDocker skips a test that is about Docker (why says how) when
// another runtime is under test.
func requireDocker(t testing.TB, why string) {
	t.Helper()
	if runtimeName() != runtime.Docker {
		t.Skipf("Docker only (%s); runtime under test: %s", why, runtimeName())
	}
}

// testImage builds a scratch image from dir as ref and makes it available
// to the runtime under test.
func testImage(t testing.TB, dir, ref string) string {
	t.Helper()
	return testImageOn(t, currentRuntime(t), dir, ref)
}

// testImageOn is testImage for runtime trt.
func testImageOn(t testing.TB, trt *testRuntime, dir, ref string) string {
	t.Helper()
	ref = testutil.ScratchImage(t, dir, ref)
	if trt.image != nil {
		trt.image(t, ref)
	}
	return ref
}

type env struct {
	t       testing.TB
	node    string
	dataDir string
	rt      runtime.Runtime
	trt     *testRuntime
	st      *state.Store
	rec     *recorder
	logs    *testutil.SyncBuffer
	ex      *Executor
}

// docker is the Docker runtime under test (for Docker-only tests).
func (e *env) docker() *docker.Runtime {
	e.t.Helper()
	d, ok := e.rt.(*docker.Runtime)
	if !ok {
		e.t.Fatalf("runtime %s is not Docker", e.rt.Name())
	}
	return d
}

// published is the base URL of a published service port.
func (e *env) published(hostPort int) string {
	return fmt.Sprintf("http://%s:%d", e.trt.publishHost, hostPort)
}

var nodeSeq int

func newEnv(t testing.TB, cfg Config) *env {
	return newEnvWith(t, cfg, nil)
}

// newEnvWith builds an executor on a fresh node; em, when set, receives
// every event besides the recorder.
func newEnvWith(t testing.TB, cfg Config, em Emitter) *env {
	t.Helper()
	return newEnvWrapped(t, cfg, em, nil)
}

// newEnvWrapped is newEnvWith with the executor's runtime wrapped by wrap
// (when not nil): tests give the runtime under test another runtime's
// capabilities.
func newEnvWrapped(t testing.TB, cfg Config, em Emitter, wrap func(runtime.Runtime) runtime.Runtime) *env {
	t.Helper()
	return newEnvOn(t, currentRuntime(t), cfg, em, wrap)
}

// newEnvOn is newEnvWrapped on runtime trt instead of the one under test
// (benchmarks comparing runtimes in one run).
func newEnvOn(t testing.TB, trt *testRuntime, cfg Config, em Emitter, wrap func(runtime.Runtime) runtime.Runtime) *env {
	t.Helper()
	testImageOn(t, trt, "./scripts/images/demo-web", demoWebImage)
	testImageOn(t, trt, "./scripts/images/test-plugin", testPluginImage)
	nodeSeq++
	node := fmt.Sprintf("ex%d-%d", time.Now().UnixNano()%1e8, nodeSeq)
	rt := trt.new(t, node)
	dataDir := t.TempDir()
	st, err := state.Open(filepath.Join(dataDir, state.FileName))
	if err != nil {
		t.Fatal(err)
	}
	logs := &testutil.SyncBuffer{}
	rec := newRecorder()
	var emitter Emitter = rec
	level := zerolog.DebugLevel
	if em != nil {
		emitter = teeEmitter{em, rec}
		level = zerolog.WarnLevel
	}
	exRT := rt
	if wrap != nil {
		exRT = wrap(rt)
	}
	ex := New(cfg, exRT, st, emitter, zerolog.New(io.MultiWriter(logs, zerolog.NewTestWriter(t))).Level(level))
	e := &env{t: t, node: node, dataDir: dataDir, rt: rt, trt: trt, st: st, rec: rec, logs: logs, ex: ex}
	t.Cleanup(func() {
		ex.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if objs, err := rt.ListManaged(ctx, 0); err == nil {
			_, _ = rt.Remove(ctx, objs)
		}
		st.Close()
		rt.Close()
	})
	return e
}

// objects lists what the runtime holds for deployment id with this node's
// labels, independently of the code under test.
func (e *env) objects(id int64) []string {
	e.t.Helper()
	return e.trt.objects(e.t, e.node, id)
}

// dockerObjects lists what Docker holds for deployment id of node, through
// the docker CLI.
func dockerObjects(t testing.TB, node string, id int64) []string {
	t.Helper()
	f := []string{"--filter", "label=nullops.node=" + node, "--filter", fmt.Sprintf("label=nullops.deployment=%d", id)}
	var out []string
	for _, kind := range [][]string{{"ps", "-a", "--format", "container {{.Names}}"}, {"network", "ls", "--format", "network {{.Name}}"}, {"volume", "ls", "--format", "volume {{.Name}}"}} {
		args := append(append([]string{}, kind[:len(kind)-2]...), f...)
		args = append(args, kind[len(kind)-2:]...)
		s := testutil.Docker(t, args...)
		for _, l := range strings.Split(s, "\n") {
			if strings.TrimSpace(l) != "" {
				out = append(out, l)
			}
		}
	}
	return out
}

func (e *env) assertNothingLeft(id int64) {
	e.t.Helper()
	if left := e.objects(id); len(left) > 0 {
		e.t.Fatalf("deployment %d left %s objects behind: %v", id, e.rt.Name(), left)
	}
}

// grepDataDir fails if any file under the data dir contains needle.
func (e *env) grepDataDir(needle string) {
	e.t.Helper()
	err := filepath.Walk(e.dataDir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(needle)) {
			e.t.Errorf("secret value found on disk in %s", path)
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func webNode(id string, extra func(*protocol.Node)) protocol.Node {
	n := protocol.Node{ID: id, Kind: protocol.KindService, Port: 8080, Health: &protocol.Health{HTTP: "/healthz", Timeout: "20s", Interval: "100ms"}}
	if extra != nil {
		extra(&n)
	}
	return n
}

func pluginNode(id string, params map[string]any) protocol.Node {
	return protocol.Node{ID: id, Kind: protocol.KindComponent, Plugin: "test-plugin", Params: params}
}

// specOf builds a deploy spec: every service runs image webImage, every
// component the test plugin (joined to the network).
func specOf(id int64, nodes []protocol.Node, edges [][2]string, webImage string, auth *protocol.RegistryAuth) protocol.DeploySpec {
	s := protocol.DeploySpec{
		DeploymentID: id, Name: fmt.Sprintf("d%d", id), Project: "shop", Environment: "qa", PipelineVersion: 1,
		Graph:     protocol.Graph{Nodes: nodes, Edges: edges},
		Services:  map[string]protocol.ServiceImage{},
		Plugins:   map[string]protocol.PluginImage{},
		Resources: protocol.Resources{CPU: 0.5, MemoryMB: 64},
	}
	for _, n := range nodes {
		switch n.Kind {
		case protocol.KindService:
			s.Services[n.ID] = protocol.ServiceImage{Image: webImage, Auth: auth, Ports: []int{8080}, Env: map[string]string{"SERVICE_NAME": n.ID}}
		case protocol.KindComponent:
			s.Plugins[n.ID] = protocol.PluginImage{Name: "test-plugin", Image: testPluginImage, Resources: protocol.Resources{CPU: 0.25, MemoryMB: 32}, JoinNetwork: true}
		}
	}
	return s
}

var httpClient = http.Client{Timeout: 10 * time.Second}

func httpGet(t testing.TB, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// teeEmitter journals to a then records in b.
type teeEmitter struct{ a, b Emitter }

func (t teeEmitter) Emit(ev protocol.Event) (uint64, error) {
	seq, err := t.a.Emit(ev)
	if err != nil {
		return seq, err
	}
	_, err = t.b.Emit(ev)
	return seq, err
}
