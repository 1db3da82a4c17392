package browsertest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/store"
)

// rowNames returns the data-name of the rows of the first table body.
func rowNames(b *browser) []string {
	return eval[[]string](b, `[...document.querySelectorAll('#main tbody tr')].map((r) => r.dataset.name)`)
}

// waitRows waits until the list shows exactly the rows named want, in order.
func (b *browser) waitRows(want ...string) {
	b.t.Helper()
	js := fmt.Sprintf(`JSON.stringify([...document.querySelectorAll('#main tbody tr')].map((r) => r.dataset.name)) === %q`, jsonList(want))
	deadline := time.Now().Add(pageWait)
	for time.Now().Before(deadline) {
		if ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](js)); err == nil && ok {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.shot("FAILED-rows")
	b.t.Fatalf("rows %v, want %v%s", rowNames(b), want, b.visibleErrors())
}

func jsonList(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return "[" + strings.Join(q, ",") + "]"
}

// sortBy clicks a sortable column header and waits until the redrawn
// table says it is sorted that way (aria-sort).
func (b *browser) sortBy(key, dir string) {
	b.t.Helper()
	b.click(fmt.Sprintf(`th[data-sort=%q] button`, key))
	b.waitFor("sorted by "+key+" "+dir, fmt.Sprintf(`!!document.querySelector('th[data-sort=%q][aria-sort=%q]')`, key, dir), 20*time.Second)
}

// TestListsSearchSortMineAndPage: the deployments list searches names,
// shows only the user's own with "Only mine", sorts by a column header
// both ways (keeping all of it in the URL, so a reload or a shared link
// shows the same list), pages, and says when the filters leave nothing,
// with a button that clears them. The users list searches and sorts on the
// server; a small admin list (teams) searches and sorts in the page; the
// audit log tells a filter without results from an empty log.
func TestListsSearchSortMineAndPage(t *testing.T) {
	env := startServer(t)
	pid, eid := env.Project("shop"), env.Environment("qa")
	dev := env.UserWithPassword("dev", devPassword, false)
	other := env.User("other", false)
	env.Grant(env.Team("devs", dev.ID, other.ID), store.ScopeEnvironment, eid, auth.Full)
	r := newRows(t, env, pid, eid)
	own := func(name string, owner int64) {
		id := r.deployment(name, store.DeploymentRunning, "")
		if _, err := env.Store.Pool.Exec(context.Background(), "UPDATE deployments SET owner_id = $1 WHERE id = $2", owner, id); err != nil {
			t.Fatal(err)
		}
	}
	own("pr-1", dev.ID)
	own("pr-20", other.ID)
	own("feature-b", dev.ID)
	for i := range 27 {
		own(fmt.Sprintf("bulk-%02d", i), other.ID)
	}

	b := newBrowser(t, env.URL)
	b.login("dev", devPassword)
	b.open("/deployments")
	b.waitFor("25 rows", `document.querySelectorAll('#main tbody tr').length === 25 && !!document.querySelector('#flt-q')`, 30*time.Second)
	b.waitText(".pager", "Page 1 of 2 (30 total)")
	b.click(".pager button:last-child")
	b.waitText(".pager", "Page 2 of 2 (30 total)")
	b.waitRows("bulk-01", "bulk-00", "feature-b", "pr-20", "pr-1")

	// Search: from the first page, newest first.
	b.fill("#flt-q", "pr-")
	b.waitRows("pr-20", "pr-1")
	b.waitFor("search in the URL", `new URLSearchParams(location.search).get('q') === 'pr-' && !new URLSearchParams(location.search).has('page')`, 10*time.Second)
	// Sort by name, ascending then descending.
	b.sortBy("name", "ascending")
	b.waitRows("pr-1", "pr-20")
	b.sortBy("name", "descending")
	b.waitRows("pr-20", "pr-1")
	b.waitFor("sort in the URL", `location.search.includes('sort=name') && location.search.includes('order=desc')`, 10*time.Second)
	// Only mine.
	b.click("#flt-mine")
	b.waitRows("pr-1")
	b.shot("01-search-sort-mine")
	// A reload keeps it all.
	b.open("/deployments" + eval[string](b, "location.search"))
	b.waitRows("pr-1")
	if !eval[bool](b, `document.querySelector('#flt-mine').checked && document.querySelector('#flt-q').value === 'pr-'`) {
		t.Errorf("the filters are not shown after a reload of %s", eval[string](b, "location.href"))
	}
	// No match: a filtered empty state, not "no deployments yet".
	b.fill("#flt-q", "no-such-thing")
	b.waitText("#main .empty", "No deployments match these filters.")
	if strings.Contains(b.textOf("#main .empty"), "Create the first one") {
		t.Errorf("a filter without results offers to create the first deployment")
	}
	b.shot("02-no-matches")
	b.click("[data-clear-filters]")
	b.waitFor("25 rows again", `document.querySelectorAll('#main tbody tr').length === 25`, 30*time.Second)
	if eval[string](b, `document.querySelector('#flt-q').value`) != "" || eval[bool](b, `document.querySelector('#flt-mine').checked`) {
		t.Errorf("Clear filters left the search or Only mine set")
	}
	b.waitRows(append([]string{"pr-20", "pr-1"}, rowNames(b)[2:]...)...) // still sorted by name, descending

	// Users (admin): the server searches and sorts.
	for _, u := range []string{"qa-anna", "qa-ben", "qa-cleo"} {
		env.User(u, false)
	}
	a := newBrowser(t, env.URL)
	a.login(adminUser, adminPassword)
	a.open("/admin/users")
	a.fill("#list-search", "qa-")
	a.waitRows("qa-anna", "qa-ben", "qa-cleo")
	a.sortBy("username", "ascending")
	a.waitRows("qa-anna", "qa-ben", "qa-cleo")
	a.sortBy("username", "descending")
	a.waitRows("qa-cleo", "qa-ben", "qa-anna")
	a.fill("#list-search", "nobody-here")
	a.waitText("#main .empty", "No users match these filters.")
	a.click("[data-clear-filters]")
	a.waitFor("every user", `document.querySelectorAll('#main tbody tr').length === 6`, 20*time.Second)

	// Teams (a small list): searched and sorted in the page.
	for _, name := range []string{"alpha", "beta", "gamma"} {
		env.Team(name)
	}
	a.open("/admin/teams")
	a.waitText("#list-count", "4 total")
	a.sortBy("Name", "ascending")
	a.waitRows("alpha", "beta", "devs", "gamma")
	a.sortBy("Name", "descending")
	a.waitRows("gamma", "devs", "beta", "alpha")
	a.fill("#list-search", "ta")
	a.waitRows("beta")
	a.waitText("#list-count", "1 of 4")
	a.fill("#list-search", "zzz")
	a.waitText("#main .empty", "No teams match these filters.")
	a.shot("03-teams-no-match")

	// Users page 50 at a time (the server pages).
	for i := range 50 {
		env.User(fmt.Sprintf("bulk-user-%02d", i), false)
	}
	a.open("/admin/users")
	a.waitText(".pager", "Page 1 of 2 (56 total)")
	a.click(".pager button:last-child")
	a.waitText(".pager", "Page 2 of 2 (56 total)")
	a.waitRows("bulk-user-49", "dev", "other", "qa-anna", "qa-ben", "qa-cleo")

	// Audit: paged, and a filter without results is not an empty log.
	if _, err := env.Store.Pool.Exec(context.Background(), `INSERT INTO audit_log (actor_name, action, target_type, target_id)
		SELECT 'admin', 'team.update', 'team', g::text FROM generate_series(1, 60) g`); err != nil {
		t.Fatal(err)
	}
	a.open("/admin/audit")
	a.waitText(".pager", "Page 1 of 2")
	a.open("/admin/audit?actor=nobody")
	a.waitText("#main .empty", "No audit entries match these filters.")
}

// requestLog records the HTTP requests of a tab (from the Network domain),
// by method and URL.
type requestLog struct {
	mu       sync.Mutex
	urls     []string
	inflight map[network.RequestID]string
	cached   int                        // served from the browser's cache or revalidated (304)
	local    map[network.RequestID]bool // answered by the browser's cache, not the server
}

func watchRequests(b *browser) *requestLog {
	l := &requestLog{inflight: map[network.RequestID]string{}, local: map[network.RequestID]bool{}}
	if err := chromedp.Listen(b.ctx, func(ev any) {
		l.mu.Lock()
		defer l.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			l.urls = append(l.urls, e.Request.Method+" "+strings.TrimPrefix(e.Request.URL, b.base))
			l.inflight[e.RequestID] = e.Request.URL
		case *network.EventRequestServedFromCache:
			// Chrome does not always follow a memory-cache hit with
			// loadingFinished: the request is over here.
			l.cached++
			l.local[e.RequestID] = true
			delete(l.inflight, e.RequestID)
		case *network.EventResponseReceived:
			if e.Response.Status == 304 {
				l.cached++
			}
			if e.Response.FromDiskCache || e.Response.FromPrefetchCache {
				l.local[e.RequestID] = true
			}
		case *network.EventLoadingFinished:
			delete(l.inflight, e.RequestID)
		case *network.EventLoadingFailed:
			delete(l.inflight, e.RequestID)
		}
	}); err != nil {
		b.t.Fatalf("listen to the network: %v", err)
	}
	return l
}

// finished ends the requests for urls (the page's timeline shows their
// responses complete).
func (l *requestLog) finished(urls []string) {
	done := make(map[string]bool, len(urls))
	for _, u := range urls {
		done[u] = true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, u := range l.inflight {
		if done[u] {
			delete(l.inflight, id)
		}
	}
}

// reset forgets what was recorded.
func (l *requestLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.urls, l.cached = nil, 0
	clear(l.local)
}

// settled reports whether every request but the live event stream ended.
func (l *requestLog) settled() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, u := range l.inflight {
		if !strings.HasSuffix(u, "/api/v1/events") {
			return false
		}
	}
	return true
}

func (l *requestLog) snapshot() ([]string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.urls...), l.cached
}

// toServer counts the responses that came from the server.
func (l *requestLog) toServer() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.urls) - len(l.local)
}

// TestDeploymentsListRequestCount: a warm load of the deployments list
// (the browser has loaded the app once) makes the same HTTP requests with
// 1 deployment and with 200: one list request carries every row's access
// level and links.
func TestDeploymentsListRequestCount(t *testing.T) {
	env := startServer(t)
	pid, eid := env.Project("shop"), env.Environment("qa")
	dev := env.UserWithPassword("dev", devPassword, false)
	env.Grant(env.Team("devs", dev.ID), store.ScopeEnvironment, eid, auth.Full)
	r := newRows(t, env, pid, eid)
	r.deployment("first", store.DeploymentRunning, "")

	b := newBrowser(t, env.URL)
	b.login("dev", devPassword)
	log := watchRequests(b)
	// drawn waits until the list shows rows with their links and filters
	// and every request of the load but the event stream has ended.
	drawn := func(rows int) {
		t.Helper()
		b.waitFor(fmt.Sprintf("%d rows with links and the filters", rows), fmt.Sprintf(
			`document.querySelectorAll('#main tbody tr a[data-external]').length === %d && !!document.querySelector('#flt-project')`, rows), 30*time.Second)
		deadline := time.Now().Add(pageWait)
		for !log.settled() {
			if time.Now().After(deadline) {
				log.mu.Lock()
				t.Fatalf("requests still in flight after the list was drawn: %v", log.inflight)
			}
			time.Sleep(150 * time.Millisecond)
			// Chrome does not always send loadingFinished for a module
			// it served from its memory cache (its requestId stays "in
			// flight" forever; a run under load kept three such assets
			// for two minutes): what the page's own timeline says
			// finished is over.
			log.finished(eval[[]string](b, `[...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')].filter((e) => e.responseEnd > 0).map((e) => e.name)`))
		}
	}
	load := func(rows int) ([]string, int, int) {
		t.Helper()
		b.open("/deployments") // the browser has seen the page: the cache is warm
		drawn(rows)
		log.reset()
		b.do("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#page-title")))
		drawn(rows)
		// Assets have content-hashed names and are immutable: a warm load
		// asks the server for index.html and the API only.
		urls, cached := log.snapshot()
		n := log.toServer()
		if n > 10 {
			t.Errorf("a warm load of the deployments list with %d rows got %d responses from the server (want at most 10): %v", rows, n, urls)
		}
		return urls, cached, n
	}
	one, cachedOne, serverOne := load(1)
	for i := range 199 {
		r.deployment(fmt.Sprintf("many-%03d", i), store.DeploymentRunning, "")
	}
	many, cachedMany, serverMany := load(25)
	t.Logf("warm load of /deployments: %d HTTP requests with 1 deployment (%d answered from the cache or 304, %d by the server), %d to the API: %v", len(one), cachedOne, serverOne, len(apiOnly(one)), one)
	t.Logf("warm load of /deployments: %d HTTP requests with 200 deployments (%d answered from the cache or 304, %d by the server), %d to the API: %v", len(many), cachedMany, serverMany, len(apiOnly(many)), many)
	if len(one) != len(many) {
		t.Errorf("a warm load of the deployments list makes %d requests with 1 deployment and %d with 200", len(one), len(many))
	}
	// The same requests; their order is not the point (requests the page
	// sends once earlier answers arrive can be sent in either order).
	if a, b := slices.Sorted(slices.Values(apiOnly(one))), slices.Sorted(slices.Values(apiOnly(many))); strings.Join(a, " ") != strings.Join(b, " ") {
		t.Errorf("API requests differ: %v with 1 deployment, %v with 200", a, b)
	}
	for _, u := range many {
		if strings.Contains(u, "/editor/") || strings.Contains(u, "/pages/admin/") {
			t.Errorf("the list page loaded %s, which only other pages need", u)
		}
	}
	for _, u := range apiOnly(many) {
		if strings.Contains(u, "/api/v1/deployments/") || strings.Contains(u, "/access") {
			t.Errorf("the list page requested %s", u)
		}
	}
}

// apiOnly keeps the requests to the API.
func apiOnly(reqs []string) []string {
	var out []string
	for _, r := range reqs {
		if strings.Contains(r, " /api/v1/") {
			out = append(out, r)
		}
	}
	return out
}
