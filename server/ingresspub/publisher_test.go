package ingresspub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/traefik/paerser/file"

	"github.com/nullops/nullops/ingress/dynconfig"
	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/server/changefeed"
	"github.com/nullops/nullops/server/ingresspub"
	"github.com/nullops/nullops/server/store"
	"github.com/nullops/nullops/server/store/storetest"
)

var update = flag.Bool("update", false, "rewrite testdata/traefik.golden.json")

// world is a database with one deployment in each state that matters.
type world struct {
	st   *store.Store
	seed *storetest.RouteSeed
	// ids
	nodeOnline, nodeOffline                         int64
	depRunning, depOnOffline, depDeploying, depFlat int64
	depOffline, depDeleted, depFailed, depLongName  int64
}

func newWorld(t *testing.T) *world {
	t.Helper()
	st := storetest.New(t)
	w := &world{st: st, seed: storetest.NewRouteSeed(t, st)}
	s := w.seed
	qa := s.Environment(t, "qa", "example.test", "", true)
	flat := s.Environment(t, "flat", "example.test", ingresspub.FlatHostTemplate, true)
	w.nodeOnline = s.Node(t, qa, "n1", "10.0.0.5", "online")
	w.nodeOffline = s.Node(t, qa, "n2", "10.0.0.6", "offline")
	flatNode := s.Node(t, flat, "n3", "fd00::3", "online")

	w.depRunning = s.Deployment(t, qa, w.nodeOnline, "pr-1", "running", time.Hour)
	s.Service(t, w.depRunning, "web", 32001, true)
	s.Service(t, w.depRunning, "api", 32002, true)
	s.Service(t, w.depRunning, "db", 32003, false) // not exposed

	// Its node has been unreachable for longer than the grace: offline.
	w.depOnOffline = s.Deployment(t, qa, w.nodeOffline, "pr-2", "offline", time.Hour)
	s.Service(t, w.depOnOffline, "web", 32004, true)

	w.depDeploying = s.Deployment(t, qa, w.nodeOnline, "pr-3", "deploying", time.Hour)
	s.Service(t, w.depDeploying, "web", 0, true)

	w.depOffline = s.Deployment(t, qa, w.nodeOnline, "pr-4", "offline", time.Hour)
	s.Service(t, w.depOffline, "web", 32005, true)

	w.depDeleted = s.Deployment(t, qa, w.nodeOnline, "pr-5", "deleted", time.Hour)
	s.Service(t, w.depDeleted, "web", 32006, true)
	w.depFailed = s.Deployment(t, qa, w.nodeOnline, "pr-6", "failed", time.Hour)
	s.Service(t, w.depFailed, "web", 32007, true)

	w.depFlat = s.Deployment(t, flat, flatNode, "feature-x", "running", time.Hour)
	s.Service(t, w.depFlat, "Web", 32008, true)

	w.depLongName = s.Deployment(t, qa, w.nodeOnline, strings.Repeat("x", 64), "running", time.Hour)
	s.Service(t, w.depLongName, "web", 32009, true)
	return w
}

func newPublisher(t *testing.T, st *store.Store, opts ingresspub.Options) *ingresspub.Publisher {
	t.Helper()
	opts.Log = zerolog.Nop()
	p, err := ingresspub.New(st, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type served struct {
	kind   dynconfig.Kind
	server string
	depID  int64
}

// compile decodes a published body the way nullops-ingress does.
func compile(t *testing.T, body []byte) map[string]served {
	t.Helper()
	cfg, err := dynconfig.Decode(body)
	if err != nil {
		t.Fatalf("decode published configuration: %v", err)
	}
	routes, problems := dynconfig.Compile(cfg)
	if len(problems) != 0 {
		t.Fatalf("published configuration has problems: %v", problems)
	}
	out := map[string]served{}
	for _, r := range routes {
		s := served{kind: r.Kind, depID: r.DeploymentID}
		if len(r.Servers) > 0 {
			s.server = r.Servers[0].String()
		}
		for _, h := range r.Hosts {
			out[h] = s
		}
	}
	return out
}

func TestPublisherDerivesRoutesFromDatabase(t *testing.T) {
	w := newWorld(t)
	ctx := testutil.Context(t, time.Minute)
	p := newPublisher(t, w.st, ingresspub.Options{})
	if p.Current() != nil {
		t.Fatal("snapshot before the first computation")
	}
	if err := p.Recompute(ctx); err != nil {
		t.Fatal(err)
	}
	snap := p.Current()
	got := compile(t, snap.Body())
	want := map[string]served{
		"web.pr-1.qa.example.test":         {dynconfig.KindBackend, "http://10.0.0.5:32001", w.depRunning},
		"api.pr-1.qa.example.test":         {dynconfig.KindBackend, "http://10.0.0.5:32002", w.depRunning},
		"web.pr-2.qa.example.test":         {dynconfig.KindOffline, "", w.depOnOffline},
		"web.pr-3.qa.example.test":         {dynconfig.KindDeploying, "", w.depDeploying},
		"web.pr-4.qa.example.test":         {dynconfig.KindOffline, "", w.depOffline},
		"web--feature-x.flat.example.test": {dynconfig.KindBackend, "http://[fd00::3]:32008", w.depFlat},
	}
	if len(got) != len(want) {
		t.Errorf("published %d hosts, want %d: %+v", len(got), len(want), got)
	}
	for h, ws := range want {
		if got[h] != ws {
			t.Errorf("host %s: got %+v, want %+v", h, got[h], ws)
		}
	}
	if snap.Routed != 3 || snap.Offline != 2 || snap.Deploying != 1 {
		t.Errorf("counts: routed %d offline %d deploying %d", snap.Routed, snap.Offline, snap.Deploying)
	}
	if len(snap.Problems) != 1 || !strings.Contains(snap.Problems[0], "at most 63") {
		t.Errorf("the 64-character deployment name must be reported, got %q", snap.Problems)
	}
	if snap.Version != 1 || !strings.HasPrefix(snap.ETag, `"`) {
		t.Errorf("version %d etag %s", snap.Version, snap.ETag)
	}

	// Nothing changed: same version.
	if err := p.Recompute(ctx); err != nil {
		t.Fatal(err)
	}
	if p.Current().Version != 1 {
		t.Fatalf("unchanged recompute bumped the version to %d", p.Current().Version)
	}
	// The offline node comes back (its deployment is running again): it is
	// routed, version 2.
	w.seed.SetNodeStatus(t, w.nodeOffline, "online")
	w.seed.SetDeploymentStatus(t, w.depOnOffline, "running")
	w.seed.SetHostPort(t, w.depDeploying, "web", 32010)
	w.seed.SetDeploymentStatus(t, w.depDeploying, "running")
	if err := p.Recompute(ctx); err != nil {
		t.Fatal(err)
	}
	snap2 := p.Current()
	if snap2.Version != 2 || snap2.ETag == snap.ETag {
		t.Fatalf("after a change: version %d etag %s (was %s)", snap2.Version, snap2.ETag, snap.ETag)
	}
	got = compile(t, snap2.Body())
	if got["web.pr-2.qa.example.test"].server != "http://10.0.0.6:32004" || got["web.pr-3.qa.example.test"].server != "http://10.0.0.5:32010" {
		t.Errorf("after node online and deploy finished: %+v", got)
	}
	// Deleting removes the host.
	w.seed.SetDeploymentStatus(t, w.depRunning, "deleting")
	if err := p.Recompute(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := compile(t, p.Current().Body())["web.pr-1.qa.example.test"]; ok {
		t.Error("a deleting deployment is still routed")
	}
}

// TestPublishedDocumentGolden pins the published document and proves it
// decodes, with paerser exactly as Traefik's HTTP provider does
// (file.DecodeContent(..., ".yaml", ...)), into Traefik-shaped structs.
func TestPublishedDocumentGolden(t *testing.T) {
	w := newWorld(t)
	ctx := testutil.Context(t, time.Minute)
	p := newPublisher(t, w.st, ingresspub.Options{})
	if err := p.Recompute(ctx); err != nil {
		t.Fatal(err)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, p.Current().Body(), "", "  "); err != nil {
		t.Fatal(err)
	}
	pretty.WriteByte('\n')
	golden := filepath.Join("testdata", "traefik.golden.json")
	if *update {
		if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./server/ingresspub -run Golden -update)", err)
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Fatalf("published document differs from %s (rerun with -update if intended):\n%s", golden, pretty.String())
	}

	var cfg dynconfig.Configuration
	if err := file.DecodeContent(string(want), ".yaml", &cfg); err != nil {
		t.Fatalf("Traefik's decoder refuses the published document: %v", err)
	}
	r := cfg.HTTP.Routers[dynconfig.RouterName(w.depRunning, "web")]
	if r == nil || r.Rule != "Host(`web.pr-1.qa.example.test`)" || r.Service != dynconfig.RouterName(w.depRunning, "web") {
		t.Fatalf("router of pr-1/web as Traefik reads it: %+v", r)
	}
	lb := cfg.HTTP.Services[r.Service].LoadBalancer
	if lb == nil || len(lb.Servers) != 1 || lb.Servers[0].URL != "http://10.0.0.5:32001" || lb.PassHostHeader == nil || !*lb.PassHostHeader {
		t.Fatalf("service of pr-1/web as Traefik reads it: %+v", lb)
	}
	// The sentinel services survive Traefik's decoding as load balancers
	// (without servers: Traefik answers 503).
	for _, s := range []string{dynconfig.ServiceOffline, dynconfig.ServiceDeploying} {
		if svc := cfg.HTTP.Services[s]; svc == nil || svc.LoadBalancer == nil || len(svc.LoadBalancer.Servers) != 0 {
			t.Errorf("sentinel service %s as Traefik reads it: %+v", s, svc)
		}
	}
	if cfg.HTTP.Routers[dynconfig.RouterName(w.depOnOffline, "web")].Service != dynconfig.ServiceOffline {
		t.Error("the deployment on the offline node does not point at the offline sentinel")
	}
}

// barrier sends a notification on the routes channel and waits until a
// subscriber added after the publisher got it: by then the publisher was
// handed every notification committed before (the feed delivers in commit
// order, subscriber after subscriber).
type barrier struct {
	st   *store.Store
	seen chan string
	n    int
}

func newBarrier(st *store.Store, feed *changefeed.Feed) *barrier {
	b := &barrier{st: st, seen: make(chan string, 64)}
	feed.Subscribe(store.RoutesChannel, changefeed.Handler{Notify: func(p string) {
		if strings.HasPrefix(p, "barrier ") {
			b.seen <- p
		}
	}})
	return b
}

func (b *barrier) pass(t *testing.T, ctx context.Context) {
	t.Helper()
	b.n++
	want := fmt.Sprint("barrier ", b.n)
	if _, err := b.st.Pool.Exec(ctx, "SELECT pg_notify($1, $2)", store.RoutesChannel, want); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case p := <-b.seen:
			if p == want {
				return
			}
		case <-ctx.Done():
			t.Fatalf("%s not delivered", want)
		}
	}
}

// The publisher follows the change feed: a committed route change reaches
// it exactly once, an update of columns routes do not depend on not at all,
// and a new LISTEN connection after the old one was killed makes it
// recompute.
func TestPublisherFollowsTheChangeFeed(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p := newPublisher(t, w.st, ingresspub.Options{Recheck: time.Hour})
	feed := changefeed.New(w.st, changefeed.Options{Channels: []string{store.RoutesChannel}, Log: zerolog.Nop(),
		BackoffMin: 10 * time.Millisecond})
	p.Follow(feed)
	b := newBarrier(w.st, feed)
	done := make(chan struct{}, 2)
	go func() { p.Run(ctx); done <- struct{}{} }()
	go func() { feed.Run(ctx); done <- struct{}{} }()
	select {
	case <-feed.Ready():
	case <-ctx.Done():
		t.Fatal("the change feed did not start listening")
	}
	first, ok := p.WaitNewer(ctx, 0)
	if !ok {
		t.Fatal("no first version")
	}
	b.pass(t, ctx)

	// No Changed() call: the NOTIFY from the database trigger suffices, and
	// arrives once.
	before := p.Stats().Signals
	w.seed.SetDeploymentStatus(t, w.depRunning, "offline")
	b.pass(t, ctx)
	if n := p.Stats().Signals - before - 1; n != 1 {
		t.Fatalf("one deployment status change reached the publisher %d times, want 1", n)
	}
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer wcancel()
	for {
		next, ok := p.WaitNewer(wctx, first.Version)
		if !ok {
			t.Fatal("no new version within 10s of a deployment going offline (NOTIFY not followed)")
		}
		if compile(t, next.Body())["web.pr-1.qa.example.test"].kind == dynconfig.KindOffline {
			break
		}
		first = next
	}

	// Updates of unrelated columns are not announced and do not bump the
	// version: the next version is the next route change.
	cur := p.Current().Version
	before = p.Stats().Signals
	if _, err := w.st.Pool.Exec(ctx, `UPDATE nodes SET last_seen_at = now(), usage = '{"cpu":1}'`); err != nil {
		t.Fatal(err)
	}
	b.pass(t, ctx)
	if n := p.Stats().Signals - before - 1; n != 0 {
		t.Fatalf("an update of columns routes do not depend on reached the publisher %d times", n)
	}
	w.seed.SetDeploymentStatus(t, w.depRunning, "running")
	next, ok := p.WaitNewer(wctx, cur)
	if !ok || next.Version != cur+1 || compile(t, next.Body())["web.pr-1.qa.example.test"].kind != dynconfig.KindBackend {
		t.Fatalf("after an unrelated update and a route change: version %d (from %d), want %d routing pr-1 again", next.Version, cur, cur+1)
	}

	// The LISTEN connection is killed: the feed reconnects and the
	// publisher recomputes (whatever changed meanwhile was not announced).
	recomputes := p.Stats().Recomputes
	if _, err := w.st.Pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = $1`, store.ListenerApplicationName); err != nil {
		t.Fatal(err)
	}
	if err := feed.WaitConnects(ctx, 2); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, ctx, 10*time.Millisecond, "a recompute after the reconnection", func() bool {
		return p.Stats().Recomputes > recomputes
	})

	cancel()
	for range 2 {
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
			t.Fatal("Run did not stop with its context")
		}
	}
	// Waiters return at once once the publisher stopped.
	start := time.Now()
	if _, ok := p.WaitNewer(context.Background(), p.Current().Version); ok || time.Since(start) > 30*time.Second {
		t.Fatal("WaitNewer blocked on a stopped publisher")
	}
}

// A service whose agent reports a route host (a Kubernetes agent's
// kubernetes.routehost) is routed to that host with its port; the node's
// host is used again once the agent reports none. The change is announced
// by the database trigger (no Changed call).
func TestPublisherRoutesToTheReportedRouteHost(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p := newPublisher(t, w.st, ingresspub.Options{Recheck: time.Hour})
	feed := changefeed.New(w.st, changefeed.Options{Channels: []string{store.RoutesChannel}, Log: zerolog.Nop(),
		BackoffMin: 10 * time.Millisecond})
	p.Follow(feed)
	done := make(chan struct{}, 2)
	go func() { p.Run(ctx); done <- struct{}{} }()
	go func() { feed.Run(ctx); done <- struct{}{} }()
	defer func() {
		cancel()
		<-done
		<-done
	}()
	select {
	case <-feed.Ready():
	case <-ctx.Done():
		t.Fatal("the change feed did not start listening")
	}
	cur, ok := p.WaitNewer(ctx, 0)
	if !ok {
		t.Fatal("no first version")
	}
	const host = "web.pr-1.qa.example.test"
	if got := compile(t, cur.Body())[host].server; got != "http://10.0.0.5:32001" {
		t.Fatalf("before a route host: %s routed to %q, want the node's host", host, got)
	}
	report := func(routeHost string) {
		t.Helper()
		found, err := store.ApplyServiceState(ctx, w.st.Pool, w.depRunning, store.ServiceUpdate{
			Service: "web", ContainerPort: 8080, HostPort: 32001, RouteHost: routeHost, Running: true, Health: "healthy", State: "running",
		})
		if err != nil || !found {
			t.Fatalf("apply service state: found %v, %v", found, err)
		}
	}
	waitServer := func(want string) {
		t.Helper()
		for {
			next, ok := p.WaitNewer(ctx, cur.Version)
			if !ok {
				t.Fatalf("no version routing %s to %s", host, want)
			}
			cur = next
			got := compile(t, next.Body())
			if got[host].server == want {
				if api := got["api.pr-1.qa.example.test"].server; api != "http://10.0.0.5:32002" {
					t.Fatalf("api of the same deployment (no route host reported) routed to %q", api)
				}
				return
			}
		}
	}
	report("lb.k8s.example.test")
	waitServer("http://lb.k8s.example.test:32001")
	report("fd00::7")
	waitServer("http://[fd00::7]:32001")
	report("")
	waitServer("http://10.0.0.5:32001")
}

func TestPublisherWritesFileAtomically(t *testing.T) {
	w := newWorld(t)
	ctx := testutil.Context(t, time.Minute)
	dir := t.TempDir()
	path := filepath.Join(dir, "nullops.yaml")
	p := newPublisher(t, w.st, ingresspub.Options{File: path})
	if err := p.Recompute(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, p.Current().Body()) {
		t.Fatalf("file content differs from the published body (err %v)", err)
	}
	var cfg dynconfig.Configuration
	if err := file.Decode(path, &cfg); err != nil { // Traefik's file provider decoder
		t.Fatalf("Traefik's decoder refuses the file: %v", err)
	}
	w.seed.SetDeploymentStatus(t, w.depRunning, "offline")
	if err := p.Recompute(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(path)
	if !bytes.Equal(got, p.Current().Body()) {
		t.Fatal("file not updated with version 2")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
	for _, name := range []string{"x.toml", "x.json", "x"} {
		if _, err := ingresspub.New(w.st, ingresspub.Options{File: filepath.Join(dir, name)}); err == nil {
			t.Errorf("file name %s was accepted; Traefik's file provider reads only .yml and .yaml (and the content is JSON)", name)
		}
	}
}

// TestPublisherPreparesTheFileOutsideItsDirectory: the directory Traefik
// watches sees nothing but the file itself (a temporary file there makes
// Traefik reload, and its throttle then delays the real change).
func TestPublisherPreparesTheFileOutsideItsDirectory(t *testing.T) {
	w := newWorld(t)
	ctx := testutil.Context(t, time.Minute)
	root := t.TempDir()
	watched := filepath.Join(root, "dynamic")
	if err := os.Mkdir(watched, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(watched, "nullops.yml")
	p := newPublisher(t, w.st, ingresspub.Options{File: path})
	if err := p.Recompute(ctx); err != nil {
		t.Fatal(err)
	}
	watch := testutil.WatchDir(t, watched)
	w.seed.SetDeploymentStatus(t, w.depRunning, "offline")
	if err := p.Recompute(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, p.Current().Body()) {
		t.Fatalf("file content differs from the published body (err %v)", err)
	}
	names := watch.Names(t)
	if len(names) == 0 {
		t.Fatal("the watched directory saw no change for version 2")
	}
	for _, n := range names {
		if n != "nullops.yml" {
			t.Errorf("the watched directory saw %q; only the file itself may appear there", n)
		}
	}
	for _, dir := range []string{root, watched} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if e.Name() != "dynamic" && e.Name() != "nullops.yml" {
				t.Errorf("temporary file %s left in %s", e.Name(), dir)
			}
		}
	}
}

func TestRecordActivity(t *testing.T) {
	st := storetest.New(t)
	s := storetest.NewRouteSeed(t, st)
	ctx := testutil.Context(t, time.Minute)
	on := s.Environment(t, "on", "example.test", "", true)
	off := s.Environment(t, "off", "example.test", "", false)
	n1 := s.Node(t, on, "n1", "10.0.0.1", "online")
	n2 := s.Node(t, off, "n2", "10.0.0.2", "online")
	counted := s.Deployment(t, on, n1, "a", "running", 2*time.Hour)
	notCounted := s.Deployment(t, off, n2, "b", "running", 2*time.Hour)
	notRunning := s.Deployment(t, on, n1, "c", "deploying", 2*time.Hour)
	lastBefore, expBefore := s.Activity(t, counted)
	_, expOff := s.Activity(t, notCounted)
	_, expDeploying := s.Activity(t, notRunning)

	p := newPublisher(t, st, ingresspub.Options{})
	at := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
	n, err := p.RecordActivity(ctx, []store.IngressActivity{
		{DeploymentID: counted, LastRequestAt: at.Add(-time.Second)},
		{DeploymentID: counted, LastRequestAt: at}, // the latest of a batch wins
		{DeploymentID: notCounted, LastRequestAt: at},
		{DeploymentID: notRunning, LastRequestAt: at},
		{DeploymentID: 999999, LastRequestAt: at},
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("updated %d deployments, want 1", n)
	}
	last, exp := s.Activity(t, counted)
	if !last.Equal(at) || !exp.Equal(at.Add(2*time.Hour)) {
		t.Errorf("counted deployment: last %v exp %v; want %v, %v (before: %v, %v)", last, exp, at, at.Add(2*time.Hour), lastBefore, expBefore)
	}
	if _, e := s.Activity(t, notCounted); !e.Equal(expOff) {
		t.Error("traffic_is_activity=false environment: expires_at changed")
	}
	if _, e := s.Activity(t, notRunning); !e.Equal(expDeploying) {
		t.Error("a deploying deployment's expires_at changed")
	}
	// An older report does not move time backwards; a future one is capped at now.
	if _, err := p.RecordActivity(ctx, []store.IngressActivity{{DeploymentID: counted, LastRequestAt: at.Add(-time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.Activity(t, counted); !l.Equal(at) {
		t.Errorf("an older report moved last_activity_at to %v", l)
	}
	if _, err := p.RecordActivity(ctx, []store.IngressActivity{{DeploymentID: counted, LastRequestAt: time.Now().Add(24 * time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	if l, e := s.Activity(t, counted); l.After(time.Now().Add(time.Second)) || e.After(time.Now().Add(2*time.Hour+time.Second)) {
		t.Errorf("a report from the future was not capped: last %v exp %v", l, e)
	}
}

// TestVariantsAreRenderedOncePerVersion: Traefik instances polling with
// ?entrypoints=…&tls=… get a cached rendering of the current version, and a
// new version renders anew.
func TestVariantsAreRenderedOncePerVersion(t *testing.T) {
	w := newWorld(t)
	ctx := testutil.Context(t, time.Minute)
	p := newPublisher(t, w.st, ingresspub.Options{})
	if err := p.Recompute(ctx); err != nil {
		t.Fatal(err)
	}
	v := ingresspub.Variant{EntryPoints: []string{"websecure"}, TLS: true, CertResolver: "le"}
	snap := p.Current()
	b1, e1, err := snap.Render(v)
	if err != nil {
		t.Fatal(err)
	}
	b2, e2, _ := snap.Render(ingresspub.Variant{EntryPoints: []string{"websecure"}, TLS: true, CertResolver: "le"})
	if e1 != e2 || &b1[0] != &b2[0] {
		t.Error("the same variant of the same version was rendered twice")
	}
	if allocs := testing.AllocsPerRun(100, func() { _, _, _ = snap.Render(v) }); allocs > 3 {
		t.Errorf("a cached variant costs %.0f allocations per request", allocs)
	}
	var cfg dynconfig.Configuration
	if err := json.Unmarshal(b1, &cfg); err != nil {
		t.Fatal(err)
	}
	for name, r := range cfg.HTTP.Routers {
		if len(r.EntryPoints) != 1 || r.EntryPoints[0] != "websecure" || r.TLS == nil || r.TLS.CertResolver != "le" {
			t.Fatalf("router %s not adapted to the variant: %+v", name, r)
		}
	}
	b3, e3, _ := snap.Render(ingresspub.Variant{EntryPoints: []string{"web"}})
	if e3 == e1 || bytes.Equal(b3, b1) {
		t.Error("two different variants got the same document")
	}

	w.seed.SetDeploymentStatus(t, w.depRunning, "offline")
	if err := p.Recompute(ctx); err != nil {
		t.Fatal(err)
	}
	b4, e4, _ := p.Current().Render(v)
	if e4 == e1 || bytes.Equal(b4, b1) {
		t.Error("a new version served the previous version's cached variant")
	}
}
