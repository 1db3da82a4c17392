package browsertest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/nullops/nullops/server/api/apitest"
	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/store"
)

const devPassword = "dev-password-long"

// rows inserts deployments straight into the database (the lifecycle and
// its agents are covered by the stack tests; these tests are about how the
// UI shows what the server says).
type rows struct {
	t   *testing.T
	env *apitest.Env
	pv  int64
	pid int64
	eid int64
}

func newRows(t *testing.T, env *apitest.Env, pid, eid int64) *rows {
	r := &rows{t: t, env: env, pid: pid, eid: eid}
	r.pv = r.id(`INSERT INTO pipeline_versions (project_id, version, graph)
		VALUES ($1, 1, '{"nodes":[{"id":"web","kind":"service","service":"web","port":8080}],"edges":[]}') RETURNING id`, pid)
	return r
}

func (r *rows) id(sql string, args ...any) int64 {
	r.t.Helper()
	var id int64
	if err := r.env.Store.Pool.QueryRow(context.Background(), sql, args...).Scan(&id); err != nil {
		r.t.Fatalf("%s: %v", sql, err)
	}
	return id
}

// deployment inserts a deployment in status with a healthy ingress
// service "web" (what its last report said) and a succeeded step.
func (r *rows) deployment(name, status, reason string) int64 {
	r.t.Helper()
	deleted := "NULL"
	if status == store.DeploymentDeleted {
		deleted = "now() - interval '1 hour'"
	}
	id := r.id(`INSERT INTO deployments (name, project_id, environment_id, pipeline_version_id, status, status_reason, cpu, memory_mb, ttl_seconds, expires_at, deleted_at, tags)
		VALUES ($1, $2, $3, $4, $5, $6, 0.5, 256, 3600, now() + interval '1 hour', `+deleted+`, '{"web":"v1.0.0"}') RETURNING id`,
		name, r.pid, r.eid, r.pv, status, reason)
	r.id(`INSERT INTO deployment_services (deployment_id, node_key, image, tag, ingress, health, cpu_percent, memory_bytes)
		VALUES ($1, 'web', 'team/web', 'v1.0.0', TRUE, 'healthy', 3.5, 41943040) RETURNING deployment_id`, id)
	r.id(`INSERT INTO deployment_steps (deployment_id, node_key, kind, status) VALUES ($1, 'web', 'service', 'succeeded') RETURNING deployment_id`, id)
	return id
}

// apiRequests lists the distinct API requests the page made since it
// loaded (path and query), leaving out the live event stream. Distinct: a
// read the browser aborted (the network changes whenever someone creates a
// Docker network) and the UI retried counts once.
func apiRequests(b *browser) []string {
	return eval[[]string](b, `[...new Set(performance.getEntriesByType('resource').map((e) => new URL(e.name)).filter((u) => u.pathname.startsWith('/api/v1/') && u.pathname !== '/api/v1/events').map((u) => u.pathname + u.search))]`)
}

// TestDeadDeploymentsLookDeadAndAccessComesFromTheServer: a failed and a
// deleted deployment show no health, live links, countdown or Extend; the
// deleted one says when and by whom, offers "Create again" and explains
// that its service logs are gone. The list and the deployment pages take
// the caller's access from the server (no grants probing) and the list
// loads in the same number of requests for 1 and 200 deployments.
func TestDeadDeploymentsLookDeadAndAccessComesFromTheServer(t *testing.T) {
	env := startServer(t)
	pid, eid := env.Project("shop"), env.Environment("qa")
	dev := env.UserWithPassword("dev", devPassword, false)
	env.Grant(env.Team("devs", dev.ID), store.ScopeEnvironment, eid, auth.Full)
	r := newRows(t, env, pid, eid)
	r.deployment("live", store.DeploymentRunning, "")

	b := newBrowser(t, env.URL)
	b.login("dev", devPassword)
	b.open("/deployments")
	b.waitFor("live row and filters", `!!document.querySelector('tr[data-name="live"] a[data-external]') && !!document.querySelector('#flt-project')`, 30*time.Second)
	one := apiRequests(b)

	broke := r.deployment("broke", store.DeploymentFailed, "step web failed: exit status 1")
	gone := r.deployment("gone", store.DeploymentDeleted, "")
	if _, err := env.Store.Pool.Exec(context.Background(), `INSERT INTO deployment_history (deployment_id, actor_id, actor_name, action, detail, created_at)
		VALUES ($1, $2, 'alice-admin', 'deleted', '{}', now() - interval '1 hour')`, gone, dev.ID); err != nil {
		t.Fatal(err)
	}

	// The list: the failed row is dead, the live one is not.
	b.open("/deployments")
	b.waitFor("broke row", `!!document.querySelector('tr[data-name="broke"]')`, 30*time.Second)
	if b.count(`tr[data-name="live"] a[href^="http://web.live.qa.qa.test"]`) != 1 || b.count(`tr[data-name="live"] [data-action="extend"]`) != 1 {
		t.Errorf("running row: want its live link and Extend")
	}
	if n := b.count(`tr[data-name="broke"] a[data-external], tr[data-name="broke"] time.countdown, tr[data-name="broke"] [data-action="extend"]`); n != 0 {
		t.Errorf("failed row shows %d live links, countdowns or Extend buttons", n)
	}
	if b.count(`tr[data-name="broke"] [data-dead-link="web"]`) != 1 || b.count(`tr[data-name="broke"] [data-action="retry"]`) != 1 {
		t.Errorf("failed row: want its link as dead text and a Retry button")
	}
	b.shot("01-list-live-and-failed")

	// The failed deployment's page.
	b.open(fmt.Sprintf("/deployments/%d", broke))
	b.waitText("#dep-status", "failed")
	b.waitFor("services table", `!!document.querySelector('tr[data-service="web"]')`, 20*time.Second)
	if got := b.textOf(`tr[data-service="web"]`); strings.Contains(got, "healthy") || strings.Contains(got, "open ↗") || strings.Contains(got, "3.5%") {
		t.Errorf("failed deployment's service row says %q: want no health, link or figures", got)
	}
	if n := b.count(`#main a[data-external], #dep-expires time.countdown, [data-action="extend"]`); n != 0 {
		t.Errorf("failed deployment page shows %d live links, countdowns or Extend buttons", n)
	}
	b.waitText("#failure-reason", "exit status 1")
	b.shot("02-failed-deployment")

	// The deleted one: when, by whom, create again, logs explained.
	b.open(fmt.Sprintf("/deployments/%d", gone))
	b.waitText("#dep-status", "deleted")
	b.waitText("#deleted-note", "by alice-admin")
	if got := b.textOf("#deleted-note"); !strings.HasPrefix(strings.TrimSpace(got), "Deleted") {
		t.Errorf("deleted note %q", got)
	}
	if n := b.count(`#main a[data-external], #dep-expires time.countdown, [data-action="extend"], [data-action="delete"]`); n != 0 {
		t.Errorf("deleted deployment page shows %d live links, countdowns or actions", n)
	}
	if n := b.count(`#log-source option[value^="service:"]`); n != 0 {
		t.Errorf("deleted deployment offers %d service logs", n)
	}
	b.waitText("#log-state", "was deleted")
	b.shot("03-deleted-deployment")
	b.click(`[data-action="create-again"]`)
	b.waitText("#page-title", "Create deployment again")
	b.waitFor("name prefilled", `document.querySelector('#deployment-form [name="name"]').value === 'gone'`, 20*time.Second)
	for _, p := range apiRequests(b) {
		if strings.Contains(p, "/logs") || strings.Contains(p, "/access") {
			t.Errorf("the UI requested %s", p)
		}
	}

	// Deleted deployments in the list say when.
	b.open("/deployments?status=deleted")
	b.waitFor("gone row", `!!document.querySelector('tr[data-name="gone"] [data-action="create-again"]')`, 30*time.Second)
	b.waitText(`tr[data-name="gone"]`, "deleted")

	// 200 deployments: the list loads in as many requests as with one.
	for i := 0; i < 197; i++ {
		r.deployment(fmt.Sprintf("many-%03d", i), store.DeploymentRunning, "")
	}
	b.open("/deployments")
	b.waitFor("25 rows with links and filters", `document.querySelectorAll('tbody tr a[data-external]').length === 25 && !!document.querySelector('#flt-project')`, 30*time.Second)
	many := apiRequests(b)
	t.Logf("deployments list: %d API requests with 1 deployment %v, %d with 200 %v", len(one), one, len(many), many)
	if len(many) != len(one) {
		t.Errorf("list with 200 deployments made %d API requests, with 1 it made %d", len(many), len(one))
	}
	for _, p := range many {
		if strings.Contains(p, "/access") || strings.HasPrefix(p, "/api/v1/deployments/") {
			t.Errorf("list page requested %s", p)
		}
	}
}

// readClipboard grants the page clipboard access (once) and returns what
// is on the clipboard.
func readClipboard(b *browser) string {
	b.t.Helper()
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.Call(b.ctx, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
			Permission: &cdpbrowser.PermissionDescriptor{Name: name}, Setting: cdpbrowser.PermissionSettingGranted, Origin: b.base}); err != nil {
			b.t.Fatalf("grant %s: %v", name, err)
		}
	}
	// A headless page never has the focus the Clipboard API wants.
	if _, err := chromedp.Call(b.ctx, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true}); err != nil {
		b.t.Fatalf("emulate focus: %v", err)
	}
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("read the clipboard: %v", err)
	}
	return v
}

// TestLinksInFullWithCopy: a running deployment's links are shown in full,
// each with a copy button, on its page and in the list; "Copy all links"
// copies one "service: URL" line per exposed service.
func TestLinksInFullWithCopy(t *testing.T) {
	env := startServer(t)
	r := newRows(t, env, env.Project("shop"), env.Environment("qa"))
	id := r.deployment("pr-7", store.DeploymentRunning, "")
	r.id(`INSERT INTO deployment_services (deployment_id, node_key, image, tag, ingress, health)
		VALUES ($1, 'api', 'team/api', 'v1', TRUE, 'healthy') RETURNING deployment_id`, id)

	b := newBrowser(t, env.URL)
	b.login(adminUser, adminPassword)
	b.open(fmt.Sprintf("/deployments/%d", id))
	b.waitText("#dep-links", "http://web.pr-7.qa.qa.test")
	b.waitText("#dep-links", "http://api.pr-7.qa.qa.test")
	readClipboard(b) // grant access before copying
	b.click("#copy-all-links")
	b.waitText("#toasts", "2 links copied")
	if got := readClipboard(b); got != "api: http://api.pr-7.qa.qa.test\nweb: http://web.pr-7.qa.qa.test" {
		t.Errorf("Copy all links copied %q", got)
	}
	b.shot("01-links-in-full")

	b.open("/deployments")
	b.click(`tr[data-name="pr-7"] button[aria-label="Copy the link of web"]`)
	b.waitText("#toasts", "Link of web copied")
	if got := readClipboard(b); got != "http://web.pr-7.qa.qa.test" {
		t.Errorf("the list's copy button copied %q", got)
	}
}

// TestDeploymentsListCappedTotal: past the server's count cap the pager says
// "1,000+" and "40+" pages and still offers the next page.
func TestDeploymentsListCappedTotal(t *testing.T) {
	env := startServer(t)
	r := newRows(t, env, env.Project("shop"), env.Environment("qa"))
	if _, err := env.Store.Pool.Exec(context.Background(), `INSERT INTO deployments (name, project_id, environment_id, pipeline_version_id, status, cpu, memory_mb, ttl_seconds, expires_at)
		SELECT 'bulk-' || i, $1, $2, $3, 'running', 0.1, 64, 3600, now() + interval '1 hour' FROM generate_series(1, $4::int) i`,
		r.pid, r.eid, r.pv, store.DeploymentCountCap+10); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, env.URL)
	b.login(adminUser, adminPassword)
	b.open("/deployments")
	b.waitText(".pager", "Page 1 of 40+ (1,000+ total)")
	b.click(".pager button:last-child")
	b.waitText(".pager", "Page 2 of 40+ (1,000+ total)")
	b.waitFor("page 2 in the URL", `new URLSearchParams(location.search).get('page') === '2'`, 10*time.Second)
}
