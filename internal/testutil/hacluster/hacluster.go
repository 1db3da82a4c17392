// Package hacluster starts a highly available control plane for tests:
// N real nullops-server processes (the built binary) on one PostgreSQL
// database, behind a real HAProxy that health-checks each replica's
// /readyz and retries what is safe to retry (docs/high-availability.md).
// Replicas can be killed (SIGKILL), frozen (SIGSTOP/SIGCONT), stopped
// gracefully (SIGTERM) and restarted on the same port. The server binary
// is built once per test process (testutil.GoBinary): the TestMain of a
// package using a cluster calls testutil.RemoveGoBinaries.
package hacluster

import (
	"bufio"
	"context"
	"fmt"
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

	"github.com/nullops/nullops/internal/testutil"
)

// Options configure a cluster.
type Options struct {
	Replicas    int    // default 3
	DatabaseURL string // required: a migrated or empty database
	// Args are extra nullops-server flags for every replica
	// ("--cleanup.schedule=@every 1s").
	Args []string
	// Env is added to every replica's environment (NULLOPS_...).
	Env []string
}

// Cluster is the running replicas and the load balancer in front.
type Cluster struct {
	// URL is the load balancer's address (http://127.0.0.1:port).
	URL      string
	Replicas []*Replica

	t       testing.TB
	dir     string
	haproxy *exec.Cmd
	sock    string
}

// Replica is one nullops-server process.
type Replica struct {
	Name string // r1, r2, …: the HAProxy server name
	Port int
	Log  string // its log file (appended to across restarts)

	c   *Cluster
	mu  sync.Mutex
	cmd *exec.Cmd
	// exited is closed when the current process has exited.
	exited chan struct{}
}

// Start starts the replicas, waits until each is ready, then starts HAProxy
// and waits until it sees every replica up.
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	if haproxyBin() == "" {
		t.Fatal("haproxy is not installed (scripts/setup.sh installs it)")
	}
	if o.Replicas == 0 {
		o.Replicas = 3
	}
	c := &Cluster{t: t, dir: t.TempDir()}
	bin := testutil.GoBinary(t, "./cmd/nullops-server")
	for i := range o.Replicas {
		r := &Replica{Name: fmt.Sprintf("r%d", i+1), Port: testutil.FreePort(t), c: c}
		r.Log = filepath.Join(c.dir, r.Name+".log")
		c.Replicas = append(c.Replicas, r)
		r.configure(bin, o)
	}
	t.Cleanup(func() {
		for _, r := range c.Replicas {
			r.Thaw()
			r.signal(syscall.SIGKILL)
			r.wait(10 * time.Second)
		}
		if t.Failed() {
			for _, r := range c.Replicas {
				b, _ := os.ReadFile(r.Log)
				t.Logf("replica %s warnings and errors (last 40):\n%s", r.Name, problems(b, 40))
				t.Logf("replica %s log (last 3000 bytes):\n%s", r.Name, tail(b, 3000))
			}
			b, _ := os.ReadFile(filepath.Join(c.dir, "haproxy.log"))
			t.Logf("haproxy log (last 2000 bytes):\n%s", tail(b, 2000))
			// The whole logs outlive the test's temporary directory.
			if keep, err := os.MkdirTemp("", "hacluster-logs-"); err == nil {
				for _, r := range c.Replicas {
					if b, err := os.ReadFile(r.Log); err == nil {
						_ = os.WriteFile(filepath.Join(keep, r.Name+".log"), b, 0o600)
					}
				}
				t.Logf("replica logs kept in %s", keep)
			}
		}
	})
	// The first replica migrates the database alone; the others start
	// once it is ready (concurrent starts are fine too: migrations take
	// a lock, but one at a time keeps a busy machine's start quick).
	ctx := testutil.Context(t, 3*time.Minute)
	for _, r := range c.Replicas {
		r.Start(t)
		r.WaitReady(t, ctx)
	}
	c.startHAProxy(t)
	for _, r := range c.Replicas {
		c.WaitState(t, ctx, r, true)
	}
	return c
}

// problems returns the last n warning and error lines of a log.
func problems(b []byte, n int) string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, `"level":"warn"`) || strings.Contains(l, `"level":"error"`) {
			out = append(out, l)
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return strings.Join(out, "\n")
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// command line and environment of a replica (kept for restarts).
func (r *Replica) configure(bin string, o Options) {
	args := append([]string{fmt.Sprintf("--listen=127.0.0.1:%d", r.Port)}, o.Args...)
	env := append(os.Environ(), "NULLOPS_DATABASE_URL="+o.DatabaseURL)
	env = append(env, o.Env...)
	r.mu.Lock()
	r.cmd = &exec.Cmd{Path: bin, Args: append([]string{bin}, args...), Env: env}
	r.mu.Unlock()
}

// Start starts (or restarts) the replica's process on its port.
func (r *Replica) Start(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	logf, err := os.OpenFile(r.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := &exec.Cmd{Path: r.cmd.Path, Args: r.cmd.Args, Env: r.cmd.Env, Stdout: logf, Stderr: logf}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start replica %s: %v", r.Name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	r.cmd, r.exited = cmd, exited
}

// Pid is the current process's id (0 before Start).
func (r *Replica) Pid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil || r.cmd.Process == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

func (r *Replica) signal(s syscall.Signal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Signal(s)
	}
}

func (r *Replica) wait(d time.Duration) bool {
	r.mu.Lock()
	ch := r.exited
	r.mu.Unlock()
	if ch == nil {
		return true
	}
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

// Kill ends the replica with SIGKILL (no shutdown at all) and waits for it.
func (r *Replica) Kill(t testing.TB) {
	t.Helper()
	r.Thaw()
	r.signal(syscall.SIGKILL)
	if !r.wait(30 * time.Second) {
		t.Fatalf("replica %s did not die", r.Name)
	}
}

// Stop shuts the replica down gracefully (SIGTERM) and waits for it to exit.
func (r *Replica) Stop(t testing.TB) {
	t.Helper()
	r.signal(syscall.SIGTERM)
	if !r.wait(2 * time.Minute) {
		t.Fatalf("replica %s did not shut down within 2 minutes", r.Name)
	}
}

// Freeze stops the process (SIGSTOP): its sockets stay open, it answers
// nothing. Thaw resumes it.
func (r *Replica) Freeze() { r.signal(syscall.SIGSTOP) }

// Thaw resumes a frozen process (SIGCONT).
func (r *Replica) Thaw() { r.signal(syscall.SIGCONT) }

// URL is the replica's own address (bypassing the load balancer).
func (r *Replica) URL() string { return fmt.Sprintf("http://127.0.0.1:%d", r.Port) }

// WaitReady waits until the replica's /readyz answers 200.
func (r *Replica) WaitReady(t testing.TB, ctx context.Context) {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second}
	testutil.WaitFor(t, ctx, 50*time.Millisecond, "replica "+r.Name+" ready", func() bool {
		res, err := hc.Get(r.URL() + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
}

// Config is HAProxy's configuration: round robin over the replicas, each
// checked on /readyz every 250 ms (down after 2 failures, up after 1
// success). A request is retried on another replica when no connection
// could be made (any method: nothing was sent); GET and HEAD also on an
// empty response or a timeout.
func (c *Cluster) Config(port int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `global
	maxconn 4096
	stats socket %s mode 600 level admin
	log stderr format raw local0 info

defaults
	mode http
	log global
	option httplog
	option dontlognull
	timeout connect 2s
	timeout client 5m
	timeout server 5m
	timeout tunnel 1h
	timeout http-request 30s
	retries 3
	option redispatch 1
	retry-on conn-failure empty-response response-timeout

frontend api
	bind 127.0.0.1:%d
	default_backend replicas

backend replicas
	balance roundrobin
	option httpchk GET /readyz
	http-check expect status 200
	http-request disable-l7-retry unless METH_GET || METH_HEAD
	default-server inter 250ms fastinter 250ms downinter 250ms fall 2 rise 1
`, c.sock, port)
	for _, r := range c.Replicas {
		fmt.Fprintf(&b, "\tserver %s 127.0.0.1:%d check\n", r.Name, r.Port)
	}
	return b.String()
}

func (c *Cluster) startHAProxy(t testing.TB) {
	t.Helper()
	port := testutil.FreePort(t)
	c.sock = filepath.Join(c.dir, "haproxy.sock")
	cfg := filepath.Join(c.dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(c.Config(port)), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(c.dir, "haproxy.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(haproxyBin(), "-db", "-f", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	c.haproxy = cmd
	c.URL = fmt.Sprintf("http://127.0.0.1:%d", port)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
}

// haproxyBin is the haproxy executable ("" if none): on PATH, or in
// /usr/sbin where Debian puts it (not on a non-root PATH).
func haproxyBin() string {
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/haproxy"); err == nil {
		return "/usr/sbin/haproxy"
	}
	return ""
}

// States returns HAProxy's view of each replica: "UP", "DOWN", …
func (c *Cluster) States(t testing.TB) map[string]string {
	t.Helper()
	return c.stat(17)
}

// Sessions returns the number of requests (streams) each replica serves
// through HAProxy now: an open event stream or log follow counts one.
func (c *Cluster) Sessions(t testing.TB) map[string]string {
	t.Helper()
	return c.stat(4)
}

// Serving waits until exactly one request is open through HAProxy and
// returns the replica serving it.
func (c *Cluster) Serving(t testing.TB, ctx context.Context) *Replica {
	t.Helper()
	var found *Replica
	testutil.WaitFor(t, ctx, 20*time.Millisecond, "one open request through haproxy", func() bool {
		found = nil
		open := 0
		for name, n := range c.Sessions(t) {
			if n != "0" && n != "" {
				open++
				for _, r := range c.Replicas {
					if r.Name == name {
						found = r
					}
				}
			}
		}
		return open == 1 && found != nil
	})
	return found
}

// stat returns one field of HAProxy's "show stat" for each replica
// (field numbers as in the CSV header: 4 scur, 17 status).
func (c *Cluster) stat(field int) map[string]string {
	conn, err := net.DialTimeout("unix", c.sock, 5*time.Second)
	if err != nil {
		return nil
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("show stat\n")); err != nil {
		return nil
	}
	out := map[string]string{}
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ",")
		// pxname,svname,...; status is field 17 (0-based).
		if len(f) > 17 && f[0] == "replicas" && f[1] != "BACKEND" {
			out[f[1]] = f[field]
		}
	}
	return out
}

// WaitState waits until HAProxy sees r up (or down).
func (c *Cluster) WaitState(t testing.TB, ctx context.Context, r *Replica, up bool) {
	t.Helper()
	want := map[bool]string{true: "UP", false: "DOWN"}[up]
	testutil.WaitFor(t, ctx, 50*time.Millisecond, "haproxy sees "+r.Name+" "+want, func() bool {
		return strings.HasPrefix(c.States(t)[r.Name], want)
	})
}

// Restart stops the replica gracefully, waits until HAProxy took it out,
// starts it again and waits until HAProxy takes it back in: one step of a
// rolling restart.
func (c *Cluster) Restart(t testing.TB, ctx context.Context, r *Replica) {
	t.Helper()
	r.Stop(t)
	c.WaitState(t, ctx, r, false)
	r.Start(t)
	r.WaitReady(t, ctx)
	c.WaitState(t, ctx, r, true)
}
