package browsertest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestUserDeploysWatchesAndDeletes is the user journey on the full stack: a
// developer with full access creates a deployment choosing a tag from the
// dropdown (filled from the registry, filtered by the pattern), watches it
// reach running live, opens its ingress link (served by nullops-ingress),
// sees the service's log streaming, extends and deletes it. A read-only
// user sees the same deployment without any action, and the API refuses
// the actions anyway.
func TestUserDeploysWatchesAndDeletes(t *testing.T) {
	st := newDeploymentStack(t)
	b := newBrowser(t, st.URL, chromedp.ProxyServer("http://"+st.Proxy))
	b.login("dev", stackUserPass)
	b.waitFor("new deployment button", `!document.querySelector('#new-deployment').hidden`, 15*time.Second)

	// Create: the tag dropdown offers exactly the registry's v1.* tags.
	b.click("#new-deployment")
	b.waitFor("tag dropdown", `!!document.querySelector('select[data-service="web"] option[value="v1.1.0"]')`, 30*time.Second)
	tags := eval[[]string](b, `[...document.querySelector('select[data-service="web"]').options].map((o) => o.value)`)
	if strings.Join(tags, ",") != "v1.1.0,v1.0.0" && strings.Join(tags, ",") != "v1.0.0,v1.1.0" {
		t.Errorf("tag dropdown offers %v, want v1.0.0 and v1.1.0 only", tags)
	}
	b.fill(`#deployment-form [name="name"]`, "pr-42")
	b.selectOption(`select[data-service="web"]`, "v1.0.0")
	b.shot("01-create-deployment")
	b.click(`#deployment-form button[type="submit"]`)

	// The deployment page follows the pipeline live until running.
	b.waitFor("deployment page", `location.pathname.startsWith('/deployments/') && !!document.querySelector('#dep-status')`, 20*time.Second)
	depPath := eval[string](b, `location.pathname`)
	b.waitFor("status running", `document.querySelector('#dep-status').textContent.includes('running')`, 120*time.Second)
	b.waitFor("web node lit as succeeded", `!!document.querySelector('svg.progress-graph g.node.st-succeeded[data-node="web"]')`, 20*time.Second)
	b.waitFor("service health shown", `!!document.querySelector('tr[data-service="web"]')`, 20*time.Second)
	link := eval[string](b, `(document.querySelector('a[href^="http://web.pr-42.qa.ui.test"]') || {}).href || ''`)
	if link == "" {
		t.Fatalf("no ingress link for web on the deployment page")
	}

	// Logs stream from the running container.
	b.selectOption("#log-source", "Service web")
	b.waitText("#log-output", "listening")
	b.waitText("#log-state", "streaming live")
	// Each line shows the time Docker received it (the agent's timestamps).
	b.waitFor("service log lines with their time", `/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}  .*listening/m.test(document.querySelector('#log-output').textContent)`, 20*time.Second)
	b.shot("02-deployment-running")

	// A read-only user sees it without any action, and the API refuses.
	reader := newBrowser(t, st.URL)
	reader.login("reader", stackUserPass)
	reader.waitFor("list row", `!!document.querySelector('tr[data-name="pr-42"]')`, 20*time.Second)
	if reader.count(`tr[data-name="pr-42"] button:not(.copy), tr[data-name="pr-42"] [data-action]`) != 0 {
		t.Errorf("read-only user sees action buttons in the list")
	}
	if !eval[bool](reader, `document.querySelector('#new-deployment').hidden`) {
		t.Errorf("read-only user sees the New deployment button")
	}
	reader.open(depPath)
	reader.waitFor("reader deployment page", `!!document.querySelector('#dep-status') && document.querySelector('#dep-status').textContent.includes('running')`, 20*time.Second)
	if n := reader.count(`[data-action]`); n != 0 {
		t.Errorf("read-only user sees %d action buttons on the deployment page", n)
	}
	reader.shot("03-read-only-deployment")
	readerAPI := apiLogin(t, st.URL, "reader", stackUserPass)
	depID := strings.TrimPrefix(depPath, "/deployments/")
	for _, path := range []string{"/deployments/" + depID + "/extend", "/deployments/" + depID + "/cancel"} {
		if status := readerAPI.call("POST", path, map[string]any{}, 0, nil); status != 403 {
			t.Errorf("reader POST %s: status %d, want 403", path, status)
		}
	}
	if status := readerAPI.call("DELETE", "/deployments/"+depID, nil, 0, nil); status != 403 {
		t.Errorf("reader DELETE: status %d, want 403", status)
	}

	// Open the ingress link: nullops-ingress proxies to the container.
	b.do("open ingress link", navigate(link))
	b.waitText("body", "hello from web")
	b.shot("04-ingress")
	b.open(depPath)
	b.waitFor("running again", `document.querySelector('#dep-status').textContent.includes('running')`, 20*time.Second)

	// Extend: the history records it and the countdown is still running.
	b.click(`[data-action="extend"]`)
	b.waitText("#toasts", "pr-42 extended")
	b.waitText(".history", "extend")
	if cd := b.textOf("#dep-expires"); !strings.Contains(cd, "h") {
		t.Errorf("countdown after extend shows %q, want about 2h", cd)
	}

	// Clone with another tag: a new deployment with its own name and URL.
	b.click(`[data-action="clone"]`)
	b.waitFor("clone form", `!!document.querySelector('select[data-service="web"] option[value="v1.1.0"]')`, 30*time.Second)
	if name := eval[string](b, `document.querySelector('#deployment-form [name="name"]').value`); name != "pr-43" {
		t.Errorf("clone suggests the name %q, want pr-43", name)
	}
	if tag := eval[string](b, `document.querySelector('select[data-service="web"]').value`); tag != "v1.0.0" {
		t.Errorf("clone preselects tag %q, want the source's v1.0.0", tag)
	}
	b.selectOption(`select[data-service="web"]`, "v1.1.0")
	b.click(`#deployment-form button[type="submit"]`)
	b.waitFor("clone page", `location.pathname !== '`+depPath+`' && location.pathname.startsWith('/deployments/') && !!document.querySelector('#dep-status')`, 20*time.Second)
	b.waitText("#page-title", "pr-43")
	b.waitFor("clone running", `document.querySelector('#dep-status').textContent.includes('running')`, 120*time.Second)
	if v := b.textOf("dl.facts"); !strings.Contains(v, "web:v1.1.0") || !strings.Contains(v, "Cloned from") {
		t.Errorf("clone facts %q: want web:v1.1.0 and the source", v)
	}

	// The list shows it with its link and countdown.
	b.open("/deployments")
	b.waitFor("row with link", `!!document.querySelector('tr[data-name="pr-42"] a[href^="http://web.pr-42"]')`, 20*time.Second)
	b.waitFor("countdown", `!!document.querySelector('tr[data-name="pr-42"] .countdown')`, 5*time.Second)
	b.shot("05-deployments-list")

	// On a phone the list becomes stacked cards with no sideways scrolling,
	// and the navigation folds behind a menu button.
	b.do("phone viewport", chromedp.EmulateViewport(390, 844))
	b.open("/deployments")
	b.waitFor("row on phone", `!!document.querySelector('tr[data-name="pr-42"] .countdown')`, 20*time.Second)
	if w := eval[[]int](b, `[document.documentElement.scrollWidth, window.innerWidth]`); w[0] > w[1] {
		t.Errorf("phone layout scrolls sideways: content %dpx wide in a %dpx window", w[0], w[1])
	}
	if !eval[bool](b, `getComputedStyle(document.querySelector('#menu-toggle')).display !== 'none' && getComputedStyle(document.querySelector('#nav')).display === 'none'`) {
		t.Errorf("phone layout: want the menu button instead of the navigation bar")
	}
	b.shot("05b-deployments-phone")
	b.open(depPath)
	b.waitFor("page on phone", `document.querySelector('#dep-status').textContent.includes('running')`, 20*time.Second)
	if w := eval[[]int](b, `[document.documentElement.scrollWidth, window.innerWidth]`); w[0] > w[1] {
		wide := eval[[]string](b, `[...document.querySelectorAll('main *')].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1).slice(0, 8).map((e) => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))`)
		t.Errorf("phone deployment page scrolls sideways: %dpx in %dpx; too wide: %v", w[0], w[1], wide)
	}
	b.shot("05c-deployment-phone")
	b.do("laptop viewport", chromedp.EmulateViewport(1400, 950))
	b.open("/deployments")
	b.waitFor("row", `!!document.querySelector('tr[data-name="pr-42"]')`, 20*time.Second)

	// Delete with confirmation; it goes away.
	b.click(`tr[data-name="pr-42"] [data-action="delete"]`)
	b.waitFor("confirm dialog", `!!document.querySelector('dialog[open]')`, 5*time.Second)
	b.click(`dialog[open] button[value="ok"]`)
	b.waitText("#toasts", "pr-42 is being deleted")
	b.open(depPath)
	b.waitFor("deleted", `document.querySelector('#dep-status').textContent.includes('deleted')`, 90*time.Second)
	if n := b.count(`[data-action]:not([data-action="create-again"])`); n != 0 {
		t.Errorf("a deleted deployment still offers %d actions", n)
	}
	if b.count(`[data-action="create-again"]`) != 1 {
		t.Errorf("a deleted deployment does not offer to create it again")
	}
	b.shot("06-deleted")
	_ = fmt.Sprint
}
