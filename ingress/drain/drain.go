// Package drain serves HTTP/1 on a listener and stops serving without
// dropping a request a client has sent.
//
// http.Server.Shutdown is not enough for that: a request read after
// Shutdown has begun is dropped unanswered (net/http closes the connection
// when it finds the server shutting down after reading a request), so every
// connection accepted shortly before Shutdown but not yet read fails with a
// bare EOF on the client. A new connection is never retried by clients.
// Drain instead:
//
//  1. marks the server draining: from now on every response carries
//     "Connection: close" (upgrades excepted), so each connection is closed
//     right after the request it carries;
//  2. closes the listener and waits until its Serve has returned: nothing
//     more is accepted (with a socket handed over, a successor accepts from
//     the same queue);
//  3. serves every request that arrives on a connection it already holds,
//     whether that connection is new (its request not read yet) or idle
//     between keep-alive requests — nothing is dropped;
//  4. closes a keep-alive connection only after it has been idle for the
//     idle grace with nothing received (not even in the kernel's receive
//     queue): a client sending on a connection at least that often is
//     always answered; one idle longer sees the close the way it sees an
//     idle timeout, which clients retry;
//  5. returns when every connection it accepted is closed — hijacked ones
//     (WebSockets) included when asked to wait for them — or, when ctx
//     ends first, closes what is left.
//
// A connection whose first request has not arrived is never closed by the
// drain (a client never retries a request on a fresh connection): the
// server's ReadHeaderTimeout bounds it.
package drain

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server is one http.Server serving one listener.
type Server struct {
	srv      *http.Server
	ln       net.Listener // the tracking listener (under TLS when there is TLS)
	draining atomic.Bool
	served   chan struct{} // closed when Serve returned
	serveErr error         // set before served is closed

	mu    sync.Mutex
	conns map[*conn]struct{}
	wake  chan struct{} // capacity 1: a connection changed state or closed
}

// Start serves srv on ln (with TLS when tlsConfig is not nil) in a new
// goroutine. It sets srv.Handler and srv.ConnState to wrappers of theirs.
func Start(srv *http.Server, ln net.Listener, tlsConfig *tls.Config) *Server {
	s := &Server{
		srv:    srv,
		served: make(chan struct{}),
		conns:  map[*conn]struct{}{},
		wake:   make(chan struct{}, 1),
	}
	s.ln = &listener{Listener: ln, s: s}
	h := srv.Handler
	if h == nil {
		h = http.DefaultServeMux
	}
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() && r.Header.Get("Upgrade") == "" {
			// Answer, then close: the client's next request goes to a
			// new connection, which only the successor accepts.
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
	hook := srv.ConnState
	srv.ConnState = func(nc net.Conn, st http.ConnState) {
		s.setState(nc, st)
		if hook != nil {
			hook(nc, st)
		}
	}
	var l net.Listener = s.ln
	if tlsConfig != nil {
		l = tls.NewListener(s.ln, tlsConfig)
	}
	go func() {
		s.serveErr = srv.Serve(l)
		close(s.served)
	}()
	return s
}

// Stopped is closed when the server stopped serving by itself (its
// listener failed) before Drain; Err then says why.
func (s *Server) Stopped() <-chan struct{} { return s.served }

// Err is why Serve returned (after Stopped is closed).
func (s *Server) Err() error { return s.serveErr }

// Options say how patient Drain is.
type Options struct {
	// Idle is how long a keep-alive connection may stay idle before it is
	// closed; 0 closes idle connections at once (still not one whose next
	// request is arriving).
	Idle time.Duration
	// WaitUpgraded waits for hijacked connections (WebSockets) to end too;
	// otherwise they are closed at once.
	WaitUpgraded bool
}

// Drain stops accepting and returns once every connection is closed (see
// the package comment). When ctx ends first, the connections left are
// closed and their number is returned with ctx's error.
func (s *Server) Drain(ctx context.Context, o Options) (cut int, err error) {
	s.draining.Store(true)
	_ = s.ln.Close()
	select {
	case <-s.served:
	case <-ctx.Done():
		return s.closeAll(), ctx.Err()
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		left, expired, next := s.scan(time.Now(), o)
		for _, c := range expired {
			_ = c.Close()
		}
		if left == 0 {
			return 0, nil
		}
		if len(expired) > 0 {
			continue // they are gone now: scan again
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = time.Until(next)
		}
		timer.Reset(wait)
		select {
		case <-s.wake:
		case <-timer.C:
		case <-ctx.Done():
			return s.closeAll(), ctx.Err()
		}
	}
}

// scan counts the open connections, picks the ones to close now and says
// when the next idle one may be closed.
func (s *Server) scan(now time.Time, o Options) (left int, expired []*conn, next time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.state == http.StateHijacked && !o.WaitUpgraded {
			expired = append(expired, c)
			continue
		}
		if c.state != http.StateIdle {
			continue // new (request on its way), active or hijacked: wait
		}
		due := c.since.Add(o.Idle)
		if now.Before(due) {
			if next.IsZero() || due.Before(next) {
				next = due
			}
			continue
		}
		if c.read.Load() != c.readAtIdle || c.pending() {
			// The next request is arriving: the server is about to read
			// it and mark the connection active.
			continue
		}
		expired = append(expired, c)
	}
	return len(s.conns), expired, next
}

func (s *Server) closeAll() int {
	s.mu.Lock()
	var all []*conn
	for c := range s.conns {
		all = append(all, c)
	}
	s.mu.Unlock()
	for _, c := range all {
		_ = c.Close()
	}
	return len(all)
}

func (s *Server) setState(nc net.Conn, st http.ConnState) {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	c, ok := nc.(*conn)
	if !ok {
		return
	}
	s.mu.Lock()
	if _, open := s.conns[c]; open {
		c.state = st
		if st == http.StateIdle {
			c.since = time.Now()
			c.readAtIdle = c.read.Load()
		}
	}
	s.mu.Unlock()
	s.notify()
}

func (s *Server) notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// listener tracks every connection it accepts until it is closed.
type listener struct {
	net.Listener
	s *Server
}

func (l *listener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &conn{Conn: nc, s: l.s, state: http.StateNew, since: time.Now()}
	l.s.mu.Lock()
	l.s.conns[c] = struct{}{}
	l.s.mu.Unlock()
	return c, nil
}

// conn is an accepted connection; it counts the bytes read from it and
// leaves the server's books when closed.
type conn struct {
	net.Conn
	s         *Server
	read      atomic.Uint64
	closeOnce sync.Once

	// under s.mu
	state      http.ConnState
	since      time.Time
	readAtIdle uint64
}

func (c *conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.read.Add(uint64(n))
	}
	return n, err
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
		c.s.notify()
	})
	return err
}

// CloseWrite half-closes, as net/http does before closing a connection
// whose request it did not read entirely.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("drain: connection cannot half-close")
}

// pending reports whether bytes wait in the kernel's receive queue.
func (c *conn) pending() bool { return receiveQueued(c.Conn) }
