package kube

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/plugins/sdk"
	"github.com/nullops/nullops/protocol"
)

func TestSplitResult(t *testing.T) {
	for _, c := range []struct{ log, rest, result string }{
		{"", "", ""},
		{`{"outputs":{"a":"1"}}` + "\n", "", `{"outputs":{"a":"1"}}` + "\n"},
		{"hello\nworld\n" + `{"outputs":{}}` + "\n", "hello\nworld\n", `{"outputs":{}}` + "\n"},
		// stdout and stderr are copied to the log separately: the result
		// may come before what the plugin wrote on stderr first.
		{`{"outputs":{"k":"v"},"message":"done"}` + "\nhello-lost\n", "hello-lost\n", `{"outputs":{"k":"v"},"message":"done"}` + "\n"},
		// Pretty-printed: the whole object, not its inner one.
		{"log {x}\n{\n  \"outputs\": {\n    \"a\": \"1\"\n  }\n}\n", "log {x}\n", "{\n  \"outputs\": {\n    \"a\": \"1\"\n  }\n}\n"},
		{"failing on purpose\n", "failing on purpose\n", ""},
		{"this is not json\n", "this is not json\n", ""},
		// JSON log lines around the result stay in the rest; the result is
		// the object with outputs.
		{`{"level":"info"}` + "\n" + `{"outputs":{}}` + "\n" + `{"level":"debug"}`, `{"level":"info"}` + "\n" + `{"level":"debug"}`, `{"outputs":{}}` + "\n"},
		// One object without outputs is the result; two are not told apart.
		{"x\n" + `{"message":"m"}` + "\n", "x\n", `{"message":"m"}` + "\n"},
		{`{"a":1}` + "\n" + `{"b":2}` + "\n", `{"a":1}` + "\n" + `{"b":2}` + "\n", ""},
		// An object not alone on its line is not a result.
		{`{"outputs":{}} trailing` + "\n", `{"outputs":{}} trailing` + "\n", ""},
	} {
		rest, result := splitResult([]byte(c.log))
		if string(rest) != c.rest || string(result) != c.result {
			t.Errorf("splitResult(%q) = %q, %q; want %q, %q", c.log, rest, result, c.rest, c.result)
		}
	}
}

// pluginInput is the stdin document of the test plugin.
func pluginInput(t *testing.T, id int64, params map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(sdk.Input{Deployment: sdk.Deployment{ID: id, Name: "d"}, Step: "mk", Attempt: 1, Params: params})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOneShotRecoversLostOutput: an attach that delivers nothing (as
// containerd's CRI attach does when the process answered before the
// attach's streams were added) still gives the plugin's result and its
// stderr, read from the ended pod's log; a failing plugin's stderr too.
func TestOneShotRecoversLostOutput(t *testing.T) {
	t.Parallel()
	rt := testRuntime(t)
	img := pluginImg(t)
	ctx := testutil.Context(t, 4*time.Minute)
	ns, err := rt.EnsureNamespace(ctx, 23, protocol.Resources{})
	if err != nil {
		t.Fatal(err)
	}
	loseAll := func(ctx context.Context, ns, pod string, input []byte, _, _ io.Writer) error {
		return rt.attachStream(ctx, ns, pod, input, io.Discard, io.Discard)
	}
	loseStderr := func(ctx context.Context, ns, pod string, input []byte, stdout, _ io.Writer) error {
		return rt.attachStream(ctx, ns, pod, input, stdout, io.Discard)
	}
	for _, c := range []struct {
		hook      func(ctx context.Context, ns, pod string, input []byte, stdout, stderr io.Writer) error
		params    map[string]any
		code      int
		stdout    string
		stderr    string
		recovered int64
	}{
		{loseAll, map[string]any{"outputs": map[string]any{"k": "v1"}, "stderr": "hello-lost"}, 0, `"k":"v1"`, "hello-lost", 1},
		{loseAll, map[string]any{"mode": "exit", "code": 7}, 7, "", "failing on purpose", 2},
		{loseStderr, map[string]any{"outputs": map[string]any{"k": "v3"}, "stderr": "hello-stderr-lost"}, 0, `"k":"v3"`, "hello-stderr-lost", 3},
	} {
		rt.attachHook = c.hook
		var stdout, stderr bytes.Buffer
		res, err := rt.RunOneShot(ctx, OneShotSpec{
			DeploymentID: 23, Step: "mk", Attempt: 1, Image: img, Input: pluginInput(t, 23, c.params), Network: ns.Name,
			Timeout: time.Minute, Stdout: &stdout, Stderr: &stderr,
		})
		if err != nil || res.ExitCode != c.code {
			t.Fatalf("%v: %+v, %v (stderr %q)", c.params, res, err, stderr.String())
		}
		if c.stdout != "" && (!strings.Contains(stdout.String(), c.stdout) || !oneJSONObject(stdout.Bytes())) {
			t.Errorf("%v: stdout %q, want the result with %s", c.params, stdout.String(), c.stdout)
		}
		if c.stdout == "" && stdout.Len() != 0 {
			t.Errorf("%v: stdout %q, want none", c.params, stdout.String())
		}
		if !strings.Contains(stderr.String(), c.stderr) || !strings.Contains(stderr.String(), RecoveredNote) || strings.Contains(stderr.String(), `"outputs"`) {
			t.Errorf("%v: stderr %q, want %q and the note, without the result", c.params, stderr.String(), c.stderr)
		}
		if n := rt.recovered.Load(); n != c.recovered {
			t.Errorf("%v: %d recoveries, want %d", c.params, n, c.recovered)
		}
	}
}

// TestOneShotOutputIsNotLost runs the test plugin many times through the
// real attach (NULLOPS_K8S_ONESHOT_RUNS, default 30; three at a time): every run must give
// its result on stdout and its line on stderr, and a failing one its
// stderr. How often the attach alone lost the output (and the pod's log
// gave it) is logged.
func TestOneShotOutputIsNotLost(t *testing.T) {
	t.Parallel()
	rt := testRuntime(t)
	img := pluginImg(t)
	runs := 30
	if v, err := strconv.Atoi(os.Getenv("NULLOPS_K8S_ONESHOT_RUNS")); err == nil && v > 0 {
		runs = v
	}
	ctx := testutil.Context(t, time.Duration(runs)*20*time.Second+time.Minute)
	ns, err := rt.EnsureNamespace(ctx, 24, protocol.Resources{})
	if err != nil {
		t.Fatal(err)
	}
	// Three at a time, as a deployment's independent plugin steps run.
	const parallel = 3
	var (
		mu          sync.Mutex
		lost        []string
		failed      []string
		failingRuns int
		next        = make(chan int)
		wg          sync.WaitGroup
	)
	run := func(i int) {
		params := map[string]any{"outputs": map[string]any{"run": strconv.Itoa(i)}, "stderr": fmt.Sprintf("hello-%d", i)}
		wantOut, wantErr := fmt.Sprintf(`"run":"%d"`, i), fmt.Sprintf("hello-%d", i)
		if i%5 == 4 {
			params, wantOut, wantErr = map[string]any{"mode": "exit", "code": 7}, "", "failing on purpose"
		}
		var stdout, stderr bytes.Buffer
		res, err := rt.RunOneShot(ctx, OneShotSpec{
			DeploymentID: 24, Step: "mk", Attempt: i + 1, Image: img, Input: pluginInput(t, 24, params), Network: ns.Name,
			Timeout: time.Minute, Stdout: &stdout, Stderr: &stderr,
		})
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			failed = append(failed, fmt.Sprintf("run %d: %v", i, err))
		case wantOut == "" && res.ExitCode != 7 || wantOut != "" && res.ExitCode != 0:
			failed = append(failed, fmt.Sprintf("run %d: exit %d (stderr %q)", i, res.ExitCode, stderr.String()))
		case wantOut != "" && (!oneJSONObject(stdout.Bytes()) || !strings.Contains(stdout.String(), wantOut)) ||
			!strings.Contains(stderr.String(), wantErr):
			lost = append(lost, fmt.Sprintf("run %d: stdout %q, stderr %q", i, stdout.String(), stderr.String()))
		}
		if wantOut == "" {
			failingRuns++
		}
	}
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				run(i)
			}
		}()
	}
	for i := 0; i < runs; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	if len(failed) > 0 {
		t.Fatalf("%d of %d runs failed:\n%s", len(failed), runs, strings.Join(failed, "\n"))
	}
	t.Logf("%d runs (%d failing on purpose): the attach lost output in %d, read from the pod's log; %d lost",
		runs, failingRuns, rt.recovered.Load(), len(lost))
	if len(lost) > 0 {
		t.Fatalf("output lost in %d of %d runs:\n%s", len(lost), runs, strings.Join(lost, "\n"))
	}
}
