package deploy_test

// These tests run the lifecycle on a real PostgreSQL database. The agent
// side is a recorder (below the agent boundary); the real agent, Docker and
// registry are exercised end to end in server/e2e.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/catalog"
	"github.com/nullops/nullops/server/changefeed"
	"github.com/nullops/nullops/server/deploy"
	"github.com/nullops/nullops/server/errs"
	"github.com/nullops/nullops/server/store"
	"github.com/nullops/nullops/server/store/storetest"
)

// recorder stands in for the agent connection manager.
type recorder struct {
	mu        sync.Mutex
	requests  []sent
	connected map[int64]bool
	fail      error
	attempts  map[string]int // every request, failed ones too
}

type sent struct {
	node int64
	typ  string
	body any
}

func (r *recorder) Node(nodeID int64) protocol.Requester { return recorderNode{r, nodeID} }

type recorderNode struct {
	r      *recorder
	nodeID int64
}

func (n recorderNode) RoundTrip(_ context.Context, typ string, body, _ any) error {
	r, nodeID := n.r, n.nodeID
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts[typ]++
	if r.fail != nil {
		return r.fail
	}
	r.requests = append(r.requests, sent{nodeID, typ, body})
	return nil
}

func (r *recorder) Connected(nodeID int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.connected[nodeID]
}

// waitSent waits until n requests of typ were sent (delivery runs in the
// background) and returns them.
func (r *recorder) waitSent(t *testing.T, typ string, n int) []sent {
	t.Helper()
	ctx := testutil.Context(t, 30*time.Second)
	testutil.WaitFor(t, ctx, 5*time.Millisecond, fmt.Sprintf("%d %s requests", n, typ), func() bool { return len(r.sent(typ)) >= n })
	return r.sent(typ)
}

func (r *recorder) sent(typ string) []sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []sent
	for _, s := range r.requests {
		if s.typ == typ {
			out = append(out, s)
		}
	}
	return out
}

// resolver resolves every deployment to one web service and one component.
type resolver struct{}

func (resolver) Define(_ context.Context, _, _ int64, tags map[string]string) (catalog.Definition, error) {
	tag := tags["demo-web"]
	if tag == "" {
		return catalog.Definition{}, errs.New(errs.Conflict, "unresolvable", "no tag for demo-web")
	}
	return catalog.Definition{Spec: protocol.DeploySpec{
		Graph: protocol.Graph{Nodes: []protocol.Node{
			{ID: "setup", Kind: protocol.KindComponent, Plugin: "noop"},
			{ID: "web", Kind: protocol.KindService, Service: "demo-web", Port: 8080, Ingress: true},
		}, Edges: [][2]string{{"setup", "web"}}},
		Services: map[string]protocol.ServiceImage{"web": {Image: "127.0.0.1:5000/demo/web:" + tag, Ports: []int{8080}}},
		Plugins:  map[string]protocol.PluginImage{"setup": {Name: "noop", Image: "127.0.0.1:5000/noop:1"}},
	}}, nil
}

func (resolver) Complete(_ context.Context, _ int64, def catalog.Definition) (protocol.DeploySpec, error) {
	spec := def.Spec
	spec.Secrets = map[string]string{"token": "s3cret"}
	return spec, nil
}

type fixture struct {
	st      *store.Store
	svc     *deploy.Service
	feed    *changefeed.Feed
	clock   *clock
	agents  *recorder
	project int64
	env     int64
	nodes   []int64
	user    int64
}

func exec(t *testing.T, st *store.Store, q string, args ...any) int64 {
	t.Helper()
	var id int64
	if err := st.Pool.QueryRow(context.Background(), q, args...).Scan(&id); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return id
}

// newFixture: environment qa with nodes of the given CPU capacity (2048 MB
// each), project "shop" needing 0.5 CPU / 256 MB, one pipeline version.
func newFixture(t *testing.T, nodeCPUs ...float64) *fixture {
	t.Helper()
	st := storetest.New(t)
	f := &fixture{st: st, agents: &recorder{connected: map[int64]bool{}, attempts: map[string]int{}}}
	f.env = exec(t, st, `INSERT INTO environments (name, base_domain, default_ttl_seconds) VALUES ('qa', 'example.test', 3600) RETURNING id`)
	f.project = exec(t, st, `INSERT INTO projects (name, cpu, memory_mb) VALUES ('shop', 0.5, 256) RETURNING id`)
	f.user = exec(t, st, `INSERT INTO users (username, password_hash, role) VALUES ('dev', 'x', 'user') RETURNING id`)
	exec(t, st, `INSERT INTO pipeline_versions (project_id, version, graph) VALUES ($1, 1, '{"nodes":[],"edges":[]}') RETURNING id`, f.project)
	reg := exec(t, st, `SELECT id FROM registries WHERE is_default`)
	exec(t, st, `INSERT INTO services (name, registry_id, image, tag_mode, tag_pattern) VALUES ('demo-web', $1, 'demo/web', 'selectable', 'v*') RETURNING id`, reg)
	for i, cpus := range nodeCPUs {
		id := exec(t, st, `INSERT INTO nodes (environment_id, name, host, port, status, capacity, usage)
			VALUES ($1, $2, '127.0.0.1', 7000, 'online', $3, '{"cpus_used":0.1,"memory_used_mb":100}') RETURNING id`,
			f.env, fmt.Sprintf("node-%d", i+1), fmt.Sprintf(`{"cpus":%g,"memory_mb":2048}`, cpus))
		f.nodes = append(f.nodes, id)
		f.agents.connected[id] = true
	}
	f.clock = &clock{}
	f.svc = deploy.New(deploy.Config{Store: st, Agents: f.agents, Resolver: resolver{}, Log: zerolog.Nop(), Now: f.clock.Now})
	f.feed = changefeed.New(st, changefeed.Options{Channels: []string{store.DeploymentEventsChannel}, Log: zerolog.Nop()})
	f.svc.Follow(f.feed)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { f.svc.Run(ctx); done <- struct{}{} }()
	go func() { f.feed.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done })
	select {
	case <-f.feed.Ready():
	case <-time.After(2 * time.Minute):
		t.Fatal("change feed did not start listening")
	}
	return f
}

func (f *fixture) actor() deploy.Actor { return deploy.Actor{UserID: &f.user, Name: "dev"} }

func (f *fixture) create(t *testing.T, name, tag string) store.Deployment {
	t.Helper()
	d, err := f.svc.Create(context.Background(), f.actor(), deploy.CreateRequest{ProjectID: f.project, EnvironmentID: f.env, Name: name, Tags: map[string]string{"demo-web": tag}})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return d
}

var seq uint64

// apply runs an applier in its own transaction, as the agent manager does.
func (f *fixture) apply(t *testing.T, nodeID int64, typ string, body any) {
	t.Helper()
	e, err := protocol.NewEnvelope(typ, body)
	if err != nil {
		t.Fatal(err)
	}
	seq++
	e.Seq = seq
	fn := f.svc.Appliers()[typ]
	if err := f.st.InTx(context.Background(), func(tx *store.Store) error { return fn(context.Background(), tx, nodeID, e) }); err != nil {
		t.Fatalf("apply %s: %v", typ, err)
	}
}

func (f *fixture) get(t *testing.T, id int64) store.Deployment {
	t.Helper()
	d, err := f.st.GetDeployment(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestConcurrentCreatesNeverOversubscribe(t *testing.T) {
	// Two nodes of 2 CPUs (0.1 used by the OS): each fits four 0.5-CPU
	// deployments; 12 of 20 concurrent creates must be refused.
	f := newFixture(t, 2, 2)
	const n = 20
	var wg sync.WaitGroup
	results := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, results[i] = f.svc.Create(context.Background(), f.actor(), deploy.CreateRequest{
				ProjectID: f.project, EnvironmentID: f.env, Name: fmt.Sprintf("pr-%d", i), Tags: map[string]string{"demo-web": "v1"}})
		}()
	}
	wg.Wait()
	ok := 0
	for i, err := range results {
		if err == nil {
			ok++
			continue
		}
		var le *errs.Error
		if !errors.As(err, &le) || le.Kind != errs.Conflict || le.Code != "no_capacity" {
			t.Fatalf("create %d: %v, want 409 no_capacity", i, err)
		}
		if want := "no node in environment qa has 0.5 CPUs free (best: node-1 with 0 of 2 free)"; le.Message != want {
			t.Fatalf("message %q, want %q", le.Message, want)
		}
	}
	if ok != 8 {
		t.Fatalf("%d creates succeeded, want 8 (4 per node)", ok)
	}
	for _, node := range f.nodes {
		deps, err := f.st.NodeDeployments(context.Background(), node, store.DeploymentDeploying)
		if err != nil {
			t.Fatal(err)
		}
		if len(deps) != 4 {
			t.Fatalf("node %d holds %d deployments, want 4", node, len(deps))
		}
	}
	if got := len(f.agents.waitSent(t, protocol.TypeDeploy, 8)); got != 8 {
		t.Fatalf("%d deploy requests sent, want 8", got)
	}
	// The refused creates left nothing behind.
	list, total, _, err := f.st.ListDeployments(context.Background(), store.DeploymentFilter{})
	if err != nil || total != 8 || len(list) != 8 {
		t.Fatalf("list: %d/%d %v, want 8", len(list), total, err)
	}
}

func TestCreateValidation(t *testing.T) {
	f := newFixture(t, 4)
	ctx := context.Background()
	cases := []struct {
		req  deploy.CreateRequest
		code string
		msg  string
	}{
		{deploy.CreateRequest{ProjectID: f.project, EnvironmentID: f.env, Name: "Bad_Name", Tags: map[string]string{"demo-web": "v1"}}, "invalid", "is not a DNS label"},
		{deploy.CreateRequest{ProjectID: f.project, EnvironmentID: f.env, Name: strings.Repeat("a", 64), Tags: map[string]string{"demo-web": "v1"}}, "invalid", "is not a DNS label"},
		{deploy.CreateRequest{ProjectID: f.project, EnvironmentID: 99999, Name: "x", Tags: map[string]string{"demo-web": "v1"}}, "invalid", "does not exist"},
		{deploy.CreateRequest{ProjectID: f.project, EnvironmentID: f.env, Name: "x"}, "unresolvable", "no tag for demo-web"},
	}
	for _, tc := range cases {
		_, err := f.svc.Create(ctx, f.actor(), tc.req)
		var le *errs.Error
		if !errors.As(err, &le) || le.Code != tc.code || !strings.Contains(le.Message, tc.msg) {
			t.Errorf("create %+v: %v, want %s containing %q", tc.req, err, tc.code, tc.msg)
		}
	}
	// A name whose host name would not be a DNS name is refused up front.
	if _, err := f.st.Pool.Exec(ctx, `UPDATE environments SET host_template = '<service>-<deployment>.<environment>.<base-domain>' WHERE id = $1`, f.env); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.Create(ctx, f.actor(), deploy.CreateRequest{ProjectID: f.project, EnvironmentID: f.env, Name: strings.Repeat("a", 62), Tags: map[string]string{"demo-web": "v1"}})
	var le *errs.Error
	if !errors.As(err, &le) || le.Code != "invalid" || !strings.Contains(le.Message, "choose a shorter or simpler deployment name") {
		t.Fatalf("long host name: %v", err)
	}
	f.create(t, "pr-1", "v1")
	_, err = f.svc.Create(ctx, f.actor(), deploy.CreateRequest{ProjectID: f.project, EnvironmentID: f.env, Name: "pr-1", Tags: map[string]string{"demo-web": "v2"}})
	if !errors.As(err, &le) || le.Kind != errs.Conflict || le.Message != "a deployment named pr-1 already exists in environment qa" {
		t.Fatalf("duplicate name: %v", err)
	}
	// A node selector that matches no node: a clear 409, nothing created.
	if _, err := f.st.Pool.Exec(ctx, `UPDATE projects SET node_selector = '{"match_labels":{"gpu":"true"}}' WHERE id = $1`, f.project); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Create(ctx, f.actor(), deploy.CreateRequest{ProjectID: f.project, EnvironmentID: f.env, Name: "pr-2", Tags: map[string]string{"demo-web": "v1"}})
	if !errors.As(err, &le) || le.Code != "no_capacity" || !strings.Contains(le.Message, "node selector gpu=true") {
		t.Fatalf("selector: %v", err)
	}
	if _, err := f.st.Pool.Exec(ctx, `UPDATE nodes SET labels = '{"gpu":"true"}' WHERE id = $1`, f.nodes[0]); err != nil {
		t.Fatal(err)
	}
	f.create(t, "pr-2", "v1")
}

// events collects live events of one deployment.
func subscribe(t *testing.T, f *fixture, id int64) *deploy.Subscription {
	sub := f.svc.Broker.Subscribe(func(e deploy.Event) bool { return e.DeploymentID == id })
	t.Cleanup(sub.Close)
	return sub
}

func next(t *testing.T, sub *deploy.Subscription, typ string) deploy.Event {
	t.Helper()
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case e, ok := <-sub.C:
			if !ok {
				t.Fatal("subscription closed")
			}
			if e.Type == typ {
				return e
			}
		case <-timeout:
			t.Fatalf("no %s event", typ)
		}
	}
}

func TestStateMachineFromAgentEvents(t *testing.T) {
	f := newFixture(t, 4)
	d := f.create(t, "pr-7", "v1.2.0")
	node := *d.NodeID
	sub := subscribe(t, f, d.ID)
	if d.Status != store.DeploymentDeploying || d.PipelineVersion != 1 || d.Tags["demo-web"] != "v1.2.0" {
		t.Fatalf("created %+v", d)
	}
	req := f.agents.waitSent(t, protocol.TypeDeploy, 1)[0].body.(protocol.DeployRequest)
	if req.Spec.DeploymentID != d.ID || req.Spec.Name != "pr-7" || req.Spec.Secrets["token"] != "s3cret" || req.Spec.Resources.CPU != 0.5 {
		t.Fatalf("deploy spec %+v", req.Spec)
	}

	now := time.Now().UTC()
	f.apply(t, node, protocol.TypeStepStatus, protocol.StepStatus{DeploymentID: d.ID, Step: "setup", Kind: "component", Status: "running", Attempt: 1, At: now})
	f.apply(t, node, protocol.TypeStepLog, protocol.StepLog{DeploymentID: d.ID, Step: "setup", Attempt: 1, Chunk: "preparing\n", At: now})
	f.apply(t, node, protocol.TypeStepStatus, protocol.StepStatus{DeploymentID: d.ID, Step: "setup", Kind: "component", Status: "succeeded", Attempt: 1, At: now.Add(time.Second)})
	f.apply(t, node, protocol.TypeServiceState, protocol.ServiceState{DeploymentID: d.ID, Service: "web", ContainerPort: 8080, HostPort: 32768, Running: true, Health: "healthy"})
	f.apply(t, node, protocol.TypeStepStatus, protocol.StepStatus{DeploymentID: d.ID, Step: "web", Kind: "service", Status: "succeeded", Attempt: 1, At: now.Add(2 * time.Second)})
	// An event claiming the deployment from another node is ignored.
	f.apply(t, node+1000, protocol.TypeDeploymentStatus, protocol.DeploymentStatus{DeploymentID: d.ID, Status: "failed", Reason: "forged"})
	f.apply(t, node, protocol.TypeDeploymentStatus, protocol.DeploymentStatus{DeploymentID: d.ID, Status: "running", At: now.Add(3 * time.Second)})

	if e := next(t, sub, deploy.EventStep); e.Step.ID != "setup" || e.Step.Status != "running" {
		t.Fatalf("first step event %+v", e.Step)
	}
	if e := next(t, sub, deploy.EventLog); e.Step.Chunk != "preparing\n" {
		t.Fatalf("log event %+v", e.Step)
	}
	if e := next(t, sub, deploy.EventStatus); e.Status != "running" {
		t.Fatalf("status event %+v", e)
	}
	got := f.get(t, d.ID)
	if got.Status != store.DeploymentRunning || got.StatusReason != "" {
		t.Fatalf("status %s (%s), want running", got.Status, got.StatusReason)
	}
	steps, _ := f.st.DeploymentSteps(context.Background(), d.ID)
	for _, s := range steps {
		if s.Status != "succeeded" || s.StartedAt == nil || s.FinishedAt == nil {
			t.Fatalf("step %+v", s)
		}
	}
	svcs, _ := f.st.DeploymentServices(context.Background(), d.ID)
	if len(svcs) != 1 || svcs[0].HostPort != 32768 || svcs[0].Health != "healthy" || svcs[0].Tag != "v1.2.0" || svcs[0].ServiceName != "demo-web" {
		t.Fatalf("services %+v", svcs)
	}
	logs, _ := f.st.StepLogs(context.Background(), d.ID, "setup", 0, 0)
	if len(logs) != 1 || logs[0].Chunk != "preparing\n" {
		t.Fatalf("logs %+v", logs)
	}

	// Failure: carries the step and the reason; retry starts again.
	d2 := f.create(t, "pr-8", "v1")
	f.agents.waitSent(t, protocol.TypeDeploy, 2) // the agent reports only what it was sent
	f.apply(t, *d2.NodeID, protocol.TypeStepStatus, protocol.StepStatus{DeploymentID: d2.ID, Step: "setup", Kind: "component", Status: "failed", Message: "exit 3", At: now})
	f.apply(t, *d2.NodeID, protocol.TypeDeploymentStatus, protocol.DeploymentStatus{DeploymentID: d2.ID, Status: "failed", FailedStep: "setup", Reason: "plugin exited with 3", At: now})
	got = f.get(t, d2.ID)
	if got.Status != "failed" || got.FailedStep != "setup" || got.StatusReason != "plugin exited with 3" {
		t.Fatalf("failed deployment %+v", got)
	}
	// A late "running" cannot resurrect a failed deployment.
	f.apply(t, *d2.NodeID, protocol.TypeDeploymentStatus, protocol.DeploymentStatus{DeploymentID: d2.ID, Status: "running"})
	if got = f.get(t, d2.ID); got.Status != "failed" {
		t.Fatalf("late running applied: %s", got.Status)
	}
	if _, err := f.svc.Retry(context.Background(), f.actor(), d.ID); err == nil {
		t.Fatal("retry of a running deployment accepted")
	}
	if _, err := f.st.Pool.Exec(context.Background(), `INSERT INTO pipeline_versions (project_id, version, graph) VALUES ($1, 2, '{}')`, f.project); err != nil {
		t.Fatal(err)
	}
	r, err := f.svc.Retry(context.Background(), f.actor(), d2.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != "deploying" || r.PipelineVersion != 2 || r.FailedStep != "" || r.Tags["demo-web"] != "v1" {
		t.Fatalf("retried %+v", r)
	}
	steps, _ = f.st.DeploymentSteps(context.Background(), d2.ID)
	for _, s := range steps {
		if s.Status != "pending" {
			t.Fatalf("retry kept step %+v", s)
		}
	}
	if n := len(f.agents.waitSent(t, protocol.TypeDeploy, 3)); n != 3 {
		t.Fatalf("%d deploys sent, want 3", n)
	}
	hist, _ := f.st.DeploymentHistory(context.Background(), d2.ID)
	var actions []string
	for _, h := range hist {
		actions = append(actions, h.Action)
	}
	if strings.Join(actions, ",") != "created,failed,retried" {
		t.Fatalf("history %v", actions)
	}
}

func TestOfflineDeleteAndReconnect(t *testing.T) {
	f := newFixture(t, 4)
	ctx := context.Background()
	a := f.create(t, "keep", "v1")
	b := f.create(t, "drop", "v1")
	c := f.create(t, "half", "v1")
	node := f.nodes[0]
	for _, d := range []store.Deployment{a, b} {
		f.apply(t, node, protocol.TypeStepStatus, protocol.StepStatus{DeploymentID: d.ID, Step: "setup", Kind: "component", Status: "succeeded"})
		f.apply(t, node, protocol.TypeStepStatus, protocol.StepStatus{DeploymentID: d.ID, Step: "web", Kind: "service", Status: "succeeded"})
		f.apply(t, node, protocol.TypeDeploymentStatus, protocol.DeploymentStatus{DeploymentID: d.ID, Status: "running"})
	}
	// The node goes away.
	f.agents.mu.Lock()
	f.agents.connected[node] = false
	f.agents.mu.Unlock()
	if _, err := f.st.SetNodeStatus(ctx, node, "offline", "missed pings"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.NodeOffline(ctx, node, "missed pings"); err != nil {
		t.Fatal(err)
	}
	for _, d := range []store.Deployment{a, b, c} {
		if got := f.get(t, d.ID); got.Status != "offline" {
			t.Fatalf("%s is %s, want offline", got.Name, got.Status)
		}
	}
	del, err := f.svc.Delete(ctx, f.actor(), b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if del.Status != "deleting" || !del.DeletePending || !strings.Contains(del.StatusReason, "node node-1 is offline") {
		t.Fatalf("delete while offline: %+v", del)
	}
	if n := len(f.agents.sent(protocol.TypeDelete)); n != 0 {
		t.Fatalf("delete sent to an offline node")
	}
	// A deployment from before definitions were recorded gets its own.
	if _, err := f.st.Pool.Exec(ctx, "UPDATE deployments SET definition = NULL WHERE id = $1", a.ID); err != nil {
		t.Fatal(err)
	}
	// Desired state leaves the deleted one out.
	specs, err := f.svc.DesiredState(ctx, node)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []store.Deployment{a, c} {
		def, err := store.DeploymentDefinition(ctx, f.st.Pool, d.ID)
		if err != nil || !strings.Contains(string(def), `"registries"`) || strings.Contains(string(def), "s3cret") {
			t.Fatalf("recorded definition of %s: %s %v", d.Name, def, err)
		}
	}
	var names []string
	for _, s := range specs {
		names = append(names, s.Name)
		if s.Secrets["token"] != "s3cret" || s.PipelineVersion != 1 {
			t.Fatalf("desired spec %+v", s)
		}
	}
	if strings.Join(names, ",") != "keep,half" {
		t.Fatalf("desired state %v, want keep,half", names)
	}
	// Back online (the row first, as the connection manager does): the
	// pending delete is done, the others come back.
	if _, err := f.st.SetNodeStatus(ctx, node, "online", ""); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.NodeSynced(ctx, node); err != nil {
		t.Fatal(err)
	}
	want := map[int64]string{a.ID: "running", b.ID: "deleted", c.ID: "deploying"}
	for id, st := range want {
		if got := f.get(t, id); got.Status != st {
			t.Fatalf("%s is %s after reconnect, want %s", got.Name, got.Status, st)
		}
	}
	if _, err := f.svc.Delete(ctx, f.actor(), b.ID); err == nil {
		t.Fatal("second delete of a deleted deployment accepted")
	}
	// Online delete: sent to the agent (cancel while deploying), the agent's event finishes it.
	f.agents.mu.Lock()
	f.agents.connected[node] = true
	f.agents.mu.Unlock()
	if _, err := f.svc.Cancel(ctx, f.actor(), a.ID); err == nil {
		t.Fatal("cancel of a running deployment accepted")
	}
	if _, err := f.svc.Cancel(ctx, f.actor(), c.ID); err != nil {
		t.Fatal(err)
	}
	if s := f.agents.waitSent(t, protocol.TypeCancel, 1); len(s) != 1 || s[0].body.(protocol.DeleteRequest).DeploymentID != c.ID {
		t.Fatalf("cancel requests %+v", s)
	}
	f.apply(t, node, protocol.TypeDeploymentStatus, protocol.DeploymentStatus{DeploymentID: c.ID, Status: "deleted"})
	if got := f.get(t, c.ID); got.Status != "deleted" || got.DeletedAt == nil {
		t.Fatalf("after agent's deleted: %+v", got)
	}
}

func TestExtendAndCleanup(t *testing.T) {
	f := newFixture(t, 4)
	ctx := context.Background()
	d := f.create(t, "short", "v1")
	if exp := time.Until(d.ExpiresAt); exp < 59*time.Minute || exp > 61*time.Minute {
		t.Fatalf("expires in %s, want the environment default of 1h", exp)
	}
	// Project override of the TTL; extend applies it from now.
	if _, err := f.st.Pool.Exec(ctx, `UPDATE projects SET ttl_seconds = 7200 WHERE id = $1`, f.project); err != nil {
		t.Fatal(err)
	}
	sub := subscribe(t, f, d.ID)
	ext, err := f.svc.Extend(ctx, f.actor(), d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if exp := time.Until(ext.ExpiresAt); exp < 119*time.Minute || exp > 121*time.Minute {
		t.Fatalf("extended to %s from now, want 2h", exp)
	}
	if e := next(t, sub, deploy.EventTTL); e.ExpiresAt == nil || !e.ExpiresAt.Equal(ext.ExpiresAt) {
		t.Fatalf("ttl event %+v", e)
	}
	// Expire it: the cleanup deletes it and records why.
	if _, err := f.st.Pool.Exec(ctx, `UPDATE deployments SET expires_at = now() - interval '1 second' WHERE id = $1`, d.ID); err != nil {
		t.Fatal(err)
	}
	keep := f.create(t, "long", "v1")
	n, err := f.svc.CleanupExpired(ctx)
	if err != nil || n != 1 {
		t.Fatalf("cleanup: %d %v, want 1", n, err)
	}
	if got := f.get(t, d.ID); got.Status != "deleting" {
		t.Fatalf("expired deployment is %s", got.Status)
	}
	if got := f.get(t, keep.ID); got.Status != "deploying" {
		t.Fatalf("unexpired deployment is %s", got.Status)
	}
	if s := f.agents.waitSent(t, protocol.TypeCancel, 1); len(s) != 1 || s[0].body.(protocol.DeleteRequest).DeploymentID != d.ID {
		t.Fatalf("cleanup requests %+v", s)
	}
	hist, _ := f.st.DeploymentHistory(ctx, d.ID)
	last := hist[len(hist)-1]
	var detail map[string]any
	_ = json.Unmarshal(last.Detail, &detail)
	if last.Action != "expired" || last.ActorName != "system" || detail["reason"] != "expired" {
		t.Fatalf("history %+v", last)
	}
	if hist[1].Action != "extended" || hist[1].ActorName != "dev" {
		t.Fatalf("history %+v", hist)
	}
	// The cron wiring runs the same job.
	if err := f.svc.StartCleanup(ctx, "not a schedule"); err == nil {
		t.Fatal("bad schedule accepted")
	}
}

func TestClone(t *testing.T) {
	f := newFixture(t, 4)
	src := f.create(t, "base", "v1")
	c, err := f.svc.Clone(context.Background(), f.actor(), src.ID, "base-copy", map[string]string{"demo-web": "v2"})
	if err != nil {
		t.Fatal(err)
	}
	if c.ClonedFrom == nil || *c.ClonedFrom != src.ID || c.Tags["demo-web"] != "v2" || c.Name != "base-copy" {
		t.Fatalf("clone %+v", c)
	}
	hist, _ := f.st.DeploymentHistory(context.Background(), c.ID)
	if len(hist) != 1 || hist[0].Action != "cloned" {
		t.Fatalf("clone history %+v", hist)
	}
}
