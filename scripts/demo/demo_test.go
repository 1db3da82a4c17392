package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMakeDemoThreeTimes runs scripts/demo.sh the way `make demo` does,
// three times, as its own instance on free ports: the first run is kept up,
// its web link is fetched through the ingress and it is stopped with Ctrl-C
// (SIGINT to the terminal's foreground process group); the second starts
// from the leftovers of the first, has its output read like
// `make demo | head -1`, keeps running after that pipe closed and is stopped
// by closing its terminal (SIGHUP to the group); the third is stopped by a
// SIGTERM to the script alone (`kill` of make, which passes it on to its
// child). Each stop deletes the deployment through the server before
// PostgreSQL stops, and after each run no container, network or process of
// it is left.
func TestMakeDemoThreeTimes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every image and runs the whole product")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	// The PostgreSQL cluster runs as the postgres user: its directory must
	// be reachable by it, which t.TempDir (0700) is not.
	dir, err := os.MkdirTemp("", "nullops-demotest-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })

	// A name of its own per run: two suites on one Docker daemon (two
	// checkouts, or CI next to a developer) must not remove each other's
	// agent container.
	instance := fmt.Sprintf("demotest-%d", os.Getpid())
	ports := freePorts(t, 5)
	env := append(os.Environ(),
		"NULLOPS_DEMO_DIR="+dir,
		"NULLOPS_DEMO_INSTANCE="+instance,
		fmt.Sprintf("NULLOPS_DEMO_PG_PORT=%d", ports[0]),
		fmt.Sprintf("NULLOPS_DEMO_UI_PORT=%d", ports[1]),
		fmt.Sprintf("NULLOPS_DEMO_INGRESS_PORT=%d", ports[2]),
		fmt.Sprintf("NULLOPS_DEMO_REGISTRY_PORT=%d", ports[3]),
		fmt.Sprintf("NULLOPS_DEMO_AGENT_PORT=%d", ports[4]),
	)
	webLink := regexp.MustCompile(fmt.Sprintf(`web\s+http://(web\.demo\.local\.localhost):%d/`, ports[2]))

	// Run 1: up until Ctrl-C.
	run := startDemo(t, root, env)
	out := run.waitFor(t, "press Ctrl-C", 8*time.Minute)
	for _, want := range []string{"admin / ", "developer / ", fmt.Sprintf("http://localhost:%d", ports[1])} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	m := webLink.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no web link in the output:\n%s", out)
	}
	code, body, err := get(context.Background(), fmt.Sprintf("http://127.0.0.1:%d/", ports[2]), m[1])
	if err != nil || code != 200 {
		t.Fatalf("GET %s through the ingress: %d %v %s", m[1], code, err, body)
	}
	// The plugin step's outputs reached the web service's environment.
	if !strings.Contains(body, "hello from web") || !strings.Contains(body, "message: api answered 200 after") {
		t.Errorf("web answered:\n%s", body)
	}
	run.interrupt(t)
	assertNothingLeft(t, instance, ports)

	// Run 2: starts over (same credentials file, fresh database), its
	// output read like `make demo | head -1`: the reader goes away after
	// the first line. The demo keeps running, then its terminal is closed:
	// it deletes the deployment through the server (still up, with its
	// PostgreSQL) and removes everything, as on Ctrl-C, and exits 0.
	run2 := startDemoHead(t, root, env)
	run2.waitFor(t, "press Ctrl-C", 8*time.Minute)
	if code, body, err := get(context.Background(), fmt.Sprintf("http://127.0.0.1:%d/", ports[2]), m[1]); err != nil || code != 200 {
		t.Errorf("after its output pipe closed, GET %s through the ingress: %d %v %s", m[1], code, err, body)
	}
	if err := syscall.Kill(-run2.cmd.Process.Pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	assertDeletedThroughServer(t, "the terminal closed", run2.wait(t, 3*time.Minute))
	creds, err := os.ReadFile(filepath.Join(dir, "credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	if pw := regexp.MustCompile(`admin / (\S+)`).FindStringSubmatch(out); pw == nil || !strings.Contains(string(creds), `"`+pw[1]+`"`) {
		t.Errorf("admin password changed between runs")
	}
	assertNothingLeft(t, instance, ports)

	// Run 3: SIGTERM to bash alone, as make sends it to its child when it
	// is killed itself; nullops-demo gets no signal of its own.
	run3 := startDemo(t, root, env)
	run3.waitFor(t, "press Ctrl-C", 8*time.Minute)
	if err := syscall.Kill(run3.cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	assertDeletedThroughServer(t, "the script got SIGTERM", run3.wait(t, 3*time.Minute))
	assertNothingLeft(t, instance, ports)
}

// assertDeletedThroughServer checks a stopped demo's output: an orderly
// stop whose deployment the server deleted (server and PostgreSQL still up
// while the demo waited for it), not one whose containers the demo had to
// remove by hand.
func assertDeletedThroughServer(t *testing.T, how, out string) {
	t.Helper()
	if !strings.Contains(out, "demo: stopping") || !regexp.MustCompile(`deployment \d+: delet`).MatchString(out) {
		t.Errorf("no orderly stop when %s:\n%s", how, out)
	}
	for _, failed := range []string{"delete deployment:", "not deleted in time"} {
		if strings.Contains(out, failed) {
			t.Errorf("the deployment was not deleted through the server when %s (%q):\n%s", how, failed, out)
		}
	}
}

// startDemoHead is startDemo with stdout read like `| head -1`: one line,
// then the pipe is closed. Stderr is kept.
func startDemoHead(t *testing.T, root string, env []string) *demoRun {
	t.Helper()
	cmd := exec.Command("bash", "scripts/demo.sh")
	cmd.Dir, cmd.Env = root, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	r := &demoRun{cmd: cmd, done: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_, _ = bufio.NewReader(stdout).ReadString('\n')
		stdout.Close()
	}()
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			r.mu.Lock()
			r.out.WriteString(sc.Text() + "\n")
			r.mu.Unlock()
		}
	}()
	go func() {
		err := cmd.Wait()
		pw.Close()
		r.done <- err
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	})
	return r
}

type demoRun struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	done chan error
}

func startDemo(t *testing.T, root string, env []string) *demoRun {
	t.Helper()
	cmd := exec.Command("bash", "scripts/demo.sh")
	cmd.Dir, cmd.Env = root, env
	// Own process group, like a terminal's foreground job: Ctrl-C reaches
	// bash and nullops-demo together.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	r := &demoRun{cmd: cmd, done: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			r.mu.Lock()
			r.out.WriteString(sc.Text() + "\n")
			r.mu.Unlock()
		}
	}()
	go func() {
		err := cmd.Wait()
		pw.Close()
		r.done <- err
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	})
	return r
}

func (r *demoRun) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.String()
}

func (r *demoRun) waitFor(t *testing.T, marker string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for !strings.Contains(r.output(), marker) {
		select {
		case err := <-r.done:
			t.Fatalf("demo exited (%v) before %q:\n%s", err, marker, r.output())
		case <-deadline:
			t.Fatalf("no %q after %s:\n%s", marker, timeout, r.output())
		case <-time.After(200 * time.Millisecond):
		}
	}
	return r.output()
}

func (r *demoRun) wait(t *testing.T, timeout time.Duration) string {
	t.Helper()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("demo failed: %v\n%s", err, r.output())
		}
	case <-time.After(timeout):
		t.Fatalf("demo still running after %s:\n%s", timeout, r.output())
	}
	time.Sleep(100 * time.Millisecond) // let the reader drain
	return r.output()
}

func (r *demoRun) interrupt(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(-r.cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	out := r.wait(t, 3*time.Minute)
	if !strings.Contains(out, "demo: stopping") {
		t.Errorf("no orderly stop:\n%s", out)
	}
}

// assertNothingLeft checks what a user would: no container or network of
// the demo, nothing listening on its ports.
func assertNothingLeft(t *testing.T, instance string, ports []int) {
	t.Helper()
	for _, args := range [][]string{
		{"ps", "-aq", "--filter", "label=nullops.node=" + instance + "-local"},
		{"ps", "-aq", "--filter", "name=^nullops-" + instance + "-agent$"},
		{"network", "ls", "-q", "--filter", "label=nullops.node=" + instance + "-local"},
	} {
		if out, err := docker(args...); err != nil || out != "" {
			t.Errorf("docker %s: %q %v (want nothing left)", strings.Join(args, " "), out, err)
		}
	}
	// Nothing pulled from the demo's registry keeps a tag.
	if out, err := docker("images", "--format", "{{.Repository}}:{{.Tag}}"); err != nil {
		t.Errorf("docker images: %v", err)
	} else {
		for _, ref := range strings.Fields(out) {
			if strings.HasPrefix(ref, fmt.Sprintf("127.0.0.1:%d/", ports[3])) {
				t.Errorf("image tag %s pulled for the demo is left", ref)
			}
		}
	}
	for _, p := range ports {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p), time.Second)
		if err == nil {
			c.Close()
			t.Errorf("port %d still answers after the demo stopped", p)
		}
	}
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}
