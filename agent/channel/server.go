// Package channel is the agent's end of the control-plane channel
// (docs/architecture.md, "Server ↔ agent channel"): the WebSocket endpoint /v1/connect behind TLS. It
// authenticates the control plane's bearer token in constant time, keeps
// exactly one control-plane connection (a new one replaces the old),
// answers hello, replays the unacknowledged events of the journal after
// hello and streams new ones, applies acks, pushes metrics, and hands every
// other request to a Handler.
package channel

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/nullops/nullops/agent/protocol"
)

// Journal is the event outbox the channel replays and acknowledges
// (implemented by agent/journal).
type Journal interface {
	InstanceID() string
	LastAcked() uint64
	Pending(after uint64, max int) ([]protocol.Envelope, error)
	Ack(seq uint64) error
	Changed() <-chan struct{}
}

// Host reports the node's capacity and OS-level usage (agent/hostinfo).
type Host interface {
	Capacity() protocol.Capacity
	Usage() protocol.Usage
}

// Options configure a Server.
type Options struct {
	Token   string // the node token the control plane must present
	Version string // agent product version, reported in hello
	Journal Journal
	Host    Host
	Handler Handler // nil: DefaultHandler{}
	// Containers optionally adds per-container figures to metrics pushes.
	Containers func(ctx context.Context) []protocol.ContainerStats
	// MetricsInterval is how often metrics are pushed (default 15s).
	MetricsInterval time.Duration
	// PingInterval and PingTimeout: the agent pings the control plane
	// every PingInterval (default 10s) and drops a connection that does
	// not answer within PingTimeout (default 30s) — a half-open link
	// (server gone without a close, network cut) is noticed by the agent
	// itself, and the control plane's redial is not held up by it.
	PingInterval time.Duration
	PingTimeout  time.Duration
	Log          zerolog.Logger
}

// Server serves /v1/connect. It is an http.Handler; mount it at
// protocol.PathConnect behind a TLS listener.
type Server struct {
	o         Options
	tokenHash [32]byte

	mu     sync.Mutex
	cur    *session
	closed bool

	accepted atomic.Int64
	refused  atomic.Int64
}

// New builds a Server.
func New(o Options) *Server {
	if o.Handler == nil {
		o.Handler = DefaultHandler{}
	}
	if o.MetricsInterval <= 0 {
		o.MetricsInterval = 15 * time.Second
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 10 * time.Second
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = 30 * time.Second
	}
	return &Server{o: o, tokenHash: sha256.Sum256([]byte(o.Token))}
}

// Stats counts accepted and refused connection attempts.
type Stats struct {
	Accepted, Refused int64
	Connected         bool
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	connected := s.cur != nil
	s.mu.Unlock()
	return Stats{Accepted: s.accepted.Load(), Refused: s.refused.Load(), Connected: connected}
}

// Close drops the current connection and refuses new ones.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	cur := s.cur
	s.mu.Unlock()
	if cur != nil {
		cur.close(websocket.StatusGoingAway, "agent shutting down")
	}
}

// authorized compares the bearer token in constant time (hashes of equal
// length, so neither the content nor the length leaks through timing).
func (s *Server) authorized(r *http.Request) (ok bool, reason string) {
	h := r.Header.Get("Authorization")
	scheme, tok, found := strings.Cut(h, " ")
	if h == "" || !found || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return false, "missing bearer token"
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	if subtle.ConstantTimeCompare(got[:], s.tokenHash[:]) != 1 {
		return false, "wrong token"
	}
	return true, ""
}

// ServeHTTP authenticates and upgrades one control-plane connection and
// serves it until it ends.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if ok, reason := s.authorized(r); !ok {
		s.refused.Add(1)
		// The token itself is never logged.
		s.o.Log.Warn().Str("remote", r.RemoteAddr).Str("reason", reason).Str("path", r.URL.Path).
			Msg("control-plane connection refused: 401")
		w.Header().Set("WWW-Authenticate", `Bearer realm="nullops-agent"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"` + reason + `"}` + "\n"))
		return
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		http.Error(w, "agent shutting down", http.StatusServiceUnavailable)
		return
	}
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		s.o.Log.Warn().Err(err).Str("remote", r.RemoteAddr).Msg("websocket upgrade failed")
		return
	}
	s.accepted.Add(1)
	ctx, cancel := context.WithCancel(context.Background())
	ss := newSession(s, conn, r.RemoteAddr, ctx, cancel)

	s.mu.Lock()
	old := s.cur
	s.cur = ss
	s.mu.Unlock()
	if old != nil {
		s.o.Log.Info().Str("remote", old.remote).Str("new_remote", ss.remote).Msg("control-plane connection replaced by a newer one")
		// The old peer is usually gone (that is why the control plane
		// redialled): do not make the new connection wait for its close
		// handshake to time out.
		go old.close(websocket.StatusPolicyViolation, "replaced by a newer control-plane connection")
	}
	s.o.Log.Info().Str("remote", ss.remote).Msg("control plane connected")

	err = ss.run()

	s.mu.Lock()
	if s.cur == ss {
		s.cur = nil
	}
	s.mu.Unlock()
	s.o.Log.Info().Str("remote", ss.remote).Str("reason", closeReason(err)).Msg("control plane disconnected")
}

func closeReason(err error) string {
	if err == nil {
		return "closed"
	}
	if st := websocket.CloseStatus(err); st != -1 {
		var ce websocket.CloseError
		if ok := asCloseError(err, &ce); ok && ce.Reason != "" {
			return st.String() + ": " + ce.Reason
		}
		return st.String()
	}
	return err.Error()
}
