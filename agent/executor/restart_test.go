package executor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/agent/docker"
	"github.com/nullops/nullops/agent/state"
	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/protocol"
)

// The restart test runs the executor in a child process (this test binary
// re-executed with helperEnv set), kills it with SIGKILL mid-pipeline and
// starts it again on the same data dir.
const helperEnv = "NULLOPS_EXECUTOR_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helperMain(mode))
	}
	os.Exit(m.Run())
}

// fileEmitter appends events as JSON lines to a file (a stand-in for the
// agent's on-disk outbox).
type fileEmitter struct {
	mu  sync.Mutex
	f   *os.File
	seq uint64
}

func (f *fileEmitter) Emit(ev protocol.Event) (uint64, error) {
	t := ev.EventType()
	b, err := json.Marshal(ev)
	if err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	line, _ := json.Marshal(map[string]any{"type": t, "body": json.RawMessage(b)})
	if _, err := f.f.Write(append(line, '\n')); err != nil {
		return 0, err
	}
	return f.seq, f.f.Sync()
}

// helperMain: mode "deploy" reads a DeploySpec on stdin, deploys it and
// waits forever; mode "recover" runs Recover and exits.
func helperMain(mode string) int {
	dataDir, node := os.Getenv("HELPER_DATA_DIR"), os.Getenv("HELPER_NODE")
	log := zerolog.New(os.Stderr)
	rt, err := docker.New(docker.Config{Node: node, SubnetPool: "10.218.0.0/16"})
	if err != nil {
		log.Error().Err(err).Msg("runtime")
		return 2
	}
	st, err := state.Open(filepath.Join(dataDir, state.FileName))
	if err != nil {
		log.Error().Err(err).Msg("state")
		return 2
	}
	f, err := os.OpenFile(filepath.Join(dataDir, "events.jsonl"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		log.Error().Err(err).Msg("events")
		return 2
	}
	ex := New(Config{}, rt, st, &fileEmitter{f: f}, log)
	ctx := context.Background()
	if err := ex.Recover(ctx); err != nil {
		log.Error().Err(err).Msg("recover")
		return 2
	}
	if mode == "recover" {
		ex.Close()
		st.Close()
		return 0
	}
	var spec protocol.DeploySpec
	if err := json.NewDecoder(os.Stdin).Decode(&spec); err != nil {
		log.Error().Err(err).Msg("read spec")
		return 2
	}
	if err := ex.Deploy(ctx, protocol.DeployRequest{Spec: spec}); err != nil {
		log.Error().Err(err).Msg("deploy")
		return 2
	}
	select {}
}

func readEvents(t *testing.T, path string) []struct {
	Type string
	Body json.RawMessage
} {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []struct {
		Type string
		Body json.RawMessage
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e struct {
			Type string          `json:"type"`
			Body json.RawMessage `json:"body"`
		}
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			out = append(out, struct {
				Type string
				Body json.RawMessage
			}{e.Type, e.Body})
		}
	}
	return out
}

// TestKillMidPipelineThenRestart: SIGKILL while a plugin runs leaves a
// half-made deployment; the restarted executor fails it, rolls it back
// (nothing orphaned) and reports why. Secrets never reach the data dir or
// the process's logs.
func TestKillMidPipelineThenRestart(t *testing.T) {
	requireDocker(t, "its helper process runs a Docker runtime")
	testutil.ScratchImage(t, "./scripts/images/demo-web", demoWebImage)
	testutil.ScratchImage(t, "./scripts/images/test-plugin", testPluginImage)
	ctx := testutil.Context(t, 3*time.Minute)
	node := fmt.Sprintf("exk%d", time.Now().UnixNano()%1e8)
	e := &env{t: t, node: node, dataDir: t.TempDir(), trt: currentRuntime(t)}
	t.Cleanup(func() {
		for _, c := range strings.Fields(testutil.Docker(t, "ps", "-aq", "--filter", "label=nullops.node="+node)) {
			_, _ = testutil.DockerErr("rm", "-f", c)
		}
		for _, n := range strings.Fields(testutil.Docker(t, "network", "ls", "-q", "--filter", "label=nullops.node="+node)) {
			_, _ = testutil.DockerErr("network", "rm", n)
		}
	})
	id := int64(time.Now().UnixNano()%1e6 + 5000000)
	const secret = "kill9-secret-Hq2-value"
	spec := specOf(id, []protocol.Node{
		webNode("web", func(n *protocol.Node) { n.Env = map[string]string{"TOKEN": "${secrets.token}"} }),
		pluginNode("slow", map[string]any{"mode": "sleep", "sleep": "120s", "stderr": "token ${secrets.token}"}),
		webNode("after", nil),
	}, [][2]string{{"web", "slow"}, {"slow", "after"}}, demoWebImage, nil)
	spec.Secrets = map[string]string{"token": secret}
	specJSON, _ := json.Marshal(spec)

	var logs bytes.Buffer
	child := func(mode string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"="+mode, "HELPER_DATA_DIR="+e.dataDir, "HELPER_NODE="+node)
		cmd.Stdin = bytes.NewReader(specJSON)
		cmd.Stdout, cmd.Stderr = &logs, &logs
		return cmd
	}
	agent := child("deploy")
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, ctx, 100*time.Millisecond, "plugin container of the slow step running", func() bool {
		return testutil.Docker(t, "ps", "-q", "--filter", "label=nullops.node="+node, "--filter", "label=nullops.step=slow") != ""
	})
	if err := agent.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = agent.Wait()
	if left := e.objects(id); len(left) < 3 {
		t.Fatalf("expected a half-made deployment after kill -9, found %v", left)
	}

	restarted := child("recover")
	if err := restarted.Run(); err != nil {
		t.Fatalf("restart: %v\n%s", err, logs.String())
	}
	events := readEvents(t, filepath.Join(e.dataDir, "events.jsonl"))
	var final protocol.DeploymentStatus
	steps := map[string]protocol.StepStatus{}
	for _, ev := range events {
		switch ev.Type {
		case protocol.TypeDeploymentStatus:
			_ = json.Unmarshal(ev.Body, &final)
		case protocol.TypeStepStatus:
			var s protocol.StepStatus
			_ = json.Unmarshal(ev.Body, &s)
			steps[s.Step] = s
		}
	}
	if final.Status != protocol.StatusFailed || final.FailedStep != "slow" || !strings.Contains(final.Reason, "agent restarted") {
		t.Fatalf("after restart: %+v", final)
	}
	if s := steps["slow"]; s.Status != protocol.StepFailed || !strings.Contains(s.Message, "agent restart") {
		t.Errorf("slow step: %+v", s)
	}
	if s := steps["web"]; s.Status != protocol.StepSucceeded {
		t.Errorf("web step: %+v", s)
	}
	if s := steps["after"]; s.Status != protocol.StepSkipped {
		t.Errorf("after step: %+v", s)
	}
	e.assertNothingLeft(id)
	e.grepDataDir(secret)
	if strings.Contains(logs.String(), secret) {
		t.Error("secret value in the agent process's logs")
	}
	// The local record says failed, so a replayed deploy of the same spec
	// would start over rather than resume.
	st, err := state.Open(filepath.Join(e.dataDir, state.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d, err := st.Get(id)
	if err != nil || d.Status != state.StatusFailed {
		t.Fatalf("local state after restart: %+v %v", d, err)
	}
}
