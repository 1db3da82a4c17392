package proxy

import (
	"html"
	"net/http"
	"strconv"
)

// page writes a short HTML page explaining why the request was not proxied.
func page(w http.ResponseWriter, status int, host, title, text string) {
	h := html.EscapeString(host)
	body := `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>` + strconv.Itoa(status) + ` ` + html.EscapeString(title) + `</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}code{background:#eee;padding:.1rem .3rem}</style>
</head><body>
<h1>` + html.EscapeString(title) + `</h1>
<p><code>` + h + `</code></p>
<p>` + html.EscapeString(text) + `</p>
<p><small>NullOps ingress · ` + strconv.Itoa(status) + ` ` + http.StatusText(status) + `</small></p>
</body></html>
`
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	if status == http.StatusServiceUnavailable {
		hd.Set("Retry-After", "10")
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func pageNotFound(w http.ResponseWriter, host string) {
	page(w, http.StatusNotFound, host, "No deployment here",
		"NullOps has no deployment serving "+host+". Check the address; the deployment may have been deleted or may have expired.")
}

func pageOffline(w http.ResponseWriter, host string) {
	page(w, http.StatusServiceUnavailable, host, "Deployment offline",
		"The node running the deployment behind "+host+" is offline. The deployment is routed again as soon as its node reconnects.")
}

func pageDeploying(w http.ResponseWriter, host string) {
	page(w, http.StatusServiceUnavailable, host, "Still being deployed",
		"The deployment behind "+host+" is still being deployed. This page will work once it is running; try again in a moment.")
}

func pageNoServer(w http.ResponseWriter, host string) {
	page(w, http.StatusServiceUnavailable, host, "No server available",
		"The route for "+host+" has no server to send the request to.")
}

func pageBadGateway(w http.ResponseWriter, host string) {
	page(w, http.StatusBadGateway, host, "Service not answering",
		"The service behind "+host+" did not answer. It may be starting, restarting or failing; see the deployment's logs.")
}
