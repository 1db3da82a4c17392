package browsertest

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// failScript makes the browser fail the download of the module named
// module (e.g. "dom" for js/dom.<hash>.js; a connection reset, as when the
// client's network changes mid-load) the first `times` times it is
// requested, and counts the failures.
func failScript(t *testing.T, b *browser, module string, times int32) *atomic.Int32 {
	t.Helper()
	b.expectProblem("ERR_CONNECTION_RESET")
	var failed atomic.Int32
	paused := chromedp.Events(b.ctx, fetch.RequestPaused)
	go func() {
		for ev, err := range paused {
			if err != nil {
				return
			}
			if strings.Contains(ev.Request.URL, "/"+module+".") && failed.Load() < times {
				failed.Add(1)
				_, _ = chromedp.Call(b.ctx, fetch.FailRequest, fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: network.ErrorReasonConnectionReset})
				continue
			}
			_, _ = chromedp.Call(b.ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
		}
	}()
	if _, err := chromedp.Call(b.ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: "*/assets/js/*"}}}); err != nil {
		t.Fatalf("enable request interception: %v", err)
	}
	return &failed
}

// TestPageRecoversFromAFailedScriptDownload: one module of the app failing
// to download fails the whole module graph; the page reloads by itself
// instead of staying at "Loading…".
func TestPageRecoversFromAFailedScriptDownload(t *testing.T) {
	env := startServer(t)
	b := newBrowser(t, env.URL)
	failed := failScript(t, b, "dom", 2)
	b.do("open login after two failed downloads", navigate(env.URL+"/login"), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	if n := failed.Load(); n != 2 {
		t.Fatalf("the test failed %d downloads, want 2", n)
	}
}

// TestPageExplainsScriptsThatNeverLoad: after three reloads the page stops
// and says what is wrong.
func TestPageExplainsScriptsThatNeverLoad(t *testing.T) {
	env := startServer(t)
	b := newBrowser(t, env.URL)
	failScript(t, b, "dom", 1000)
	b.do("open", navigate(env.URL+"/login"))
	b.waitFor("error message", `(document.querySelector('#main .error-box[role=alert]') || {}).textContent?.includes('could not load its scripts') || false`, 20*time.Second)
}

// TestPageWhoseScriptCannotLoadSaysSo: pages load their module when first
// opened; when that download fails the page says so instead of leaving the
// previous page on screen.
func TestPageWhoseScriptCannotLoadSaysSo(t *testing.T) {
	env := startServer(t)
	env.UserWithPassword("boss", devPassword, true)
	b := newBrowser(t, env.URL)
	b.login("boss", devPassword)
	failScript(t, b, "audit", 1000)
	b.open("/admin/audit")
	b.waitText("#main", "Could not load this page")
}
