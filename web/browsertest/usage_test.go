package browsertest

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/api/apitest"
)

// docShot saves a PNG of the element matching sel (the full page for "",
// what the window shows for "viewport")
// next to the test's screenshots and, with NULLOPS_DOC_SCREENSHOTS=1, as
// docs/screenshots/<name>.png (see docs/development.md).
func (b *browser) docShot(sel, name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, pageWait)
	defer cancel()
	var png []byte
	var err error
	switch sel {
	case "":
		png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
	case "viewport":
		png, err = chromedp.Run(ctx, chromedp.CaptureScreenshot())
	default:
		png, err = chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(sel)))
	}
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	dirs := []string{filepath.Join(testutil.RepoRoot(b.t), "test-artifacts", "screenshots", b.name)}
	if os.Getenv("NULLOPS_DOC_SCREENSHOTS") == "1" {
		dirs = append(dirs, filepath.Join(testutil.RepoRoot(b.t), "docs", "screenshots"))
	}
	for _, dir := range dirs {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
}

// TestResourceGraphsNodeBarsAndFleet: a running deployment's page draws
// CPU and memory graphs of its service from the samples the real agent
// pushed (the points the API has, the latest memory figure as the API has
// it); the environment page shows the node's reserved vs capacity vs used
// bars with the deployment's reservation against the capacity the agent
// advertises (the test agent reports no OS usage, so "used" is 0); the fleet page lists the node with its environment and the
// same figures, and its reservation drops to zero once the deployment is
// deleted. It also takes the docs' screenshots (laptop and phone).
func TestResourceGraphsNodeBarsAndFleet(t *testing.T) {
	st := newDeploymentStack(t)
	a := st.Admin
	// The service takes 32 MiB more memory 25 s after it starts: the
	// memory graph climbs.
	pid := a.id("POST", "/projects", map[string]any{"name": "graphs", "cpu": 0.25, "memory_mb": 128}, 201)
	a.call("PUT", fmt.Sprintf("/projects/%d/pipeline", pid), map[string]any{
		"nodes": []map[string]any{{"id": "web", "kind": "service", "service": "web", "port": 8080, "ingress": true,
			"env": map[string]string{"SERVICE_NAME": "web", "ALLOCATE_MB": "32", "ALLOCATE_AFTER": "25s"}}},
		"edges": [][2]string{},
	}, 201, nil)
	depID := a.id("POST", "/deployments", map[string]any{"project_id": pid, "environment_id": st.EnvID, "name": "pr-7",
		"tags": map[string]string{"web": "v1.0.0"}}, 202)

	b := newBrowser(t, st.URL)
	b.login(adminUser, stackAdminPass)
	depPath := fmt.Sprintf("/deployments/%d", depID)
	b.open(depPath)
	b.waitFor("running", `(document.querySelector('#dep-status') || {textContent: ''}).textContent.includes('running')`, 3*time.Minute)
	// Samples are kept one per 15 s; the page polls every 15 s.
	mem := `svg.usage-svg[data-service="web"][data-metric="memory"]`
	cpu := `svg.usage-svg[data-service="web"][data-metric="cpu"]`
	b.waitFor("a memory graph with three points, the last one over 32 MiB", fmt.Sprintf(`(() => { const e = document.querySelector(%q);
		return !!e && Number(e.dataset.points) >= 3 && Number(e.dataset.last) > 32 * 1048576; })()`, mem), 3*time.Minute)
	if n := b.count(cpu + " path.usage-line"); n != 1 {
		t.Errorf("the CPU graph has %d lines, want 1", n)
	}
	if d := eval[string](b, fmt.Sprintf(`document.querySelector(%q).getAttribute('d')`, mem+" path.usage-line")); strings.Count(d, "L") < 2 {
		t.Errorf("the memory line %q does not join the points", d)
	}
	var u restapi.Usage
	a.call("GET", fmt.Sprintf("/deployments/%d/usage", depID), nil, 200, &u)
	shown := eval[int](b, fmt.Sprintf(`Number(document.querySelector(%q).dataset.points)`, mem))
	last := eval[float64](b, fmt.Sprintf(`Number(document.querySelector(%q).dataset.last)`, mem))
	if len(u.Services) != 1 || len(u.Services[0].Points) < shown {
		t.Fatalf("the page shows %d points, the API has %+v", shown, u.Services)
	}
	// The page's newest point is one the API returns (the API may already
	// have a newer one).
	found := false
	for _, p := range u.Services[0].Points {
		found = found || p[2] == last
	}
	if last <= 0 || !found {
		t.Errorf("the graph's latest memory %v is not among the API's points %v", last, u.Services[0].Points)
	}
	if !strings.Contains(b.textOf(`.usage-service[data-service="web"] figcaption`), "now ") {
		t.Errorf("the graph does not say the current figure: %q", b.textOf(`.usage-service[data-service="web"]`))
	}
	// Pointing at the right end of the memory chart reads out the newest
	// sample there.
	rect := eval[[]float64](b, fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.scrollIntoView({block: 'center'});
		const r = e.getBoundingClientRect(); return [r.right - 4, r.top + r.height / 2]; })()`, mem))
	b.do("point at the memory chart", chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, rect[0], rect[1]))
	b.waitFor("the readout names the newest sample", fmt.Sprintf(`(() => { const c = document.querySelector(%q).closest('figure').querySelector('[data-now]').textContent;
		return /^\d.*: \d+\.\d MiB$/.test(c) && Number.parseFloat(c.split(': ')[1]) > 32; })()`, mem), 10*time.Second)
	b.do("point away", chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, 1, 1))
	b.docShot("", "deployment")
	b.docShot("#usage", "resource-graph")

	// Environment page: reserved vs capacity vs used bars.
	bar := func(scope, res string) string {
		return fmt.Sprintf(`%s tr[data-name="node-1"] .node-bar[data-resource=%q]`, scope, res)
	}
	figures := func(sel string) []string {
		return eval[[]string](b, fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e ? [e.dataset.reserved, e.dataset.capacity, e.dataset.used] : []; })()`, sel))
	}
	// What the agent advertises: the configured 4 CPUs and 4096 MB, or
	// less on a smaller host; no OS usage (--debug.zerousage); shop
	// reserves 0.25 CPU and 128 MB.
	var nodes restapi.List[restapi.Node]
	a.call("GET", fmt.Sprintf("/environments/%d/nodes", st.EnvID), nil, 200, &nodes)
	if len(nodes.Items) != 1 || nodes.Items[0].Capacity.CPUs <= 0 {
		t.Fatalf("nodes of qa: %+v", nodes)
	}
	capCPU, capMem := nodes.Items[0].Capacity.CPUs, nodes.Items[0].Capacity.MemoryMB
	num := func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
	want := map[string][]string{"cpu": {"0.25", num(capCPU), "0"}, "memory": {"128", num(float64(capMem)), "0"}}
	b.open(fmt.Sprintf("/admin/environments/%d", st.EnvID))
	b.waitFor("node bars", fmt.Sprintf(`!!document.querySelector(%q)`, bar("", "memory")), 30*time.Second)
	for res, w := range want {
		if got := figures(bar("", res)); strings.Join(got, " ") != strings.Join(w, " ") {
			t.Errorf("environment page, %s bar: reserved/capacity/used %v, want %v", res, got, w)
		}
	}
	b.waitText(bar("", "cpu")+" [data-figures]", fmt.Sprintf("0.25 / %s CPU reserved · 0 CPU used", num(capCPU)))
	b.waitText(bar("", "memory")+" [data-figures]", "128.0 MiB / ")
	if w := eval[float64](b, fmt.Sprintf(`Number(document.querySelector(%q).getAttribute('width'))`, bar("", "cpu")+" rect.bar-reserved")); math.Abs(w-25/capCPU) > 0.01 {
		t.Errorf("the reserved CPU bar is %v%% wide, want %.2f%%", w, 25/capCPU)
	}
	b.docShot(`section[aria-labelledby="nodes-h"]`, "environment-nodes")

	// Fleet page: every node, its environment, the same figures, totals.
	b.click(`#nav a[href="/admin/nodes"]`)
	b.waitFor("fleet row", `!!document.querySelector('#fleet tr[data-name="node-1"][data-environment="qa"]')`, 30*time.Second)
	for res, w := range want {
		if got := figures(bar("#fleet", res)); strings.Join(got, " ") != strings.Join(w, " ") {
			t.Errorf("fleet page, %s bar: reserved/capacity/used %v, want %v", res, got, w)
		}
	}
	b.waitText("#fleet-totals", fmt.Sprintf("1 node, 1 online and enabled: 0.25 of %s CPU and 128.0 MiB of ", num(capCPU)))
	b.docShot("", "nodes")

	b.open("/deployments")
	b.waitFor("list row", `!!document.querySelector('tr[data-name="pr-7"]')`, 30*time.Second)
	b.docShot("", "deployments")

	// Phone: the deployment page with its graphs fits the width.
	b.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
	b.open(depPath)
	b.waitFor("graph on phone", fmt.Sprintf(`Number((document.querySelector(%q) || {dataset: {}}).dataset.points || 0) >= 3`, mem), time.Minute)
	if w := eval[[]int](b, `[document.documentElement.scrollWidth, window.innerWidth]`); w[0] > w[1] {
		t.Errorf("phone deployment page scrolls sideways: %dpx in %dpx", w[0], w[1])
	}
	eval[bool](b, `(() => { document.querySelector('#usage-h').closest('section').scrollIntoView({block: 'start'}); return true; })()`)
	b.docShot("viewport", "deployment-phone")
	b.open("/deployments")
	b.waitFor("list row on phone", `!!document.querySelector('tr[data-name="pr-7"]')`, 30*time.Second)
	b.docShot("", "deployments-phone")
	b.do("laptop viewport", chromedp.EmulateViewport(1400, 950))

	// Deleted: the reservation goes, the fleet page follows.
	a.call("DELETE", depPath, nil, 202, nil)
	b.open("/admin/nodes")
	b.waitFor("reservation released", fmt.Sprintf(`(document.querySelector(%q) || {dataset: {}}).dataset.reserved === "0"`, bar("#fleet", "cpu")), 2*time.Minute)
	b.waitText("#fleet-totals", fmt.Sprintf("0 of %s CPU", num(capCPU)))
}

// TestNodeBarsShowTheStoredFigures: the bars read the right fields. With
// figures written into the database (no agent, so nothing overwrites them):
// a node of 8 CPUs / 16 GiB using 3.5 CPUs and 6 GiB, with a running and a
// deploying deployment reserving 2.25 CPUs and 5 GiB (a failed one does not
// count), and a 2-CPU node of another environment reserved beyond its
// capacity. The environment page and the fleet page show each figure,
// bars as wide as their share (clamped and marked when over), and the
// fleet totals count only nodes that take deployments.
func TestNodeBarsShowTheStoredFigures(t *testing.T) {
	env := startServer(t)
	ctx := context.Background()
	qa, staging := env.Environment("qa"), env.Environment("staging")
	project := env.Project("shop")
	node := func(envID int64, name string) int64 {
		var out restapi.NodeCreated
		env.Admin.Post(apitest.Path("/environments/%d/nodes", envID), map[string]any{"name": name, "host": "127.0.0.1", "port": 1}).Want(t, 201).Decode(t, &out)
		return out.Node.ID
	}
	big, small := node(qa, "big"), node(staging, "small")
	if err := env.Store.SetNodeMetrics(ctx, big, protocol.Capacity{CPUs: 8, MemoryMB: 16384}, protocol.Usage{CPUsUsed: 3.5, MemoryUsedMB: 6144}); err != nil {
		t.Fatal(err)
	}
	if err := env.Store.SetNodeMetrics(ctx, small, protocol.Capacity{CPUs: 2, MemoryMB: 2048}, protocol.Usage{CPUsUsed: 0.5, MemoryUsedMB: 1024}); err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := env.Store.Pool.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`UPDATE nodes SET status = 'online' WHERE id = $1`, big)
	exec(`INSERT INTO pipeline_versions (project_id, version, graph) VALUES ($1, 1, '{"nodes":[],"edges":[]}')`, project)
	for i, d := range []struct {
		node   int64
		status string
		cpu    float64
		mem    int
	}{{big, "running", 2, 4096}, {big, "deploying", 0.25, 1024}, {big, "failed", 4, 8192}, {small, "running", 3, 1024}} {
		exec(`INSERT INTO deployments (name, project_id, environment_id, node_id, pipeline_version_id, status, cpu, memory_mb, ttl_seconds, expires_at)
			VALUES ($1, $2, (SELECT environment_id FROM nodes WHERE id = $3), $3, (SELECT id FROM pipeline_versions WHERE project_id = $2), $4, $5, $6, 3600, now() + interval '1 hour')`,
			fmt.Sprintf("d-%d", i), project, d.node, d.status, d.cpu, d.mem)
	}

	b := newBrowser(t, env.URL)
	b.login(adminUser, adminPassword)
	type barWant struct {
		figures []string // reserved, capacity, used
		text    string
		widths  []float64 // reserved, used (% of the track)
		over    bool
	}
	check := func(where, row string, want map[string]barWant) {
		t.Helper()
		for res, w := range want {
			sel := fmt.Sprintf(`%s tr[data-name=%q] .node-bar[data-resource=%q]`, where, row, res)
			b.waitFor(sel, fmt.Sprintf(`!!document.querySelector(%q)`, sel), 30*time.Second)
			got := eval[[]string](b, fmt.Sprintf(`(() => { const e = document.querySelector(%q); return [e.dataset.reserved, e.dataset.capacity, e.dataset.used]; })()`, sel))
			if strings.Join(got, " ") != strings.Join(w.figures, " ") {
				t.Errorf("%s %s %s: reserved/capacity/used %v, want %v", where, row, res, got, w.figures)
			}
			if txt := b.textOf(sel + " [data-figures]"); txt != w.text {
				t.Errorf("%s %s %s: says %q, want %q", where, row, res, txt, w.text)
			}
			widths := eval[[]float64](b, fmt.Sprintf(`['.bar-reserved', '.bar-used'].map((c) => Number(document.querySelector(%q + ' ' + c).getAttribute('width')))`, sel))
			if math.Abs(widths[0]-w.widths[0]) > 0.01 || math.Abs(widths[1]-w.widths[1]) > 0.01 {
				t.Errorf("%s %s %s: bars %v%% wide, want %v", where, row, res, widths, w.widths)
			}
			if over := b.count(sel+" .bar-reserved.over") == 1; over != w.over {
				t.Errorf("%s %s %s: marked over capacity %v, want %v", where, row, res, over, w.over)
			}
		}
	}
	bigWant := map[string]barWant{
		"cpu":    {[]string{"2.25", "8", "3.5"}, "2.25 / 8 CPU reserved · 3.5 CPU used", []float64{28.125, 43.75}, false},
		"memory": {[]string{"5120", "16384", "6144"}, "5.0 GiB / 16.0 GiB reserved · 6.0 GiB used", []float64{31.25, 37.5}, false},
	}
	smallWant := map[string]barWant{
		"cpu":    {[]string{"3", "2", "0.5"}, "3 / 2 CPU reserved · 0.5 CPU used", []float64{100, 25}, true},
		"memory": {[]string{"1024", "2048", "1024"}, "1.0 GiB / 2.0 GiB reserved · 1.0 GiB used", []float64{50, 50}, false},
	}
	b.open(fmt.Sprintf("/admin/environments/%d", qa))
	check("", "big", bigWant)
	b.waitText(`tr[data-name="big"] .node-bars`, "2 deployments reserving")

	b.open("/admin/nodes")
	b.waitFor("fleet rows", `document.querySelectorAll('#fleet tr[data-name]').length === 2`, 30*time.Second)
	if envs := eval[[]string](b, `[...document.querySelectorAll('#fleet tr[data-name]')].map((r) => r.dataset.name + '@' + r.dataset.environment)`); strings.Join(envs, " ") != "big@qa small@staging" {
		t.Errorf("fleet rows %v, want big@qa small@staging", envs)
	}
	check("#fleet", "big", bigWant)
	check("#fleet", "small", smallWant)
	// Only the online node takes deployments.
	b.waitText("#fleet-totals", "2 nodes, 1 online and enabled: 2.25 of 8 CPU and 5.0 GiB of 16.0 GiB reserved")
	if txt := b.textOf("#fleet-totals"); strings.Contains(txt, "this page") {
		t.Errorf("totals of a one-page fleet say %q", txt)
	}
}
