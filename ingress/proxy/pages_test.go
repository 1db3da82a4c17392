package proxy_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/ingress/dynconfig"
	"github.com/nullops/nullops/ingress/proxy"
)

// TestPagesLinkBackAndExplain checks every page of the ingress itself: the
// deploying and offline pages reload themselves and link to their
// deployment in the UI, a host of a removed deployment answers 410 with
// when, by whom and why, an unknown host links to the deployments list,
// and a removed host that a route serves again is proxied.
func TestPagesLinkBackAndExplain(t *testing.T) {
	web := backend(t, "web")
	p := proxy.New(proxy.Options{Log: zerolog.Nop(), UIURL: "https://ui.example.test/"})
	front := httptest.NewServer(p)
	defer front.Close()
	if _, err := p.Apply(doc(t,
		routeSpec{name: dynconfig.RouterName(2, "web"), host: "web.pr-2.qa.example.test", sentinel: dynconfig.ServiceOffline},
		routeSpec{name: dynconfig.RouterName(3, "web"), host: "web.pr-3.qa.example.test", sentinel: dynconfig.ServiceDeploying},
		routeSpec{name: dynconfig.RouterName(7, "web"), host: "web.pr-7.qa.example.test", url: web.URL},
	), `"v1"`); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	p.SetGone(&dynconfig.GoneDocument{Hosts: []dynconfig.GoneHost{
		{Host: "web.pr-5.qa.example.test", DeploymentID: 5, Deployment: "pr-5", Environment: "qa", Service: "web", Reason: "deleted", By: "alice<b>", At: at},
		{Host: "web.pr-6.qa.example.test", DeploymentID: 6, Deployment: "pr-6", Environment: "qa", Service: "web", Reason: "expired", By: "system", At: at},
		{Host: "web.pr-7.qa.example.test", DeploymentID: 4, Deployment: "pr-7", Environment: "qa", Service: "web", Reason: "deleted", By: "bob", At: at},
	}})
	c := front.Client()
	for _, tc := range []struct {
		host   string
		status int
		want   []string
	}{
		{"web.pr-3.qa.example.test", 503, []string{"still being deployed", `<meta http-equiv="refresh" content="5">`, `href="https://ui.example.test/deployments/3"`}},
		{"web.pr-2.qa.example.test", 503, []string{"is offline", `<meta http-equiv="refresh" content="15">`, `href="https://ui.example.test/deployments/2"`}},
		{"web.pr-5.qa.example.test", 410, []string{"Deployment deleted", "was deleted at Mon, 30 Nov 2026 10:00:00 UTC by alice&lt;b&gt;", `href="https://ui.example.test/deployments/5"`}},
		{"web.pr-6.qa.example.test", 410, []string{"Deployment expired", "automatic cleanup", `href="https://ui.example.test/deployments/6"`}},
		{"nothing.qa.example.test", 404, []string{"No deployment here", `href="https://ui.example.test/deployments"`}},
		{"web.pr-7.qa.example.test", 200, []string{`"backend":"web"`}},
	} {
		code, body, _ := get(t, c, front.URL, tc.host, "/")
		if code != tc.status {
			t.Errorf("%s: %d, want %d: %s", tc.host, code, tc.status, body)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: page lacks %s:\n%s", tc.host, w, body)
			}
		}
		if tc.status == 410 || tc.status == 404 {
			if strings.Contains(body, "refresh") {
				t.Errorf("%s: a %d page must not reload itself", tc.host, tc.status)
			}
		}
	}

	// Without a UI URL the pages carry no link.
	bare, bareFront := newProxy(t, nil)
	if _, err := bare.Apply(doc(t, routeSpec{name: dynconfig.RouterName(3, "web"), host: "web.pr-3.qa.example.test", sentinel: dynconfig.ServiceDeploying}), `"v1"`); err != nil {
		t.Fatal(err)
	}
	if _, body, _ := get(t, bareFront.Client(), bareFront.URL, "web.pr-3.qa.example.test", "/"); strings.Contains(body, "<a ") {
		t.Errorf("page links somewhere without ui.url:\n%s", body)
	}
}
