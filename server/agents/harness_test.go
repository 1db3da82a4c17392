package agents_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/agent/certs"
	"github.com/nullops/nullops/agent/channel"
	"github.com/nullops/nullops/agent/hostinfo"
	"github.com/nullops/nullops/agent/journal"
	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/agents"
	"github.com/nullops/nullops/server/secretbox"
	"github.com/nullops/nullops/server/store"
	"github.com/nullops/nullops/server/store/storetest"
)

// Timings of the tests' managers: a liveness deadline of one second.
const (
	pingInterval = 200 * time.Millisecond
	pingTimeout  = time.Second
)

// TestMain runs the tests (or, re-executed by the benchmarks, their
// simulated agents) and removes the binaries built for them.
func TestMain(m *testing.M) {
	if f := os.Getenv(envBenchTokens); f != "" {
		runAgentsProcess(f, os.Getenv("NULLOPS_BENCH_DIR"))
		return
	}
	code := m.Run()
	testutil.RemoveGoBinaries()
	os.Exit(code)
}

// env is a manager on a fresh database with one environment.
type env struct {
	t     *testing.T
	ctx   context.Context
	st    *store.Store
	box   *secretbox.Box
	envID int64
	mgr   *agents.Manager
	admin *agents.Admin
	opts  agents.Options
	logs  *testutil.SyncBuffer

	mu      sync.Mutex
	changes []agents.StatusChange
}

func newEnv(t *testing.T, tweak ...func(*agents.Options)) *env {
	t.Helper()
	// The agent is built (once) before a test picks its ports: a port
	// picked before a build may be taken by another process meanwhile.
	agentBinary(t)
	ctx := testutil.Context(t, 8*time.Minute)
	st := storetest.New(t)
	box, err := secretbox.New(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	e, err := store.CreateEnvironment(ctx, st.Pool, store.EnvironmentInput{Name: "qa", BaseDomain: "qa.example.com", DefaultTTLSeconds: 3600})
	if err != nil {
		t.Fatal(err)
	}
	logs := &testutil.SyncBuffer{}
	o := agents.Options{Store: st, Box: box, Log: zerolog.New(logs).Level(zerolog.DebugLevel), ServerVersion: "0.1.0-dev",
		PingInterval: pingInterval, PingTimeout: pingTimeout, DialTimeout: 2 * time.Second,
		BackoffMin: 50 * time.Millisecond, BackoffMax: 400 * time.Millisecond, RetryBlocked: 400 * time.Millisecond,
		RescanInterval: time.Second}
	for _, f := range tweak {
		f(&o)
	}
	en := &env{t: t, ctx: ctx, st: st, box: box, envID: e.ID, opts: o, logs: logs}
	en.startManager()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("manager log:\n%s", logs.String())
		}
	})
	return en
}

// startManager starts a new manager on the env's database (also used to
// simulate a server restart).
func (e *env) startManager() {
	e.mgr = agents.New(e.opts)
	e.mgr.OnStatusChange(func(_ context.Context, c agents.StatusChange) {
		e.mu.Lock()
		e.changes = append(e.changes, c)
		e.mu.Unlock()
	})
	e.admin = &agents.Admin{Store: e.st, Box: e.box, Manager: e.mgr}
	if err := e.mgr.Start(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	m := e.mgr
	e.t.Cleanup(m.Stop)
}

func (e *env) statusChanges(nodeID int64) []agents.StatusChange {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []agents.StatusChange
	for _, c := range e.changes {
		if c.NodeID == nodeID {
			out = append(out, c)
		}
	}
	return out
}

// addNode adds a node at 127.0.0.1:port and returns it with its token.
func (e *env) addNode(name string, port int, expected string) (store.Node, string) {
	e.t.Helper()
	n, tok, err := e.admin.Create(e.ctx, store.SystemActor, store.NewNode{EnvironmentID: e.envID, Name: name, Host: "127.0.0.1", Port: port, ExpectedThumbprint: expected})
	if err != nil {
		e.t.Fatal(err)
	}
	return n, tok
}

func (e *env) node(id int64) store.Node {
	e.t.Helper()
	n, err := e.st.GetNode(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// busyMachineSlack is how long the waits below keep waiting past the bound
// a test expects: the suite runs on saturated machines (a process start or
// a ping round can take seconds there), and a late answer is not a wrong
// one. A wait that needed the slack says so in the test log.
const busyMachineSlack = 2 * time.Minute

// waitStatus waits until the node row shows status and returns the row and
// how long it took. within is the bound expected on an idle machine; the
// wait fails only after within+busyMachineSlack.
func (e *env) waitStatus(id int64, status string, within time.Duration) (store.Node, time.Duration) {
	e.t.Helper()
	start := time.Now()
	var n store.Node
	for {
		n = e.node(id)
		if n.Status == status {
			took := time.Since(start)
			if took > within {
				e.t.Logf("node %d: status %q after %s (expected within %s on an idle machine)", id, status, took, within)
			}
			return n, took
		}
		if time.Since(start) > within+busyMachineSlack {
			e.t.Fatalf("node %d: status %q (%s) after %s, want %q", id, n.Status, n.StatusReason, within+busyMachineSlack, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// events returns the recorded events of a node in arrival order.
func (e *env) events(id int64) []store.AgentEvent {
	e.t.Helper()
	evs, err := e.st.ListAgentEvents(e.ctx, id, "", 100000)
	if err != nil {
		e.t.Fatal(err)
	}
	return evs
}

func (e *env) waitEvents(id int64, n int, within time.Duration) []store.AgentEvent {
	e.t.Helper()
	deadline := time.Now().Add(within + busyMachineSlack)
	for {
		evs := e.events(id)
		if len(evs) >= n || time.Now().After(deadline) {
			return evs
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// assertExactlyOnceInOrder checks that the node's recorded events are
// seq 1..n of one agent instance, each once, in arrival order.
func assertExactlyOnceInOrder(t *testing.T, evs []store.AgentEvent, n int) {
	t.Helper()
	if len(evs) != n {
		t.Fatalf("%d events recorded, want %d: %+v", len(evs), n, evs)
	}
	for i, ev := range evs {
		if ev.Seq != int64(i+1) || ev.AgentInstance != evs[0].AgentInstance {
			t.Fatalf("event %d has seq %d (instance %s); want seq %d of one instance: %+v", i, ev.Seq, ev.AgentInstance, i+1, evs)
		}
		if i > 0 && ev.ReceivedAt.Before(evs[i-1].ReceivedAt) {
			t.Fatalf("event seq %d was applied before seq %d", ev.Seq, evs[i-1].Seq)
		}
	}
}

// agentProc is a nullops-agent process.
type agentProc struct {
	t       *testing.T
	cmd     *exec.Cmd
	port    int
	debug   string
	dataDir string
	logs    *testutil.SyncBuffer
}

// agentBinary is nullops-agent, run as a real process (so kill -9 is
// real); the test-only event listener (--debug.eventslisten) exists only
// with -tags nullopsdebug.
func agentBinary(t *testing.T) string {
	t.Helper()
	return testutil.GoBinary(t, "./cmd/nullops-agent", "nullopsdebug")
}

// startAgent runs nullops-agent with the token on 127.0.0.1:port.
func startAgent(t *testing.T, dataDir, token string, port int) *agentProc {
	t.Helper()
	a := &agentProc{t: t, port: port, dataDir: dataDir, logs: &testutil.SyncBuffer{},
		debug: fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))}
	a.cmd = exec.Command(agentBinary(t), fmt.Sprintf("--listen=127.0.0.1:%d", port), "--datadir="+dataDir,
		"--log.level=debug", "--metricsinterval=1s", "--debug.eventslisten="+a.debug)
	a.cmd.Env = []string{"AGENT_TOKEN=" + token, "PATH=/usr/bin:/bin"}
	a.cmd.Stdout, a.cmd.Stderr = a.logs, a.logs
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.kill9()
		if t.Failed() {
			t.Logf("agent on port %d log:\n%s", port, a.logs.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", a.debug, time.Second)
		if err == nil {
			c.Close()
			return a
		}
		if a.cmd.ProcessState != nil || time.Now().After(deadline) {
			t.Fatalf("agent did not start: %v\n%s", err, a.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill9 kills the agent with SIGKILL (no cleanup on its side).
func (a *agentProc) kill9() {
	if a.cmd.ProcessState != nil {
		return
	}
	_ = a.cmd.Process.Signal(syscall.SIGKILL)
	_ = a.cmd.Wait()
}

// emit journals an event through the agent's test-only debug endpoint.
func (a *agentProc) emit(chunk string) uint64 {
	a.t.Helper()
	b, _ := json.Marshal(map[string]any{"type": protocol.TypeStepLog,
		"body": protocol.StepLog{DeploymentID: 1, Step: "build", Attempt: 1, Chunk: chunk, At: time.Now().UTC()}})
	resp, err := http.Post("http://"+a.debug+"/events", "application/json", bytes.NewReader(b))
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Seq uint64 }
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&out) != nil {
		a.t.Fatalf("emit: status %d", resp.StatusCode)
	}
	return out.Seq
}

func (a *agentProc) thumbprint() string {
	a.t.Helper()
	id, err := certs.Ensure(a.dataDir)
	if err != nil {
		a.t.Fatal(err)
	}
	return id.Thumbprint
}

// fakeAgent is an in-process agent: the real agent/channel server with its
// own certificate and journal on a loopback TLS listener.
type fakeAgent struct {
	srv        *channel.Server
	journal    *journal.Journal
	port       int
	thumbprint string
	closeFn    func()
}

func (f *fakeAgent) Close() { f.closeFn() }

func startFakeAgent(t testing.TB, token, version string, h channel.Handler) *fakeAgent {
	t.Helper()
	dir := t.TempDir()
	id, err := certs.Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(filepath.Join(dir, journal.FileName))
	if err != nil {
		t.Fatal(err)
	}
	srv := channel.New(channel.Options{Token: token, Version: version, Journal: j, Host: hostinfo.New(dir), Handler: h,
		Log: zerolog.Nop(), MetricsInterval: time.Hour})
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{id.Certificate}, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(protocol.PathConnect, srv)
	hs := &http.Server{Handler: mux, ErrorLog: log.New(io.Discard, "", 0), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(l) //nolint:errcheck
	var once sync.Once
	f := &fakeAgent{srv: srv, journal: j, port: l.Addr().(*net.TCPAddr).Port, thumbprint: id.Thumbprint}
	f.closeFn = func() {
		once.Do(func() {
			srv.Close()
			hs.Close()
			j.Close()
		})
	}
	t.Cleanup(f.Close)
	return f
}

func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
