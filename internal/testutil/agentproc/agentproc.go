// Package agentproc runs nullops-agent processes for end-to-end tests: the
// agent of one node, built once per test process (testutil.GoBinary), on a
// loopback port with its own data dir and log file and the node's token in
// AGENT_TOKEN. A test can kill it (SIGKILL) and start it again on the same
// port and data dir. When the test ends the process is killed, the Docker
// objects labelled with its node name are removed (the test fails when
// some stay) and, if the test failed,
// the end of its log is shown.
package agentproc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/protocol"
)

// logTail is how much of the log a failed test shows.
const logTail = 4000

// Agent is the nullops-agent process of one node.
type Agent struct {
	Node    string // --nodename: the nullops.node label of its Docker objects
	Port    int    // --listen=127.0.0.1:Port
	DataDir string // --datadir, kept across restarts
	Log     string // its output, appended to across restarts

	t      testing.TB
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
}

// New prepares the agent of node on port; Start runs it.
func New(t testing.TB, node string, port int) *Agent {
	t.Helper()
	a := &Agent{Node: node, Port: port, DataDir: t.TempDir(), Log: filepath.Join(t.TempDir(), "agent.log"), t: t}
	t.Cleanup(func() {
		a.Kill()
		if err := testutil.RemoveLabelled(protocol.LabelNode + "=" + node); err != nil {
			t.Errorf("agent %s left Docker objects: %v", node, err)
		}
		if t.Failed() {
			b, _ := os.ReadFile(a.Log)
			if len(b) > logTail {
				b = b[len(b)-logTail:]
			}
			t.Logf("agent %s log (last %d bytes):\n%s", node, logTail, b)
		}
	})
	return a
}

// Start runs the agent with token and args (flags besides its address,
// data dir and node name); after Kill it is a restart.
func (a *Agent) Start(token string, args ...string) {
	a.t.Helper()
	bin := testutil.GoBinary(a.t, "./cmd/nullops-agent")
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd != nil {
		a.t.Fatalf("agent %s is already running", a.Node)
	}
	logf, err := os.OpenFile(a.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		a.t.Fatal(err)
	}
	base := []string{fmt.Sprintf("--listen=127.0.0.1:%d", a.Port), "--datadir=" + a.DataDir, "--nodename=" + a.Node}
	cmd := exec.Command(bin, append(base, args...)...)
	cmd.Env = append(os.Environ(), "AGENT_TOKEN="+token)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		a.t.Fatalf("start agent %s: %v", a.Node, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	a.cmd, a.exited = cmd, exited
}

// Kill ends the process with SIGKILL (no shutdown on its side) and waits
// until it has exited; it does nothing when the agent is not running.
func (a *Agent) Kill() {
	a.mu.Lock()
	cmd, exited := a.cmd, a.exited
	a.cmd, a.exited = nil, nil
	a.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}
