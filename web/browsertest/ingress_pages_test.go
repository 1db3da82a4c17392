package browsertest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/restapi"
)

// TestIngressPagesLeadBackToNullOps follows a QA engineer who opens a
// deployment's link too early: nullops-ingress shows "Still being
// deployed" with a link to the deployment in the UI, and the page turns
// into the service by itself once the deployment runs. After the
// deployment is deleted the same link says when and by whom (410), and
// leads to the deleted deployment's page; an unknown host links to the
// deployments list.
func TestIngressPagesLeadBackToNullOps(t *testing.T) {
	st := newDeploymentStack(t)
	// The service stays unhealthy (so the deployment stays deploying) until
	// the test says it is ready.
	st.Admin.call("PUT", fmt.Sprintf("/projects/%d/pipeline", st.ProjectID), map[string]any{
		"nodes": []map[string]any{{"id": "web", "kind": "service", "service": "web", "port": 8080, "ingress": true,
			"env":      map[string]string{"SERVICE_NAME": "web", "HEALTHY_AFTER_READY": "1"},
			"health":   map[string]any{"http": "/healthz", "timeout": "240s", "interval": "300ms"},
			"position": map[string]int{"x": 40, "y": 40}}},
		"edges": [][2]string{},
	}, 201, nil)
	dev := apiLogin(t, st.URL, "dev", stackUserPass)
	var dep restapi.Deployment
	dev.call("POST", "/deployments", map[string]any{"project_id": st.ProjectID, "environment_id": st.EnvID,
		"name": "pr-7", "tags": map[string]string{"web": "v1.0.0"}}, 202, &dep)
	depURL := fmt.Sprintf("%s/deployments/%d", st.URL, dep.ID)
	const host = "http://web.pr-7.qa.ui.test/"

	b := newBrowser(t, st.URL, chromedp.ProxyServer("http://"+st.Proxy))
	b.expectProblem("status of 503") // the deploying page and its favicon
	b.login("dev", stackUserPass)

	// Too early: the deploying page, linking back, reloading itself.
	b.do("open the service too early", navigate(host))
	waitPage(t, b, "deploying page", `document.body.innerText.includes('Still being deployed')`, 60*time.Second)
	if href := eval[string](b, `document.querySelector('#nullops-link').href`); href != depURL {
		t.Errorf("deploying page links to %q, want %q", href, depURL)
	}
	b.shot("01-deploying-page")

	// The service becomes healthy: the same tab shows it, without anyone
	// reloading.
	markReady(t, st.NodeName, dep.ID)
	waitPage(t, b, "the service in place of the deploying page", `document.body.innerText.includes('hello from web')`, 120*time.Second)
	if u := eval[string](b, `location.href`); u != host {
		t.Errorf("the page moved to %s, want to stay on %s", u, host)
	}

	// Delete it; the link now says so, with who and when, and leads to
	// the deployment in NullOps.
	dev.call("DELETE", fmt.Sprintf("/deployments/%d", dep.ID), nil, 202, nil)
	deadline := time.Now().Add(pageWait)
	for {
		b.do("reload the service link", navigate(host))
		if eval[bool](b, `document.body.innerText.includes('Deployment deleted')`) {
			break
		}
		if time.Now().After(deadline) {
			b.shot("FAILED-deleted-page")
			t.Fatalf("the host of the deleted deployment says %q", eval[string](b, `document.body.innerText`))
		}
		time.Sleep(300 * time.Millisecond)
	}
	text := eval[string](b, `document.body.innerText`)
	if !strings.Contains(text, "pr-7") || !strings.Contains(text, "by dev") || !strings.Contains(text, "was deleted at") {
		t.Errorf("deleted page does not say what, by whom and when: %q", text)
	}
	if eval[bool](b, `!!document.querySelector('meta[http-equiv="refresh"]')`) {
		t.Errorf("the deleted page reloads itself")
	}
	b.shot("02-deleted-page")
	b.click("#nullops-link")
	waitPage(t, b, "the deleted deployment in NullOps", `location.href === '`+depURL+`' && !!document.querySelector('#dep-status') && document.querySelector('#page-title').textContent.includes('pr-7')`, 30*time.Second)

	// A host nobody ever deployed: 404, linking to the deployments list.
	b.do("open an unknown host", navigate("http://web.nothing.qa.ui.test/"))
	waitPage(t, b, "unknown host page", `document.body.innerText.includes('No deployment here')`, 30*time.Second)
	if href := eval[string](b, `document.querySelector('#nullops-link').href`); href != st.URL+"/deployments" {
		t.Errorf("unknown-host page links to %q, want the deployments list", href)
	}
	b.shot("03-unknown-host")
}

// waitPage polls a JavaScript condition while the page may be reloading
// (evaluation errors during a navigation count as "not yet").
func waitPage(t *testing.T, b *browser, what, js string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(max(d, pageWait))
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		cancel()
		if err == nil && ok {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.shot("FAILED-" + sanitize(what))
	t.Fatalf("waiting for %s (%s); page: %.600s", what, js, eval[string](b, `location.href + "\n" + document.body.innerText`))
}

// markReady finds the container of the deployment's web service and POSTs
// its /ready through the published port (demo-web's HEALTHY_AFTER_READY).
func markReady(t *testing.T, node string, deploymentID int64) {
	t.Helper()
	ctx := testutil.Context(t, 90*time.Second)
	var addr string
	testutil.WaitFor(t, ctx, 200*time.Millisecond, "the web container's published port", func() bool {
		id, _ := testutil.DockerErr("ps", "-q", "--filter", fmt.Sprintf("label=nullops.deployment=%d", deploymentID),
			"--filter", "label=nullops.service=web", "--filter", "label=nullops.node="+node)
		if id = strings.TrimSpace(id); id == "" || strings.Contains(id, "\n") {
			return false
		}
		out, err := testutil.DockerErr("port", id, "8080/tcp")
		if err != nil || strings.TrimSpace(out) == "" {
			return false
		}
		line := strings.Fields(out)[0]
		port := line[strings.LastIndexByte(line, ':')+1:]
		addr = "127.0.0.1:" + port
		return true
	})
	res, err := http.Post("http://"+addr+"/ready", "text/plain", nil)
	if err != nil {
		t.Fatalf("POST /ready: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("POST /ready: %s", res.Status)
	}
}
