package dynconfig

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
)

// MaxDocumentBytes bounds a configuration document (10,000 routes take
// about 3 MB).
const MaxDocumentBytes = 64 << 20

// Decode parses a JSON dynamic configuration strictly: unknown fields and
// duplicate names are errors, so a document using Traefik features
// nullops-ingress does not implement (middlewares such as basic auth, for
// instance) is refused rather than served without them. It uses the
// single-pass decoder of github.com/go-json-experiment/json (encoding/json
// v2), about twice as fast as encoding/json on a 10,000-route table.
func Decode(data []byte) (*Configuration, error) {
	if len(data) > MaxDocumentBytes {
		return nil, fmt.Errorf("configuration is %d bytes; the limit is %d", len(data), MaxDocumentBytes)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("configuration is empty")
	}
	var cfg Configuration
	if err := jsonv2.Unmarshal(data, &cfg, jsonv2.RejectUnknownMembers(true)); err != nil {
		return nil, fmt.Errorf("decode configuration: %w", err)
	}
	return &cfg, nil
}

// Kind says how a route answers.
type Kind int

// Route kinds.
const (
	// KindBackend proxies to the route's servers.
	KindBackend Kind = iota
	// KindOffline answers 503: the deployment's node is offline.
	KindOffline
	// KindDeploying answers 503: the deployment is still being deployed.
	KindDeploying
	// KindNoServer answers 503: the service has no servers.
	KindNoServer
)

func (k Kind) String() string {
	switch k {
	case KindBackend:
		return "backend"
	case KindOffline:
		return "offline"
	case KindDeploying:
		return "deploying"
	case KindNoServer:
		return "no-server"
	}
	return "unknown"
}

// Route is one router compiled for serving.
type Route struct {
	Router       string
	Hosts        []string
	Kind         Kind
	DeploymentID int64 // 0 when the router name carries none
	Servers      []*url.URL
	PassHost     bool
	// FlushInterval is the responseForwarding.flushInterval (0 = default).
	FlushInterval time.Duration
}

// Problem is a router that cannot be served; the others still are.
type Problem struct {
	Router string
	Err    error
}

func (p Problem) Error() string { return fmt.Sprintf("router %q: %v", p.Router, p.Err) }

// Compile checks every router and returns the routes to serve, sorted by
// router name, plus one Problem per router that cannot be served (missing or
// unsupported rule, unknown service, bad server URL, host already routed by
// an earlier router). One broken router never stops the others.
func Compile(cfg *Configuration) ([]Route, []Problem) {
	routes, problems, _ := compileAll(cfg)
	return routes, problems
}

// compileAll is Compile, also counting the host conflicts among the
// problems.
func compileAll(cfg *Configuration) ([]Route, []Problem, int) {
	if cfg == nil || cfg.HTTP == nil {
		return nil, nil, 0
	}
	type named struct {
		name string
		r    *Router
	}
	list := make([]named, 0, len(cfg.HTTP.Routers))
	for n, r := range cfg.HTTP.Routers {
		list = append(list, named{n, r})
	}
	slices.SortFunc(list, func(a, b named) int { return strings.Compare(a.name, b.name) })
	routes := make([]Route, 0, len(list))
	var problems []Problem
	conflicts := 0
	owner := make(map[string]string, len(list))
	for _, it := range list {
		name := it.name
		r, err := compileRouter(cfg.HTTP, name, it.r)
		if err != nil {
			problems = append(problems, Problem{Router: name, Err: err})
			continue
		}
		hosts := r.Hosts[:0:0]
		for _, h := range r.Hosts {
			if prev, taken := owner[h]; taken {
				problems = append(problems, Problem{Router: name, Err: fmt.Errorf("host %s is already routed by router %q", h, prev)})
				conflicts++
				continue
			}
			owner[h] = name
			hosts = append(hosts, h)
		}
		if len(hosts) == 0 {
			continue
		}
		r.Hosts = hosts
		routes = append(routes, r)
	}
	return routes, problems, conflicts
}

func compileRouter(h *HTTPConfiguration, name string, r *Router) (Route, error) {
	if r == nil {
		return Route{}, errors.New("is empty")
	}
	if len(r.Middlewares) > 0 {
		return Route{}, fmt.Errorf("uses middlewares %s, which nullops-ingress does not implement", strings.Join(r.Middlewares, ", "))
	}
	if r.Rule == "" {
		return Route{}, errors.New("has no rule")
	}
	hosts, err := ParseHostRule(r.Rule)
	if err != nil {
		return Route{}, err
	}
	route := Route{Router: name, Hosts: hosts, PassHost: true}
	route.DeploymentID, _ = ParseRouterName(name)
	switch r.Service {
	case "":
		return Route{}, errors.New("has no service")
	case ServiceOffline:
		route.Kind = KindOffline
		return route, nil
	case ServiceDeploying:
		route.Kind = KindDeploying
		return route, nil
	}
	svc := h.Services[r.Service]
	if svc == nil {
		return Route{}, fmt.Errorf("service %q does not exist", r.Service)
	}
	lb := svc.LoadBalancer
	if lb == nil {
		return Route{}, fmt.Errorf("service %q has no loadBalancer", r.Service)
	}
	if lb.PassHostHeader != nil {
		route.PassHost = *lb.PassHostHeader
	}
	if lb.ResponseForwarding != nil && lb.ResponseForwarding.FlushInterval != "" {
		d, err := time.ParseDuration(lb.ResponseForwarding.FlushInterval)
		if err != nil {
			return Route{}, fmt.Errorf("service %q: responseForwarding.flushInterval: %v", r.Service, err)
		}
		route.FlushInterval = d
	}
	if len(lb.Servers) == 0 {
		route.Kind = KindNoServer
		return route, nil
	}
	for i, s := range lb.Servers {
		u, err := ParseServerURL(s.URL)
		if err != nil {
			return Route{}, fmt.Errorf("service %q: servers[%d]: %v", r.Service, i, err)
		}
		route.Servers = append(route.Servers, u)
	}
	return route, nil
}

// ParseServerURL checks a backend URL: http or https, a host, no user
// information, query or fragment.
func ParseServerURL(raw string) (*url.URL, error) {
	if u, ok := parseSimpleURL(raw); ok {
		return u, nil
	}
	if raw == "" {
		return nil, errors.New("url is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("url %s: %v", quoteShort(raw), err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("url %s: scheme must be http or https", quoteShort(raw))
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("url %s: has no host", quoteShort(raw))
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return nil, fmt.Errorf("url %s: must be scheme://host:port[/path] only", quoteShort(raw))
	}
	return u, nil
}

// parseSimpleURL is the fast path for what NullOps publishes,
// http://<host or IPv4>:<port>, without the generality of url.Parse (it runs
// once per route on every table swap). Anything else goes to url.Parse.
func parseSimpleURL(raw string) (*url.URL, bool) {
	rest, ok := strings.CutPrefix(raw, "http://")
	if !ok || rest == "" {
		return nil, false
	}
	colon := strings.LastIndexByte(rest, ':')
	if colon <= 0 || colon == len(rest)-1 || len(rest)-colon-1 > 5 {
		return nil, false
	}
	for i := 0; i < colon; i++ {
		c := rest[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return nil, false
		}
	}
	port := 0
	for i := colon + 1; i < len(rest); i++ {
		c := rest[i]
		if c < '0' || c > '9' {
			return nil, false
		}
		port = port*10 + int(c-'0')
	}
	if port == 0 || port > 65535 {
		return nil, false
	}
	return &url.URL{Scheme: "http", Host: rest}, true
}
