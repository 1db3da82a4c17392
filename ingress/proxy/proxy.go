// Package proxy is the request path of nullops-ingress: it routes by Host
// header to the backends of a routing table that is swapped atomically
// (atomic.Pointer) while the listener stays open. A request loads the table
// once, so in-flight requests and open WebSockets finish on the table they
// started with.
package proxy

import (
	"context"
	"errors"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/ingress/activity"
	"github.com/nullops/nullops/ingress/dynconfig"
)

// Options configure a Proxy.
type Options struct {
	Log zerolog.Logger
	// AccessLog receives one line per request; nil disables the access log.
	AccessLog *zerolog.Logger
	// Activity records the last request time per deployment; nil disables it.
	Activity *activity.Tracker
	// Transport overrides the tuned default (tests). Setting it also turns
	// the direct path off, so every request goes through it.
	Transport http.RoundTripper
	// Incremental keeps the configuration in use and its compiled routes so
	// that ApplyDelta can update the table in O(change).
	Incremental bool
	// UIURL is the public URL of the NullOps web UI; the ingress's own
	// pages (deploying, offline, deleted, unknown host) link back to it.
	// Empty: no links.
	UIURL string
}

// Proxy is an http.Handler routing by host.
type Proxy struct {
	table     atomic.Pointer[Table]
	swapMu    sync.Mutex
	transport http.RoundTripper
	direct    bool // plain HTTP/1.1 requests bypass the transport (direct.go)
	bufPool   *bufferPool
	log       zerolog.Logger
	access    *zerolog.Logger
	activity  *activity.Tracker
	errLog    *log.Logger

	// Guarded by swapMu: what ApplyDelta needs (nil unless
	// Options.Incremental) and reference counts of the current table's
	// backends (by backendKey) and deployments (routes per id).
	incremental bool
	compiled    *dynconfig.Compiled
	backendRefs map[string]int
	deployments map[int64]int

	ui   links                                          // the web UI, for the pages' links
	gone atomic.Pointer[map[string]*dynconfig.GoneHost] // hosts of removed deployments (SetGone)
}

// Table is one immutable routing table.
type Table struct {
	Version  string // ETag of the configuration it was built from
	hosts    map[string]*route
	backends map[string]*backend // by backendKey, reused by the next table
	counts   [4]int              // by dynconfig.Kind
}

// Hosts returns how many hosts the table routes.
func (t *Table) Hosts() int { return len(t.hosts) }

// Count returns how many hosts have the given kind.
func (t *Table) Count(k dynconfig.Kind) int { return t.counts[k] }

type route struct {
	kind         dynconfig.Kind
	router       string
	deploymentID int64
	backend      *backend
	activity     *activity.Cell
}

// backend proxies to one service's servers, round-robin when several.
type backend struct {
	servers []http.Handler
	pools   []*connPool // of the direct paths, closed when the backend leaves the table
	next    atomic.Uint32
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if len(b.servers) == 1 {
		b.servers[0].ServeHTTP(w, r)
		return
	}
	i := b.next.Add(1)
	b.servers[int(i)%len(b.servers)].ServeHTTP(w, r)
}

// close closes the idle backend connections; in-flight requests finish and
// their connections are not kept.
func (b *backend) close() {
	for _, p := range b.pools {
		p.close()
	}
}

// NewTransport returns the transport to backends: keep-alive with a large
// idle pool per host (one host per node), no transparent compression (bodies
// pass through untouched), HTTP/1.1 (WebSocket upgrades need it).
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          0, // no global limit
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
		WriteBufferSize:       16 << 10,
		ReadBufferSize:        16 << 10,
	}
}

// New returns a proxy with an empty table (every host is unknown).
func New(opts Options) *Proxy {
	p := &Proxy{
		transport: opts.Transport,
		bufPool:   newBufferPool(),
		log:       opts.Log.With().Str("part", "proxy").Logger(),
		access:    opts.AccessLog,
		activity:  opts.Activity,

		incremental: opts.Incremental,
		ui:          links(strings.TrimSuffix(opts.UIURL, "/")),
	}
	if p.transport == nil {
		p.transport = NewTransport()
		p.direct = true
	}
	p.errLog = log.New(zerologWriter{p.log}, "", 0)
	p.table.Store(&Table{hosts: map[string]*route{}, backends: map[string]*backend{}})
	return p
}

// Current returns the table in use.
func (p *Proxy) Current() *Table { return p.table.Load() }

// Apply decodes a configuration document, builds a table from it and swaps
// it in. A document that does not decode is refused (the current table
// stays); routers that cannot be served are returned as problems while the
// others are served.
func (p *Proxy) Apply(body []byte, version string) ([]dynconfig.Problem, error) {
	cfg, err := dynconfig.Decode(body)
	if err != nil {
		return nil, err
	}
	return p.ApplyConfig(cfg, version), nil
}

// ApplyConfig builds a table from cfg (owned by the proxy afterwards) and
// swaps it in. With Options.Incremental it also keeps the configuration and
// its compiled routes for ApplyDelta.
func (p *Proxy) ApplyConfig(cfg *dynconfig.Configuration, version string) []dynconfig.Problem {
	var routes []dynconfig.Route
	var problems []dynconfig.Problem
	var compiled *dynconfig.Compiled
	if p.incremental {
		compiled, problems = dynconfig.NewCompiled(dynconfig.NewState(cfg))
		routes = compiled.Routes()
	} else {
		routes, problems = dynconfig.Compile(cfg)
	}
	p.swapMu.Lock()
	defer p.swapMu.Unlock()
	t := p.build(routes, version, p.table.Load())
	p.compiled = compiled
	p.swap(t)
	if p.activity != nil {
		keep := make(map[int64]bool, len(p.deployments))
		for id := range p.deployments {
			keep[id] = true
		}
		p.activity.Retain(keep)
	}
	return problems
}

// ErrNoBase is returned by ApplyDelta when no table to apply it to is kept
// (no document applied yet, or Options.Incremental off).
var ErrNoBase = errors.New("no table to apply a delta to: fetch the whole document")

// ApplyDelta applies an incremental update to the table in use: the delta
// must start at the table's content (dynconfig.State.Apply checks it and
// the result), otherwise it is refused and nothing changes. Only the
// routers it touches are recompiled; the new table shares every other
// route and backend with the current one.
func (p *Proxy) ApplyDelta(d *dynconfig.Delta) ([]dynconfig.Problem, error) {
	p.swapMu.Lock()
	defer p.swapMu.Unlock()
	if p.compiled == nil {
		return nil, ErrNoBase
	}
	u, err := p.compiled.Apply(d)
	if err != nil {
		return nil, err
	}
	prev := p.table.Load()
	var t *Table
	if u.Full {
		t = p.build(p.compiled.Routes(), d.To, prev)
	} else {
		t = p.patch(prev, u, d.To)
	}
	p.swap(t)
	return u.Problems, nil
}

// ETag names the content of the table in use when it can take deltas ("" when
// it cannot).
func (p *Proxy) ETag() string {
	p.swapMu.Lock()
	defer p.swapMu.Unlock()
	if p.compiled == nil {
		return ""
	}
	return p.compiled.State().ETag()
}

// Document returns the configuration the table was built from, safe to
// encode while the proxy keeps applying deltas, with its ETag; nil when not
// kept (Options.Incremental off).
func (p *Proxy) Document() (*dynconfig.Configuration, string) {
	p.swapMu.Lock()
	defer p.swapMu.Unlock()
	if p.compiled == nil {
		return nil, ""
	}
	return p.compiled.State().Snapshot(), p.compiled.State().ETag()
}

// swap installs t; the caller holds swapMu.
func (p *Proxy) swap(t *Table) {
	p.table.Store(t)
	metricSwaps.Inc()
	metricHosts.WithLabelValues("backend").Set(float64(t.counts[dynconfig.KindBackend]))
	metricHosts.WithLabelValues("offline").Set(float64(t.counts[dynconfig.KindOffline]))
	metricHosts.WithLabelValues("deploying").Set(float64(t.counts[dynconfig.KindDeploying]))
	metricHosts.WithLabelValues("no-server").Set(float64(t.counts[dynconfig.KindNoServer]))
}

// build makes a table, reusing the backends of prev whose servers and
// settings did not change (their idle connections stay warm). The caller
// holds swapMu.
func (p *Proxy) build(routes []dynconfig.Route, version string, prev *Table) *Table {
	t := &Table{
		Version:  version,
		hosts:    make(map[string]*route, len(routes)),
		backends: make(map[string]*backend, len(routes)),
	}
	p.backendRefs = make(map[string]int, len(routes))
	p.deployments = make(map[int64]int, len(routes))
	for _, rt := range routes {
		p.add(t, prev, rt)
	}
	for key, b := range prev.backends {
		if t.backends[key] != b {
			b.close()
		}
	}
	return t
}

// patch makes a table from prev and an incremental update: a copy of its
// maps with the update's routes removed and added. The caller holds swapMu.
func (p *Proxy) patch(prev *Table, u dynconfig.Update, version string) *Table {
	t := &Table{
		Version:  version,
		hosts:    maps.Clone(prev.hosts),
		backends: maps.Clone(prev.backends),
		counts:   prev.counts,
	}
	var gone []int64
	var dropped []string // backend keys without routes, unless u.Set brings them back
	for _, rt := range u.Removed {
		for _, h := range rt.Hosts {
			if r := t.hosts[h]; r != nil && r.router == rt.Router {
				t.counts[r.kind]--
				delete(t.hosts, h)
			}
		}
		if rt.Kind == dynconfig.KindBackend {
			key := backendKey(rt)
			if p.backendRefs[key]--; p.backendRefs[key] <= 0 {
				delete(p.backendRefs, key)
				delete(t.backends, key)
				dropped = append(dropped, key)
			}
		}
		if rt.DeploymentID > 0 {
			if p.deployments[rt.DeploymentID]--; p.deployments[rt.DeploymentID] <= 0 {
				delete(p.deployments, rt.DeploymentID)
				gone = append(gone, rt.DeploymentID)
			}
		}
	}
	for _, rt := range u.Set {
		p.add(t, prev, rt)
	}
	for _, key := range dropped {
		if b := prev.backends[key]; b != nil && t.backends[key] != b {
			b.close()
		}
	}
	if p.activity != nil {
		for _, id := range gone {
			if p.deployments[id] == 0 {
				p.activity.Forget(id)
			}
		}
	}
	return t
}

// add routes rt's hosts in t, with a backend from t, prev or a new one.
func (p *Proxy) add(t, prev *Table, rt dynconfig.Route) {
	r := &route{kind: rt.Kind, router: rt.Router, deploymentID: rt.DeploymentID}
	if rt.Kind == dynconfig.KindBackend {
		key := backendKey(rt)
		b := t.backends[key]
		if b == nil {
			b = prev.backends[key]
		}
		if b == nil {
			b = p.newBackend(rt)
		}
		t.backends[key] = b
		p.backendRefs[key]++
		r.backend = b
		if rt.DeploymentID > 0 && p.activity != nil {
			r.activity = p.activity.Cell(rt.DeploymentID)
		}
	}
	if rt.DeploymentID > 0 {
		p.deployments[rt.DeploymentID]++
	}
	for _, h := range rt.Hosts {
		t.hosts[h] = r
		t.counts[rt.Kind]++
	}
}

func backendKey(rt dynconfig.Route) string {
	var b strings.Builder
	for _, u := range rt.Servers {
		b.WriteString(u.String())
		b.WriteByte(' ')
	}
	b.WriteString(strconv.FormatBool(rt.PassHost))
	b.WriteByte(' ')
	b.WriteString(rt.FlushInterval.String())
	return b.String()
}

func (p *Proxy) newBackend(rt dynconfig.Route) *backend {
	b := &backend{}
	for _, u := range rt.Servers {
		target := u
		passHost := rt.PassHost
		rp := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				// Rewrite drops the client's Forwarded and X-Forwarded-For,
				// -Host and -Proto; the other forwarding headers (X-Real-IP,
				// the rest of X-Forwarded-*, underscore spellings) go too,
				// so a backend never trusts an address the client made up.
				dropClientForwarding(pr.Out.Header)
				pr.SetXForwarded()
				setRealIP(pr)
				if passHost {
					pr.Out.Host = pr.In.Host
				}
			},
			Transport: p.transport,
			// Streaming responses (text/event-stream, unknown length) are
			// flushed at once by ReverseProxy whatever this value is.
			FlushInterval: rt.FlushInterval,
			BufferPool:    p.bufPool,
			ErrorHandler:  p.backendError,
			ErrorLog:      p.errLog,
		}
		if p.direct && target.Scheme == "http" {
			d := newDirect(target, passHost, rt.FlushInterval, rp, p.bufPool, p.backendError)
			b.servers = append(b.servers, d)
			b.pools = append(b.pools, d.pool)
			continue
		}
		b.servers = append(b.servers, rp)
	}
	return b
}

// setRealIP sets X-Real-IP to the address the connection came from (none
// when that is not an IP address; the client's own was dropped before).
func setRealIP(pr *httputil.ProxyRequest) {
	host, _, err := net.SplitHostPort(pr.In.RemoteAddr)
	if err != nil {
		return
	}
	pr.Out.Header.Set("X-Real-Ip", host)
}

func (p *Proxy) backendError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) || r.Context().Err() != nil {
		// The client went away; nobody reads an answer.
		if rec, ok := w.(*recorder); ok {
			rec.status = 499
		}
		return
	}
	p.log.Warn().Err(err).Str("host", r.Host).Msg("backend did not answer")
	host := hostOf(r)
	var id int64
	if rt := p.table.Load().hosts[host]; rt != nil {
		id = rt.deploymentID
	}
	p.pageBadGateway(w, host, id)
}

// SetGone installs the hosts of recently removed deployments (the server's
// GET /api/v1/ingress/gone): a request for one of them that no route serves
// gets a 410 page saying when, by whom and why, instead of 404.
func (p *Proxy) SetGone(doc *dynconfig.GoneDocument) {
	m := make(map[string]*dynconfig.GoneHost, len(doc.Hosts))
	for i := range doc.Hosts {
		m[doc.Hosts[i].Host] = &doc.Hosts[i]
	}
	p.gone.Store(&m)
}

// goneHost returns what is known about a removed deployment's host.
func (p *Proxy) goneHost(host string) *dynconfig.GoneHost {
	if m := p.gone.Load(); m != nil {
		return (*m)[host]
	}
	return nil
}

// ServeHTTP routes one request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	host := hostOf(r)
	rt := p.table.Load().hosts[host]
	rec := &recorder{ResponseWriter: w}
	kind := kindUnknown
	if rt == nil {
		if g := p.goneHost(host); g != nil {
			kind = kindGone
			p.pageGone(rec, host, g)
		} else {
			p.pageNotFound(rec, host)
		}
	} else {
		kind = int(rt.kind)
		switch rt.kind {
		case dynconfig.KindBackend:
			if rt.activity != nil {
				rt.activity.Touch(start)
			}
			if r.Body != nil && r.Body != http.NoBody {
				// Go's HTTP/1 server closes a request body once the response
				// starts. The transport reads the body once more after its
				// last byte (to find EOF) and, when the backend answered
				// first, got "invalid Read on closed Body", dropped the
				// backend connection and cut the response short. A proxy
				// streams both ways: keep the body open.
				_ = http.NewResponseController(w).EnableFullDuplex()
			}
			rt.backend.ServeHTTP(rec, r)
		case dynconfig.KindOffline:
			p.pageOffline(rec, host, rt.deploymentID)
		case dynconfig.KindDeploying:
			p.pageDeploying(rec, host, rt.deploymentID)
		default:
			p.pageNoServer(rec, host, rt.deploymentID)
		}
	}
	status := rec.status
	if status == 0 {
		if rec.hijacked {
			status = http.StatusSwitchingProtocols
		} else {
			status = http.StatusOK
		}
	}
	d := time.Since(start)
	observe(kind, status, d)
	if p.access != nil {
		ev := p.access.Info().
			Str("host", host).
			Str("method", r.Method).
			Str("path", r.URL.Path).
			Int("status", status).
			Int64("bytes", rec.bytes).
			Dur("duration", d).
			Str("remote", r.RemoteAddr)
		if rt != nil {
			ev = ev.Str("router", rt.router)
		}
		ev.Msg("request")
	}
}

// hostOf returns the request's host without port, lower-cased, without a
// trailing dot.
func hostOf(r *http.Request) string {
	h := r.Host
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

// recorder captures status and size for the access log and metrics. It
// unwraps to the real ResponseWriter, so http.ResponseController (used by
// ReverseProxy to flush and to hijack for WebSockets) reaches it.
type recorder struct {
	http.ResponseWriter
	status   int
	bytes    int64
	hijacked bool
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 || r.status < 200 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter {
	// Reaching the underlying writer is how ReverseProxy hijacks; remember it
	// so the access log shows 101 for upgraded connections.
	r.hijacked = true
	return r.ResponseWriter
}

// bufferPool recycles the 32 KiB copy buffers of ReverseProxy.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (b *bufferPool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bufferPool) Put(x []byte) { b.p.Put(&x) }

// zerologWriter sends ReverseProxy's internal log lines to zerolog.
type zerologWriter struct{ log zerolog.Logger }

func (z zerologWriter) Write(b []byte) (int, error) {
	z.log.Debug().Msg(strings.TrimSpace(string(b)))
	return len(b), nil
}
