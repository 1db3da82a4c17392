// Package browsertest drives the real web UI in a real Chromium (Debian's
// /usr/bin/chromium through chromedp) against a real nullops-server on a
// fresh PostgreSQL database. Every test fails on a console.error or an
// uncaught exception in the page, and saves screenshots of the pages it
// visits under test-artifacts/screenshots/ (git-ignored).
package browsertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/server/api/apitest"
)

const (
	chromiumPath  = "/usr/bin/chromium"
	adminUser     = apitest.AdminUsername
	adminPassword = apitest.AdminPassword
)

// startServer runs the real server stack (server/app through apitest) on a
// fresh database, with the bootstrap admin apitest.AdminUsername.
func startServer(t *testing.T) *apitest.Env {
	t.Helper()
	return apitest.New(t)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// browser is one Chromium tab with console and exception capture.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	name string // test name, for screenshot files

	mu       sync.Mutex
	problems []string
	expected []string // console problems a test provokes on purpose
}

// expectProblem tells the browser that console problems containing substr
// are caused by the test itself (e.g. a request it fails on purpose).
func (b *browser) expectProblem(substr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expected = append(b.expected, substr)
}

// newBrowser starts a headless Chromium with the flags the issue fixes and
// a laptop-sized window.
func newBrowser(t *testing.T, base string, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s not found: install Debian's chromium (make test does: apt-get install chromium)", chromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-features", "AutofillServerCommunication,OptimizationHints,MediaRouter"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 950),
	}
	opts = append(opts, extra...)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	tctx, cancelT := context.WithTimeout(ctx, 15*time.Minute)
	b := &browser{t: t, ctx: tctx, base: base, name: sanitize(t.Name())}
	// Subscribe before the first page loads so no message is missed.
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if p := problemOf(m); p != "" {
				b.problem(p)
			}
		}
	}()
	t.Cleanup(func() {
		cancelT()
		cancelC()
		cancelA()
		<-done
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, p := range b.problems {
			t.Errorf("browser: %s", p)
		}
	})
	// Start Chromium now, with its own budget: on a loaded 2-core machine a
	// second browser can take well over the 30 s a page step is allowed.
	sctx, cancelS := context.WithTimeout(tctx, 2*time.Minute)
	defer cancelS()
	if err := chromedp.Do(sctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if _, err := chromedp.Call(sctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: toastRecorder}); err != nil {
		t.Fatalf("record toasts: %v", err)
	}
	return b
}

// problemOf tells whether a console message must fail the test: any
// console.error, uncaught exception or unhandled rejection, and browser log
// errors such as CSP violations. A 4xx answer logged by the network layer
// is expected (a 401 before login, a validation error) and the UI shows it.
func problemOf(m chromedp.ConsoleMessage) string {
	switch {
	case m.IsException():
		return fmt.Sprintf("uncaught exception at %s:%d: %s", m.URL, m.Line+1, m.Text)
	case m.Type == "error" || m.Type == "assert":
		if m.Source == "network" && strings.Contains(m.Text, "status of 4") {
			return ""
		}
		// The machine's network changes whenever a test creates a Docker
		// network; Chromium then aborts requests in flight, and the UI
		// retries reads. Streams closed on navigation are aborted too.
		if m.Source == "network" && (strings.Contains(m.Text, "ERR_NETWORK_CHANGED") || strings.Contains(m.Text, "ERR_ABORTED")) {
			return ""
		}
		return fmt.Sprintf("console %s (%s) at %s:%d: %s", m.Type, m.Source, m.URL, m.Line+1, m.Text)
	}
	return ""
}

func (b *browser) problem(p string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.expected {
		if strings.Contains(p, e) {
			return
		}
	}
	b.problems = append(b.problems, p)
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, s)
}

// pageWait bounds each page step and wait: generous, because the suite
// runs on saturated machines (load far above the CPU count) where Chromium
// can need many seconds for what takes milliseconds on an idle one. A
// step that is really stuck still fails, only later.
const pageWait = 2 * time.Minute

// do runs chromedp actions and fails the test (with a screenshot of the
// moment) on error.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, pageWait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.shot("FAILED-" + sanitize(what))
		dctx, dcancel := context.WithTimeout(b.ctx, 5*time.Second)
		defer dcancel()
		diag, _ := chromedp.Run(dctx, chromedp.Evaluate[string](`location.href + "\n" + performance.getEntriesByType('resource').map((e) => e.name + ' ' + Math.round(e.startTime) + '+' + Math.round(e.duration)).join("\n")`))
		b.t.Fatalf("%s: %v\npage resources:\n%s", what, err, diag)
	}
}

// eval evaluates a JavaScript expression and decodes its value into T.
func eval[T any](b *browser, js string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.shot("FAILED-eval")
		b.t.Fatalf("evaluate %.80q: %v", js, err)
	}
	return v
}

// open navigates to a path of the app and waits for the page to render.
func (b *browser) open(path string) {
	b.t.Helper()
	b.do("open "+path, navigate(b.base+path), chromedp.WaitVisible(chromedp.CSS("#page-title")))
}

// shot saves a full-page PNG under test-artifacts/screenshots/<test>/.
func (b *browser) shot(name string) string {
	dir := filepath.Join(testutil.RepoRoot(b.t), "test-artifacts", "screenshots", b.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Logf("screenshot dir: %v", err)
		return ""
	}
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	_ = chromedp.Do(ctx, chromedp.Sleep(150*time.Millisecond))
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Logf("write screenshot: %v", err)
	}
	return p
}

// textOf returns the text content of the first element matching sel, or "".
func (b *browser) textOf(sel string) string {
	b.t.Helper()
	return eval[string](b, fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e ? e.textContent : ""; })()`, sel))
}

// toastRecorder runs in every page before the app: it keeps the text of
// every toast shown, so a test can find a confirmation that already faded
// (they fade after 5 s, which a saturated machine can take between two
// polls).
const toastRecorder = `(() => {
  const seen = window.__nullopsToasts = [];
  new MutationObserver((records) => {
    for (const r of records) for (const n of r.addedNodes) {
      if (n.nodeType === 1 && n.classList.contains('toast')) seen.push(n.textContent);
    }
  }).observe(document, { childList: true, subtree: true });
})()`

// waitToast waits until a toast containing want was shown (visible now or
// already faded) and consumes it, so a later wait for the same text needs
// a new toast.
func (b *browser) waitToast(want string) {
	b.t.Helper()
	js := fmt.Sprintf(`(() => { const seen = window.__nullopsToasts || []; const i = seen.findIndex((t) => t.includes(%q)); if (i < 0) return false; seen.splice(i, 1); return true; })()`, want)
	deadline := time.Now().Add(pageWait)
	for time.Now().Before(deadline) {
		if ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](js)); err == nil && ok {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.shot("FAILED-toast-" + sanitize(want))
	shown, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`JSON.stringify(window.__nullopsToasts || [])`))
	b.t.Fatalf("no toast saying %q; toasts shown on this page: %s%s", want, shown, b.visibleErrors())
}

// waitText waits until the element matching sel contains want. Toasts
// ("#toasts") are looked up among every toast shown, faded or not.
func (b *browser) waitText(sel, want string) {
	b.t.Helper()
	if sel == "#toasts" {
		b.waitToast(want)
		return
	}
	deadline := time.Now().Add(pageWait)
	var got string
	for time.Now().Before(deadline) {
		got = b.textOf(sel)
		if strings.Contains(got, want) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.shot("FAILED-wait-" + sanitize(want))
	b.t.Fatalf("waiting for %q in %s; it says %q%s", want, sel, tail(got, 600), b.visibleErrors())
}

// visibleErrors lists the error messages on screen, to explain a failure.
func (b *browser) visibleErrors() string {
	msgs, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('.form-error:not([hidden]), .field-error:not([hidden]), .error-box, .toast')].map((e) => e.textContent.trim()).filter(Boolean)`))
	if err != nil || len(msgs) == 0 {
		return ""
	}
	return "; errors on screen: " + strings.Join(msgs, " | ")
}

// waitFor polls a boolean JavaScript expression until it is true.
//
// d is what the wait takes on an idle machine; the wait gives up only
// after at least pageWait.
func (b *browser) waitFor(what, js string, d time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(max(d, pageWait))
	for time.Now().Before(deadline) {
		if ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](js)); err == nil && ok {
			return
		}
		time.Sleep(150 * time.Millisecond)
	}
	b.shot("FAILED-" + sanitize(what))
	b.t.Fatalf("timed out waiting for %s%s", what, b.visibleErrors())
}

// count returns how many elements match sel now.
func (b *browser) count(sel string) int {
	b.t.Helper()
	return eval[int](b, fmt.Sprintf(`document.querySelectorAll(%q).length`, sel))
}

// fill replaces the value of an input by typing into it.
func (b *browser) fill(sel, value string) {
	b.t.Helper()
	b.do("wait "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
	// Empty the field first (Clear does not empty number inputs), then type.
	eval[bool](b, fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.value = ''; e.dispatchEvent(new Event('input', {bubbles: true})); return true; })()`, sel))
	b.do("fill "+sel, chromedp.SendKeys(chromedp.CSS(sel), value))
}

// selectOption picks an option by the start of its visible label.
func (b *browser) selectOption(sel, label string) {
	b.t.Helper()
	b.do("wait "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
	js := fmt.Sprintf(`(() => {
		const s = document.querySelector(%q);
		const o = [...s.options].find((o) => o.textContent.trim().startsWith(%q));
		if (!o) return [...s.options].map((o) => o.textContent).join(" | ");
		s.value = o.value;
		s.dispatchEvent(new Event('input', {bubbles: true}));
		s.dispatchEvent(new Event('change', {bubbles: true}));
		return "";
	})()`, sel, label)
	if have := eval[string](b, js); have != "" {
		b.shot("FAILED-select")
		b.t.Fatalf("select %s: no option %q (have: %s)", sel, label, have)
	}
}

// selectWait waits until a <select> offers an option starting with label,
// then picks it (options may load asynchronously).
func (b *browser) selectWait(sel, label string) {
	b.t.Helper()
	b.waitFor(fmt.Sprintf("option %q in %s", label, sel), fmt.Sprintf(`(() => { const s = document.querySelector(%q); return !!s && [...s.options].some((o) => o.textContent.trim().startsWith(%q)); })()`, sel, label), 30*time.Second)
	b.selectOption(sel, label)
}

func (b *browser) click(sel string) {
	b.t.Helper()
	b.do("click "+sel, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel)))
}

// login signs in through the login form.
func (b *browser) login(user, password string) {
	b.t.Helper()
	b.do("open login", navigate(b.base+"/login"), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	b.fill(`#login-form input[name="username"]`, user)
	b.fill(`#login-form input[name="password"]`, password)
	b.do("submit login", chromedp.SendKeys(chromedp.CSS(`#login-form input[name="password"]`), kb.Enter))
	// The menu shows the display name, which may differ in case.
	b.waitFor("signed in as "+user, fmt.Sprintf(`(document.querySelector('#user-menu') || {textContent: ''}).textContent.toLowerCase().includes(%q)`, strings.ToLower(user)), 30*time.Second)
}

// center returns the viewport coordinates of the middle of an element,
// scrolled into view.
func (b *browser) center(sel string) (float64, float64) {
	b.t.Helper()
	b.do("wait "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
	pt := eval[[]float64](b, fmt.Sprintf(`(() => {
		const e = document.querySelector(%q);
		e.scrollIntoView({block: 'nearest', inline: 'nearest'});
		const r = e.getBoundingClientRect();
		return [r.left + r.width / 2, r.top + r.height / 2];
	})()`, sel))
	return pt[0], pt[1]
}

// drag presses the left mouse button at one point, moves in steps and
// releases at another: real mouse input, as a user's mouse produces it.
func (b *browser) drag(x1, y1, x2, y2 float64) {
	b.t.Helper()
	b.do("drag", chromedp.DragAndDropXY(x1, y1, x2, y2, 15))
}

// chromedpClick clicks at viewport coordinates (e.g. on an SVG path).
func chromedpClick(x, y float64) chromedp.Action[chromedp.Void] {
	return chromedp.MouseClickXY(x, y)
}

// keyPress sends one named key (kb constants) to the focused element.
func keyPress(key string) chromedp.Action[chromedp.Void] {
	switch key {
	case "Delete":
		return chromedp.KeyEvent(kb.Delete)
	case "Enter":
		return chromedp.KeyEvent(kb.Enter)
	case "Escape":
		return chromedp.KeyEvent(kb.Escape)
	}
	return chromedp.KeyEvent(key)
}

// navigate is chromedp.Navigate that loads again when Chrome aborts the
// load with ERR_NETWORK_CHANGED: Docker creates and removes bridges on the
// test machine all the time, and Chrome cancels a navigation in flight
// when an interface changes (a user would press reload).
func navigate(url string) chromedp.Action[chromedp.Void] {
	nav := chromedp.Navigate(url)
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		var v chromedp.Void
		var err error
		for range 3 {
			if v, err = nav(ctx, t); err == nil || !strings.Contains(err.Error(), "ERR_NETWORK_CHANGED") {
				return v, err
			}
		}
		return v, err
	}
}
