package e2e

// The harness: a real nullops-server (server/app, in process, serving HTTP
// on loopback with its agent connection manager, event listener and cleanup
// cron), real nullops-agent processes, a real docker-registry, real Docker
// and PostgreSQL. Tests talk to the server through its HTTP API only, the
// way a user or the CLI would; Docker is inspected to check what is left.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	ptypes "github.com/traefik/paerser/types"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/internal/testutil/agentproc"
	"github.com/nullops/nullops/server/app"
	"github.com/nullops/nullops/server/config"
	"github.com/nullops/nullops/server/store/storetest"
)

const (
	adminUser = "admin"
	adminPass = "e2e-admin-password-1"
	userPass  = "e2e-user-password-12"
)

// server is a running control plane.
type server struct {
	URL      string
	App      *app.App
	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
}

// stop shuts the server down (as on SIGTERM) and waits for it.
func (s *server) stop(t *testing.T) {
	s.stopOnce.Do(func() {
		s.cancel()
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			t.Error("server did not shut down within 30s")
		}
	})
}

func startServer(t *testing.T, opts ...func(*config.Config)) *server {
	t.Helper()
	cfg := config.Defaults()
	cfg.Listen = "127.0.0.1:0"
	cfg.Database.URL = storetest.URL(t)
	cfg.Database.MaxConns = 20
	cfg.Secret.Key = "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI="
	cfg.Admin = config.Admin{Username: adminUser, Password: adminPass}
	cfg.Ingress.Token = "e2e-ingress-token-123"
	cfg.Cleanup.Schedule = "@every 1s"
	cfg.Agents.PingInterval = ptypes.Duration(500 * time.Millisecond)
	cfg.Agents.PingTimeout = ptypes.Duration(2 * time.Second)
	cfg.Agents.BackoffMin = ptypes.Duration(200 * time.Millisecond)
	cfg.Agents.BackoffMax = ptypes.Duration(time.Second)
	// Most tests watch a node's deployments go offline; those about the
	// grace set their own.
	cfg.Agents.OfflineGrace = ptypes.Duration(time.Second)
	for _, o := range opts {
		o(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(t.TempDir(), "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	log := zerolog.New(logf).Level(zerolog.InfoLevel).With().Timestamp().Logger()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatalf("app.New: %v", err)
	}
	if err := a.Listen(); err != nil {
		cancel()
		t.Fatal(err)
	}
	s := &server{URL: "http://" + a.Addr(), App: a, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- a.Serve(ctx) }()
	t.Cleanup(func() {
		s.stop(t)
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("server log (last 6000 bytes):\n%s", tail(b, 6000))
		}
	})
	return s
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// client calls the API with an API token (or a session while logging in).
type client struct {
	t     *testing.T
	base  string
	token string
	http  *http.Client
}

type response struct {
	Status int
	Body   []byte
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %d %q: %v", r.Status, r.Body, err)
	}
}

func (r response) want(t *testing.T, status int) response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	return r
}

func (r response) errorMessage() string {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Error.Code + ": " + e.Error.Message
}

func (c *client) do(method, path string, body any) response {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		if s, ok := body.(string); ok {
			rd = strings.NewReader(s)
		} else {
			b, err := json.Marshal(body)
			if err != nil {
				c.t.Fatal(err)
			}
			rd = bytes.NewReader(b)
		}
	}
	req, err := http.NewRequest(method, c.base+"/api/v1"+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Body: b}
}

func (c *client) get(path string) response            { c.t.Helper(); return c.do("GET", path, nil) }
func (c *client) post(path string, body any) response { c.t.Helper(); return c.do("POST", path, body) }
func (c *client) put(path string, body any) response  { c.t.Helper(); return c.do("PUT", path, body) }
func (c *client) del(path string) response            { c.t.Helper(); return c.do("DELETE", path, nil) }

// stream opens a streaming GET; the caller closes the body.
func (c *client) stream(ctx context.Context, path string, accept string) *http.Response {
	c.t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+"/api/v1"+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		c.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return resp
}

// login logs in with a password and returns a client using a fresh API
// token of that user (as the CLI would).
func login(t *testing.T, base, username, password string) *client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 60 * time.Second}
	b, _ := json.Marshal(map[string]string{"username": username, "password": password})
	resp, err := hc.Post(base+"/api/v1/auth/login", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login %s: %d %s", username, resp.StatusCode, body)
	}
	var me struct {
		CSRF string `json:"csrf_token"`
	}
	_ = json.Unmarshal(body, &me)
	req, _ := http.NewRequest("POST", base+"/api/v1/tokens", strings.NewReader(`{"name":"e2e"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", me.CSRF)
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create token for %s: %d %s", username, resp.StatusCode, body)
	}
	var tok struct {
		Token string `json:"token"`
	}
	_ = json.Unmarshal(body, &tok)
	return &client{t: t, base: base, token: tok.Token, http: &http.Client{Timeout: 60 * time.Second}}
}

// idOf decodes {"id": n} from a creation response.
func idOf(t *testing.T, r response) int64 {
	t.Helper()
	var v struct {
		ID int64 `json:"id"`
	}
	r.decode(t, &v)
	if v.ID == 0 {
		t.Fatalf("no id in %s", r.Body)
	}
	return v.ID
}

// --- agents -------------------------------------------------------------------

// defaultParallel is how many tests marked t.Parallel run at once unless
// -parallel is given. They spend most of their time waiting for agents,
// Docker and timers, not on the CPU: GOMAXPROCS (go test's default, 2 on a
// small CI machine) would leave most of that waiting in sequence. More
// than 4 at once starved the containers on a 2-core machine already busy
// with other packages (a demo service not healthy within its minute).
const defaultParallel = 4

// TestMain runs the tests (as many parallel ones at once as -parallel says,
// defaultParallel without it) and removes the binaries built for this test
// process.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		if err := flag.Set("test.parallel", strconv.Itoa(defaultParallel)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	code := m.Run()
	testutil.RemoveGoBinaries()
	os.Exit(code)
}

// uniqueSeq numbers the names newUnique hands out in this process.
var uniqueSeq atomic.Int64

// newUnique returns a short name part of one test: the suffix of its node
// names (the nullops.node label of their Docker objects), agent images,
// containers, volumes and networks. Tests run in parallel, and other test
// processes share the Docker daemon: the process's start time tells
// processes apart, the sequence number the tests of one process.
func newUnique() string {
	return fmt.Sprintf("%x-%d", processStart&0xffffff, uniqueSeq.Add(1))
}

var processStart = time.Now().UnixNano()

// agent is a nullops-agent process of one node.
type agent struct {
	node  string // unique node name: the nullops.node label of its Docker objects
	port  int
	token string // given to the agent at each start
	cpus  float64
	memMB int64
	// realUsage: report the host's real OS-level usage (no
	// --debug.zerousage), for tests of placement under load.
	realUsage bool
	// args are added to the agent's command line (e.g. another runtime).
	args []string

	proc *agentproc.Agent
}

// agentOption changes how an agent is started.
type agentOption func(*agent)

// realUsage makes the agent report the host's real OS-level usage.
func realUsage(a *agent) { a.realUsage = true }

func newAgent(t *testing.T, node string, port int, token string, cpus float64, memMB int64, opts ...agentOption) *agent {
	a := &agent{node: node, port: port, token: token, cpus: cpus, memMB: memMB, proc: agentproc.New(t, node, port)}
	for _, o := range opts {
		o(a)
	}
	a.start()
	return a
}

func (a *agent) start() {
	args := []string{"--metricsinterval=1s", "--log.level=debug"}
	if !a.realUsage {
		// This machine is shared and busy: OS-level usage would make
		// placement depend on the load; reservations decide in tests.
		args = append(args, "--debug.zerousage=true")
	} else {
		// Follow the load within seconds, not the default minute.
		args = append(args, "--capacity.othercpusmoothing=5s")
	}
	if a.cpus > 0 {
		args = append(args, fmt.Sprintf("--capacity.cpus=%g", a.cpus), fmt.Sprintf("--capacity.memorymb=%d", a.memMB))
	}
	a.proc.Start(a.token, append(args, a.args...)...)
}

// kill stops the agent with SIGKILL (no graceful shutdown).
func (a *agent) kill() { a.proc.Kill() }

// --- Docker ---------------------------------------------------------------------

// dockerObjects lists the containers, networks and volumes of a node's
// deployment (by label), as "kind name" lines.
func dockerObjects(t *testing.T, node string, deploymentID int64) []string {
	t.Helper()
	filters := []string{"--filter", "label=nullops.node=" + node, "--filter", fmt.Sprintf("label=nullops.deployment=%d", deploymentID)}
	var out []string
	for _, kind := range []struct{ name, fmt string }{
		{"container", "{{.Names}}"}, {"network", "{{.Name}}"}, {"volume", "{{.Name}}"},
	} {
		args := []string{kind.name, "ls", "--format", kind.fmt}
		if kind.name == "container" {
			args = append(args, "-a")
		}
		s := testutil.Docker(t, append(args, filters...)...)
		for _, l := range strings.Split(s, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, kind.name+" "+l)
			}
		}
	}
	return out
}

// containerIDs lists the container ids of one service of a deployment.
func containerIDs(t *testing.T, node string, deploymentID int64, service string) []string {
	t.Helper()
	s := testutil.Docker(t, "ps", "-a", "-q", "--filter", "label=nullops.node="+node,
		"--filter", fmt.Sprintf("label=nullops.deployment=%d", deploymentID), "--filter", "label=nullops.service="+service)
	return strings.Fields(s)
}

// --- SSE ------------------------------------------------------------------------

type sseEvent struct {
	Event string
	Data  string
}

// readSSE sends the events of an SSE body on the returned channel until
// the body ends.
func readSSE(body io.Reader) <-chan sseEvent {
	ch := make(chan sseEvent, 256)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Event != "" || ev.Data != "" {
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.Event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.Data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return ch
}
