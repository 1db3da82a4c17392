package browsertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/nullops/nullops/server/store"
)

// TestStepsAndLogViewer: a failed deployment's page opens its failed step
// by itself (details and log); the steps table shows every step's
// duration; a step's outputs show its secret values masked; the log
// viewer shows each line's time (or not), searches, wraps or not,
// downloads what it holds, and opens one log by itself in a new tab.
func TestStepsAndLogViewer(t *testing.T) {
	env := startServer(t)
	r := newRows(t, env, env.Project("shop"), env.Environment("qa"))
	id := r.deployment("pr-9", store.DeploymentFailed, "step web failed: health check timed out")
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := env.Store.Pool.Exec(context.Background(), sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`UPDATE deployments SET failed_step = 'web' WHERE id = $1`, id)
	exec(`INSERT INTO deployment_steps (deployment_id, node_key, kind, status, attempt, message, outputs, started_at, finished_at)
		VALUES ($1, 'mkdb', 'component', 'succeeded', 1, 'database app ready',
		        '{"url": "postgres://app:${secrets.db_pw}@db:5432/app", "database": "app"}',
		        '2026-01-02T10:00:00Z', '2026-01-02T10:00:12Z')`, id)
	exec(`UPDATE deployment_steps SET status = 'failed', attempt = 2, message = 'health check timed out',
		started_at = '2026-01-02T10:00:12Z', finished_at = '2026-01-02T10:01:42Z' WHERE deployment_id = $1 AND node_key = 'web'`, id)
	for i, line := range []string{"pulling team/web:v1.0.0\n", "health attempt 1: connection refused\n", "error: health check timed out\n"} {
		exec(`INSERT INTO step_logs (deployment_id, node_key, chunk, created_at) VALUES ($1, 'web', $2, $3)`,
			id, line, time.Date(2026, 1, 2, 10, 0, 12+i, 0, time.UTC))
	}
	exec(`INSERT INTO step_logs (deployment_id, node_key, chunk, created_at) VALUES ($1, 'mkdb', 'creating database app
done
', '2026-01-02T10:00:05Z')`, id)

	b := newBrowser(t, env.URL)
	b.login(adminUser, adminPassword)
	b.open(fmt.Sprintf("/deployments/%d", id))

	// The failed step is open by itself: details, then its log.
	b.waitFor("failed step selected", `!!document.querySelector('.step-details[data-step="web"]')`, 30*time.Second)
	b.waitText(".step-details", "took 1m 30s")
	b.waitText(".step-details", "health check timed out")
	if b.count("#show-failed-step") != 1 {
		t.Errorf("the failure box offers no button to show the failed step")
	}
	b.waitText("#log-output", "error: health check timed out")
	stamped := regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}  pulling team/web:v1\.0\.0$`)
	if got := b.textOf("#log-output"); !stamped.MatchString(got) {
		t.Errorf("log lines without their time: %q", got)
	}
	if got := eval[string](b, `document.querySelector('#log-source').value`); got != "step:web" {
		t.Errorf("log source %q, want step:web", got)
	}

	// Every step's duration in the steps table.
	if got := b.textOf(`tr[data-step="mkdb"] .step-duration`); got != "12s" {
		t.Errorf("mkdb took %q, want 12s", got)
	}
	if got := b.textOf(`tr[data-step="web"] .step-duration`); got != "1m 30s" {
		t.Errorf("web took %q, want 1m 30s", got)
	}

	// Outputs with the secret masked, by name.
	b.click(`[data-show-step="mkdb"]`)
	b.waitFor("mkdb details", `!!document.querySelector('.step-details[data-step="mkdb"] .step-outputs')`, 20*time.Second)
	outs := b.textOf(".step-outputs")
	if !strings.Contains(outs, "postgres://app:••••") || !strings.Contains(outs, "db_pw") || !strings.Contains(outs, "@db:5432/app") || strings.Contains(outs, "${secrets") {
		t.Errorf("outputs shown as %q", outs)
	}
	if b.count(`.secret-mask[data-secret="db_pw"]`) != 1 {
		t.Errorf("the secret in the url output is not masked")
	}
	b.waitText("#log-output", "creating database app")
	b.shot("01-step-outputs")

	// Back to web's log: search, times off, no wrap.
	b.selectOption("#log-source", "Step web")
	b.waitText("#log-output", "error: health check timed out")
	b.fill("#log-search", "HEALTH")
	b.waitText("#log-count", "2 of 3 lines")
	if got := b.textOf("#log-output"); strings.Contains(got, "pulling") {
		t.Errorf("search left %q", got)
	}
	b.click("#log-times")
	b.waitFor("lines without times", `document.querySelector('#log-output').textContent.startsWith('health attempt 1')`, 10*time.Second)
	b.click("#log-wrap")
	b.waitFor("unwrapped log (white-space: pre)", `getComputedStyle(document.querySelector('#log-output')).whiteSpace === 'pre'`, 10*time.Second)
	b.click("#log-times")
	b.shot("02-log-search")

	// Download: every line held (not only the search's), with UTC times.
	dir := t.TempDir()
	if _, err := chromedp.CallBrowser(b.ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir}); err != nil {
		t.Fatalf("allow downloads: %v", err)
	}
	b.click("#log-download")
	file := filepath.Join(dir, "pr-9-step-web.log")
	var data []byte
	for deadline := time.Now().Add(pageWait); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if data, _ = os.ReadFile(file); len(data) > 0 {
			break
		}
	}
	want := "2026-01-02T10:00:12.000Z pulling team/web:v1.0.0\n2026-01-02T10:00:13.000Z health attempt 1: connection refused\n2026-01-02T10:00:14.000Z error: health check timed out\n"
	if string(data) != want {
		t.Errorf("downloaded %q, want %q", data, want)
	}

	// A log by itself: the link opens the page with that log chosen.
	href := eval[string](b, `document.querySelector('#log-alone').getAttribute('href')`)
	if href != fmt.Sprintf("/deployments/%d?log=step%%3Aweb", id) {
		t.Errorf("open-in-a-new-tab link %q", href)
	}
	b.open(fmt.Sprintf("/deployments/%d?log=step%%3Amkdb", id))
	b.waitText("#log-output", "creating database app")
	b.waitFor("mkdb selected", `!!document.querySelector('.step-details[data-step="mkdb"]')`, 20*time.Second)

	// A deploying deployment opens its running step, whose duration runs.
	live := r.deployment("pr-10", store.DeploymentDeploying, "")
	exec(`UPDATE deployment_steps SET status = 'running', attempt = 1, started_at = now() - interval '65 seconds', finished_at = NULL
		WHERE deployment_id = $1 AND node_key = 'web'`, live)
	b.open(fmt.Sprintf("/deployments/%d", live))
	b.waitFor("running step selected", `!!document.querySelector('.step-details[data-step="web"]')`, 20*time.Second)
	b.waitText(".step-details .step-took", "running for 1m")
	first := b.textOf(".step-details .step-took")
	b.waitFor("the running duration ticks", fmt.Sprintf(`document.querySelector('.step-details .step-took').textContent !== %q`, first), 10*time.Second)
}
