package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// direct forwards plain HTTP/1.1 requests to one backend server on a
// connection that the serving goroutine itself writes and reads.
//
// Why: net/http.Transport hands every request to two goroutines per backend
// connection (a write loop and a read loop) and back, which costs wake-ups
// and scheduler work on every request; in the profile of the proxy that was
// most of the difference to nginx. Here the request is written, the response
// read and copied back in the goroutine net/http.Server runs the handler in.
//
// What it does not take (it hands them to the ReverseProxy it wraps, so the
// behaviour stays that of the standard library): protocol upgrades
// (WebSockets), "Expect: 100-continue", request trailers, request bodies
// that are chunked or over 64 KiB, queries that ReverseProxy would clean
// (a ';'), and backends that are not plain http.
type direct struct {
	target    *url.URL
	passHost  bool
	flush     time.Duration
	fallback  http.Handler
	pool      *connPool
	bufPool   *bufferPool
	onError   func(http.ResponseWriter, *http.Request, error)
	dialer    net.Dialer
	addr      string // host:port to dial
	hostValue string // Host header sent when the client's is not passed
}

func newDirect(target *url.URL, passHost bool, flush time.Duration, fallback http.Handler,
	bufPool *bufferPool, onError func(http.ResponseWriter, *http.Request, error)) *direct {
	addr := target.Host
	if target.Port() == "" {
		addr = net.JoinHostPort(target.Hostname(), "80")
	}
	return &direct{
		target: target, passHost: passHost, flush: flush, fallback: fallback,
		pool: newConnPool(directMaxIdle, directIdleTimeout), bufPool: bufPool, onError: onError,
		dialer: net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second},
		addr:   addr, hostValue: target.Host,
	}
}

const (
	directMaxBody     = 64 << 10
	directMaxIdle     = 1024
	directIdleTimeout = 90 * time.Second
)

// handles reports whether the direct path forwards r; everything else goes
// to the ReverseProxy.
func (d *direct) handles(r *http.Request) bool {
	if d.target.Scheme != "http" || strings.Contains(r.URL.RawQuery, ";") {
		return false
	}
	h := r.Header
	if len(h["Upgrade"]) > 0 || len(h["Expect"]) > 0 || len(h["Trailer"]) > 0 {
		return false
	}
	// The request is written before the answer is read, so a backend that
	// answers early (413) without reading a large body would look like a
	// broken connection; bodies of unknown or large size take the
	// transport, which reads and writes at the same time.
	return r.ContentLength >= 0 && r.ContentLength <= directMaxBody
}

func (d *direct) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !d.handles(r) {
		d.fallback.ServeHTTP(w, r)
		return
	}
	out := d.outgoing(r)
	res, bc, err := d.roundTrip(r.Context(), out)
	if err != nil {
		d.onError(w, r, err)
		return
	}
	d.copyResponse(w, r, res, bc)
}

// outgoing is the request sent to the backend: the client's request with
// the hop-by-hop headers removed, the forwarding headers set by the proxy
// (never taken from the client), and the backend's URL.
func (d *direct) outgoing(r *http.Request) *http.Request {
	out := new(http.Request)
	*out = *r
	out.URL = &url.URL{Scheme: "http", Host: d.target.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	if d.target.Path != "" && d.target.Path != "/" {
		out.URL.Path, out.URL.RawPath = joinURLPath(d.target, r.URL)
	}
	if !d.passHost {
		out.Host = d.hostValue
	}
	out.Close = false
	out.Header = cloneRequestHeader(r.Header)
	out.RequestURI = ""
	if r.ContentLength == 0 {
		out.Body = nil // no body: nothing to frame, and a retry is allowed
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		out.Header["X-Forwarded-For"] = []string{host}
		out.Header["X-Real-Ip"] = []string{host}
	}
	out.Header["X-Forwarded-Host"] = []string{r.Host}
	if r.TLS != nil {
		out.Header["X-Forwarded-Proto"] = []string{"https"}
	} else {
		out.Header["X-Forwarded-Proto"] = []string{"http"}
	}
	if _, ok := out.Header["User-Agent"]; !ok {
		// Request.Write would send Go's own User-Agent otherwise.
		out.Header["User-Agent"] = []string{""}
	}
	return out
}

// cloneRequestHeader copies h without the hop-by-hop headers (and those
// the Connection header names) and without every forwarding header of the
// client, which a backend must not trust.
func cloneRequestHeader(h http.Header) http.Header {
	out := make(http.Header, len(h)+4)
	var named []string
	for _, v := range h["Connection"] {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				named = append(named, http.CanonicalHeaderKey(f))
			}
		}
	}
	for k, v := range h {
		if hopByHop(k) || dropForwarding(k) || contains(named, k) {
			continue
		}
		out[k] = v
	}
	return out
}

func hopByHop(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// dropForwarding reports whether k is a forwarding header only a proxy may
// set: Forwarded, X-Real-Ip and every X-Forwarded-* (-Port, -Prefix,
// -Server… as well, which frameworks use to build absolute URLs), in any
// case and also spelled with underscores, which CGI, WSGI and PHP servers
// read as the same header.
func dropForwarding(k string) bool {
	if k == "" {
		return false
	}
	switch k[0] {
	case 'X', 'x', 'F', 'f':
	default:
		return false
	}
	if strings.IndexByte(k, '_') >= 0 {
		k = strings.ReplaceAll(k, "_", "-")
	}
	const xf = "X-Forwarded-"
	return strings.EqualFold(k, "Forwarded") || strings.EqualFold(k, "X-Real-Ip") ||
		(len(k) > len(xf) && strings.EqualFold(k[:len(xf)], xf))
}

// dropClientForwarding deletes from h every header dropForwarding names.
func dropClientForwarding(h http.Header) {
	for k := range h {
		if dropForwarding(k) {
			delete(h, k)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// backendConn is one keep-alive connection to the backend with its
// buffered reader and writer.
type backendConn struct {
	net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	idle time.Time // when it was put back into the pool
}

// errRetry marks a failure on a reused connection before any byte of a
// response arrived: the backend closed it while it was idle.
var errRetry = errors.New("reused connection closed by the backend")

// roundTrip writes out and reads the response head. A request without a
// body that failed on a reused connection before any answer is tried once
// more on a new connection, as net/http.Transport does.
func (d *direct) roundTrip(ctx context.Context, out *http.Request) (*http.Response, *backendConn, error) {
	for attempt := 0; ; attempt++ {
		bc, reused, err := d.conn(ctx)
		if err != nil {
			return nil, nil, err
		}
		res, err := d.exchange(ctx, bc, out, reused)
		if err == nil {
			return res, bc, nil
		}
		bc.Close()
		if errors.Is(err, errRetry) && out.Body == nil && attempt == 0 && ctx.Err() == nil {
			continue
		}
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, err
	}
}

func (d *direct) conn(ctx context.Context) (*backendConn, bool, error) {
	if bc := d.pool.get(); bc != nil {
		return bc, true, nil
	}
	c, err := d.dialer.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, false, err
	}
	return &backendConn{Conn: c, br: bufio.NewReaderSize(c, 16<<10), bw: bufio.NewWriterSize(c, 16<<10)}, false, nil
}

// exchange sends the request and reads the response head (skipping 1xx
// informational answers). While it waits, the client going away closes the
// backend connection, which ends the wait.
func (d *direct) exchange(ctx context.Context, bc *backendConn, out *http.Request, reused bool) (*http.Response, error) {
	stop := context.AfterFunc(ctx, func() { _ = bc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := out.Write(bc.bw); err != nil {
		return nil, retryable(err, reused, false)
	}
	if err := bc.bw.Flush(); err != nil {
		return nil, retryable(err, reused, false)
	}
	for {
		if reused {
			if _, err := bc.br.Peek(1); err != nil {
				return nil, retryable(err, true, false)
			}
		}
		res, err := http.ReadResponse(bc.br, out)
		if err != nil {
			return nil, err
		}
		if res.StatusCode >= 100 && res.StatusCode < 200 && res.StatusCode != http.StatusSwitchingProtocols {
			continue
		}
		return res, nil
	}
}

func retryable(err error, reused, answered bool) error {
	if reused && !answered && (errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isConnReset(err)) {
		return errors.Join(errRetry, err)
	}
	return err
}

func isConnReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

// copyResponse sends the backend's answer to the client and puts the
// connection back when the body was read to its end and both sides keep it
// alive.
func (d *direct) copyResponse(w http.ResponseWriter, r *http.Request, res *http.Response, bc *backendConn) {
	stop := context.AfterFunc(r.Context(), func() { _ = bc.SetDeadline(time.Unix(1, 0)) })
	h := w.Header()
	var named []string
	for _, v := range res.Header["Connection"] {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				named = append(named, http.CanonicalHeaderKey(f))
			}
		}
	}
	for k, v := range res.Header {
		if hopByHop(k) || contains(named, k) {
			continue
		}
		h[k] = v
	}
	announced := len(res.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		h["Trailer"] = []string{strings.Join(keys, ", ")}
	}
	w.WriteHeader(res.StatusCode)
	err := d.copyBody(w, res)
	res.Body.Close()
	for k, v := range res.Trailer {
		h[http.TrailerPrefix+k] = v
	}
	if stop() && err == nil && !res.Close && r.Context().Err() == nil {
		d.pool.put(bc)
	} else {
		bc.Close()
	}
	if err != nil && !errors.Is(err, context.Canceled) && r.Context().Err() == nil {
		// The answer was cut in the middle: the client must see a broken
		// response, not a short one that looks complete.
		panic(http.ErrAbortHandler)
	}
}

// copyBody copies the body, flushing after every read for streams (unknown
// length or text/event-stream) and for a negative flush interval, as
// ReverseProxy does; a positive interval flushes at most that often.
func (d *direct) copyBody(w http.ResponseWriter, res *http.Response) error {
	buf := d.bufPool.Get()
	defer d.bufPool.Put(buf)
	stream := d.flush < 0 || res.ContentLength == -1 || strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream")
	var last time.Time
	rc := http.NewResponseController(w)
	for {
		n, rerr := res.Body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
			if stream || (d.flush > 0 && time.Since(last) >= d.flush) {
				_ = rc.Flush()
				last = time.Now()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// joinURLPath joins the backend URL's path and the request's, as
// ReverseProxy's SetURL does.
func joinURLPath(a, b *url.URL) (path, rawpath string) {
	if a.RawPath == "" && b.RawPath == "" {
		return singleJoiningSlash(a.Path, b.Path), ""
	}
	apath, bpath := a.EscapedPath(), b.EscapedPath()
	aslash, bslash := strings.HasSuffix(apath, "/"), strings.HasPrefix(bpath, "/")
	switch {
	case aslash && bslash:
		return a.Path + b.Path[1:], apath + bpath[1:]
	case !aslash && !bslash:
		return a.Path + "/" + b.Path, apath + "/" + bpath
	}
	return a.Path + b.Path, apath + bpath
}

func singleJoiningSlash(a, b string) string {
	aslash, bslash := strings.HasSuffix(a, "/"), strings.HasPrefix(b, "/")
	switch {
	case aslash && bslash:
		return a + b[1:]
	case !aslash && !bslash:
		return a + "/" + b
	}
	return a + b
}

// connPool keeps idle backend connections, newest first (the newest is the
// least likely to have been closed by the backend's idle timeout). While
// it holds any, a timer closes those idle longer than the timeout.
type connPool struct {
	mu      sync.Mutex
	idle    []*backendConn // oldest first
	max     int
	timeout time.Duration
	timer   *time.Timer // pending expiry, nil when none
	closed  bool
}

func newConnPool(max int, timeout time.Duration) *connPool {
	return &connPool{max: max, timeout: timeout}
}

func (p *connPool) get() *backendConn {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for n := len(p.idle); n > 0; n = len(p.idle) {
		bc := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		if now.Sub(bc.idle) < p.timeout {
			return bc
		}
		bc.Close()
	}
	return nil
}

func (p *connPool) put(bc *backendConn) {
	bc.idle = time.Now()
	p.mu.Lock()
	if p.closed || len(p.idle) >= p.max {
		p.mu.Unlock()
		bc.Close()
		return
	}
	p.idle = append(p.idle, bc)
	if p.timer == nil {
		p.timer = time.AfterFunc(p.timeout, p.expire)
	}
	p.mu.Unlock()
}

// expire closes the connections idle for longer than the timeout and
// comes back while any stay.
func (p *connPool) expire() {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	i := 0
	for i < len(p.idle) && now.Sub(p.idle[i].idle) >= p.timeout {
		p.idle[i].Close()
		p.idle[i] = nil
		i++
	}
	p.idle = append(p.idle[:0], p.idle[i:]...)
	p.timer = nil
	if len(p.idle) > 0 && !p.closed {
		p.timer = time.AfterFunc(p.timeout-now.Sub(p.idle[0].idle), p.expire)
	}
}

// close closes the idle connections and every connection put back later
// (the backend left the routing table).
func (p *connPool) close() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	p.mu.Unlock()
	for _, bc := range idle {
		bc.Close()
	}
}
