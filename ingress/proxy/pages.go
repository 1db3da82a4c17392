package proxy

import (
	"html"
	"net/http"
	"strconv"
	"time"

	"github.com/nullops/nullops/ingress/dynconfig"
)

// Refresh intervals of the pages that turn into the service by themselves:
// the browser reloads the same URL, which is proxied once the deployment
// is running again.
const (
	refreshDeploying = 5
	refreshOffline   = 15
)

// pageInfo is what one page says.
type pageInfo struct {
	status  int
	host    string
	title   string
	text    string
	refresh int    // seconds; 0 = no automatic reload
	link    string // URL of the page in the NullOps UI; "" = none
	label   string // text of the link
}

// page writes a short HTML page explaining why the request was not proxied.
func page(w http.ResponseWriter, p pageInfo) {
	var head, link string
	if p.refresh > 0 {
		head = `<meta http-equiv="refresh" content="` + strconv.Itoa(p.refresh) + `">` + "\n"
	}
	if p.link != "" {
		link = `<p><a id="nullops-link" href="` + html.EscapeString(p.link) + `">` + html.EscapeString(p.label) + `</a></p>` + "\n"
	}
	refreshNote := ""
	if p.refresh > 0 {
		refreshNote = `<p id="nullops-refresh"><small>This page reloads every ` + strconv.Itoa(p.refresh) + ` seconds and shows the service as soon as it answers.</small></p>` + "\n"
	}
	body := `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
` + head + `<title>` + strconv.Itoa(p.status) + ` ` + html.EscapeString(p.title) + `</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}code{background:#eee;padding:.1rem .3rem}a{color:#0b57d0}</style>
</head><body>
<h1>` + html.EscapeString(p.title) + `</h1>
<p><code>` + html.EscapeString(p.host) + `</code></p>
<p id="nullops-reason">` + html.EscapeString(p.text) + `</p>
` + link + refreshNote + `<p><small>NullOps ingress · ` + strconv.Itoa(p.status) + ` ` + http.StatusText(p.status) + `</small></p>
</body></html>
`
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	if p.status == http.StatusServiceUnavailable {
		hd.Set("Retry-After", "10")
	}
	w.WriteHeader(p.status)
	_, _ = w.Write([]byte(body))
}

// links builds URLs into the NullOps UI ("" when no UI URL is configured).
type links string

func (l links) deployment(id int64) string {
	if l == "" || id <= 0 {
		return l.deployments()
	}
	return string(l) + "/deployments/" + strconv.FormatInt(id, 10)
}

func (l links) deployments() string {
	if l == "" {
		return ""
	}
	return string(l) + "/deployments"
}

func (p *Proxy) pageNotFound(w http.ResponseWriter, host string) {
	page(w, pageInfo{status: http.StatusNotFound, host: host, title: "No deployment here",
		text: "NullOps has no deployment serving " + host + ". Check the address; the deployment may never have existed, or may have been removed long ago.",
		link: p.ui.deployments(), label: "See the deployments in NullOps"})
}

// pageGone answers a host of a deployment that was deleted, cancelled or
// expired recently (410 Gone: the address existed and will not come back).
func (p *Proxy) pageGone(w http.ResponseWriter, host string, g *dynconfig.GoneHost) {
	when := g.At.UTC().Format(time.RFC1123)
	var title, text string
	switch g.Reason {
	case "expired":
		title = "Deployment expired"
		text = "Deployment " + g.Deployment + " (environment " + g.Environment + ") expired and was deleted at " + when + " by the automatic cleanup (its time to live ran out)."
	case "cancelled":
		title = "Deployment cancelled"
		text = "Deployment " + g.Deployment + " (environment " + g.Environment + ") was cancelled at " + when + " by " + who(g.By) + "."
	default:
		title = "Deployment deleted"
		text = "Deployment " + g.Deployment + " (environment " + g.Environment + ") was deleted at " + when + " by " + who(g.By) + "."
	}
	page(w, pageInfo{status: http.StatusGone, host: host, title: title, text: text + " Create it again in NullOps to get this address back.",
		link: p.ui.deployment(g.DeploymentID), label: "Open deployment " + g.Deployment + " in NullOps"})
}

func who(name string) string {
	if name == "" {
		return "a user who no longer exists"
	}
	return name
}

func (p *Proxy) pageOffline(w http.ResponseWriter, host string, deploymentID int64) {
	page(w, pageInfo{status: http.StatusServiceUnavailable, host: host, title: "Deployment offline",
		text:    "The node running the deployment behind " + host + " is offline. The deployment is routed again as soon as its node reconnects.",
		refresh: refreshOffline, link: p.ui.deployment(deploymentID), label: "Open the deployment in NullOps"})
}

func (p *Proxy) pageDeploying(w http.ResponseWriter, host string, deploymentID int64) {
	page(w, pageInfo{status: http.StatusServiceUnavailable, host: host, title: "Still being deployed",
		text:    "The deployment behind " + host + " is still being deployed. This page turns into the service once it is running.",
		refresh: refreshDeploying, link: p.ui.deployment(deploymentID), label: "Follow the deployment in NullOps"})
}

func (p *Proxy) pageNoServer(w http.ResponseWriter, host string, deploymentID int64) {
	page(w, pageInfo{status: http.StatusServiceUnavailable, host: host, title: "No server available",
		text: "The route for " + host + " has no server to send the request to.",
		link: p.ui.deployment(deploymentID), label: "Open the deployment in NullOps"})
}

func (p *Proxy) pageBadGateway(w http.ResponseWriter, host string, deploymentID int64) {
	page(w, pageInfo{status: http.StatusBadGateway, host: host, title: "Service not answering",
		text: "The service behind " + host + " did not answer. It may be starting, restarting or failing; see the deployment's logs.",
		link: p.ui.deployment(deploymentID), label: "See the deployment's logs in NullOps"})
}
