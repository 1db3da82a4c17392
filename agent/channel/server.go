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
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/nullops/nullops/agent/trust"
	"github.com/nullops/nullops/protocol"
)

// Journal is the event outbox the channel replays and acknowledges
// (implemented by agent/journal).
type Journal interface {
	InstanceID() string
	LastAcked() uint64
	Pending(after uint64, max int) ([]protocol.Envelope, error)
	Ack(seq uint64) error
	Changed() <-chan struct{}
	Emit(ev protocol.Event) (uint64, error)
}

// Host reports the node's capacity and OS-level usage (agent/hostinfo).
type Host interface {
	Capacity() protocol.Capacity
	Usage() protocol.Usage
}

// Options configure a Server.
type Options struct {
	// Trust is the persisted record of the accepted token and epoch; nil:
	// an in-memory record for Token.
	Trust   *trust.Store
	Token   string // the node token the control plane must present (when Trust is nil)
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
	// HealthWindow: a connection from which nothing (no frame, no ping)
	// arrived for this long is unhealthy and may be replaced by a new one;
	// a healthy one is never replaced. The control plane announces its own
	// window in hello (its ping interval + ping timeout); this one applies
	// before hello and when none was announced (default 45s).
	HealthWindow time.Duration
	Log          zerolog.Logger
}

// refusalJournalEvery bounds how often refused connections are journaled
// (the rest are counted into the next entry), so a caller retrying in a
// loop cannot flood the journal.
const refusalJournalEvery = time.Minute

// busyGrace is how long a new connection waits for a healthy current one
// that is closing (e.g. the control plane redialling after a token
// rotation) before it is refused.
const busyGrace = 2 * time.Second

// Server serves /v1/connect. It is an http.Handler; mount it at
// protocol.PathConnect behind a TLS listener.
type Server struct {
	o     Options
	trust *trust.Store

	mu       sync.Mutex
	cur      *session
	closed   bool
	refusals map[string]*refusalLog // by channel event kind

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
	if o.HealthWindow <= 0 {
		o.HealthWindow = 45 * time.Second
	}
	t := o.Trust
	if t == nil {
		t = trust.Memory(o.Token)
	}
	return &Server{o: o, trust: t}
}

// Stats counts accepted and refused connection attempts.
type Stats struct {
	Accepted, Refused int64
	Connected         bool
	// Healthy: the current connection would not be replaced by a new one.
	Healthy bool
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	cur := s.cur
	s.mu.Unlock()
	return Stats{Accepted: s.accepted.Load(), Refused: s.refused.Load(), Connected: cur != nil,
		Healthy: cur != nil && cur.healthy(s.o.HealthWindow)}
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

// authorized checks the bearer token against the trust record (in constant
// time: neither the content nor the length leaks through timing).
func (s *Server) authorized(r *http.Request) (ok bool, reason string) {
	h := r.Header.Get("Authorization")
	scheme, tok, found := strings.Cut(h, " ")
	if h == "" || !found || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return false, "missing bearer token"
	}
	if err := s.trust.Check(strings.TrimSpace(tok)); err != nil {
		if errors.Is(err, trust.ErrRevoked) {
			return false, "token revoked"
		}
		return false, "wrong token"
	}
	return true, ""
}

// refuse answers 409 to an authenticated caller the agent will not take,
// logs it and journals it (coalesced) so the control plane shows it.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, epoch uint64, reason string) {
	s.refused.Add(1)
	s.o.Log.Warn().Str("remote", r.RemoteAddr).Uint64("epoch", epoch).Str("reason", reason).
		Msg("control-plane connection refused: 409")
	s.journalRefusal(protocol.ChannelRefused, r.RemoteAddr, reason, epoch)
	b, _ := json.Marshal(protocol.Refused{Error: reason, Epoch: s.trust.Epoch()})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(protocol.RefusedBusy)
	_, _ = w.Write(append(b, '\n'))
}

// refusalLog coalesces the journaling of one kind of refusal.
type refusalLog struct {
	last       time.Time // last one journaled
	suppressed int       // not journaled since
}

// journalRefusal journals a refused connection, at most once per
// refusalJournalEvery and kind (the next entry counts the ones left out).
func (s *Server) journalRefusal(kind, remote, reason string, epoch uint64) {
	s.mu.Lock()
	if s.refusals == nil {
		s.refusals = map[string]*refusalLog{}
	}
	rl := s.refusals[kind]
	if rl == nil {
		rl = &refusalLog{}
		s.refusals[kind] = rl
	}
	journal := time.Since(rl.last) >= refusalJournalEvery
	more := rl.suppressed
	if journal {
		rl.last, rl.suppressed = time.Now(), 0
	} else {
		rl.suppressed++
	}
	s.mu.Unlock()
	if journal {
		if more > 0 {
			reason += fmt.Sprintf(" (%d more refusals not recorded since)", more)
		}
		s.emit(protocol.ChannelEvent{Kind: kind, Remote: remote, Reason: reason, Epoch: epoch})
	}
}

// emit journals a channel event (logged when it cannot be).
func (s *Server) emit(ev protocol.ChannelEvent) {
	ev.At = time.Now().UTC()
	if len(ev.Reason) > 1024 {
		ev.Reason = ev.Reason[:1024]
	}
	if len(ev.Remote) > 256 {
		ev.Remote = ev.Remote[:256]
	}
	if _, err := s.o.Journal.Emit(ev); err != nil {
		s.o.Log.Error().Err(err).Str("kind", ev.Kind).Msg("journal channel event")
	}
}

// mayReplace decides whether a new authenticated connection with epoch may
// take the place of the current one. Only an unhealthy current connection
// is replaced: a caller holding the token cannot take a live channel away
// from the control plane. Several server replicas need nothing more: only
// the replica holding a node's lease dials it, with a higher epoch than
// its predecessor's (refused below otherwise), and a predecessor that is
// gone or paused falls silent and is replaced within the liveness window
// the server announced in hello (at most its lease TTL; ServeHTTP lets a
// newer epoch wait that long).
func (s *Server) mayReplace(cur *session, epoch uint64) bool {
	return cur == nil || !cur.healthy(s.o.HealthWindow)
}

// ServeHTTP authenticates and upgrades one control-plane connection and
// serves it until it ends.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if ok, reason := s.authorized(r); !ok {
		s.refused.Add(1)
		// The token itself is never logged.
		s.o.Log.Warn().Str("remote", r.RemoteAddr).Str("reason", reason).Str("path", r.URL.Path).
			Msg("control-plane connection refused: 401")
		if reason != "missing bearer token" {
			// Someone holds a wrong, rotated-away or revoked token.
			s.journalRefusal(protocol.ChannelUnauthorized, r.RemoteAddr, reason, 0)
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="nullops-agent"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"` + reason + `"}` + "\n"))
		return
	}
	var epoch uint64
	if h := r.Header.Get(protocol.HeaderEpoch); h != "" {
		n, err := strconv.ParseUint(h, 10, 64)
		if err != nil {
			http.Error(w, "bad "+protocol.HeaderEpoch+" header", http.StatusBadRequest)
			return
		}
		epoch = n
	}
	if highest := s.trust.Epoch(); epoch < highest {
		s.refuse(w, r, epoch, fmt.Sprintf("stale connection epoch %d: epoch %d was already accepted", epoch, highest))
		return
	} else if epoch-highest > protocol.MaxEpochStep {
		s.refuse(w, r, epoch, fmt.Sprintf("connection epoch %d is too far ahead of %d, the highest accepted", epoch, highest))
		return
	}

	ss := newSession(s, r.RemoteAddr, epoch)
	var old *session
	for waited := false; ; waited = true {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			http.Error(w, "agent shutting down", http.StatusServiceUnavailable)
			return
		}
		cur := s.cur
		if cur != nil && cur.ctx.Err() != nil {
			cur = nil // ended; its handler has not cleared it yet
		}
		if s.mayReplace(cur, epoch) {
			old, s.cur = cur, ss
			s.mu.Unlock()
			break
		}
		s.mu.Unlock()
		if waited {
			s.refuse(w, r, epoch, "a healthy control-plane connection exists")
			return
		}
		// The current connection may be closing (the control plane
		// redials after a token rotation): give it a moment to end.
		if epoch > cur.epoch {
			// A newer epoch: the node's lease moved to another server
			// replica, and the current connection is the previous
			// owner's, which is usually gone or paused. Wait until it
			// ends or stays silent for its window, and replace it then;
			// as soon as something arrives on it, it is alive: refuse
			// (the epoch is no proof, a caller holding the token can
			// send any).
			waitSilent(r.Context(), cur, s.o.HealthWindow)
			continue
		}
		t := time.NewTimer(busyGrace)
		select {
		case <-cur.ctx.Done():
		case <-t.C:
		case <-r.Context().Done():
		}
		t.Stop()
	}
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled,
		OnPingReceived: func(context.Context, []byte) bool { ss.touch(); return true },
		OnPongReceived: func(context.Context, []byte) { ss.touch() }})
	if err != nil {
		s.o.Log.Warn().Err(err).Str("remote", r.RemoteAddr).Msg("websocket upgrade failed")
		s.mu.Lock()
		if s.cur == ss {
			s.cur = nil
		}
		s.mu.Unlock()
		ss.cancel()
		if old != nil {
			go old.close(websocket.StatusPolicyViolation, "replaced by a newer control-plane connection")
		}
		return
	}
	s.accepted.Add(1)
	if err := s.trust.AcceptEpoch(epoch); err != nil {
		s.o.Log.Error().Err(err).Uint64("epoch", epoch).Msg("persist connection epoch")
	}
	ss.attach(conn)
	if old != nil {
		s.o.Log.Warn().Str("remote", old.remote).Str("new_remote", ss.remote).Uint64("epoch", epoch).
			Str("idle", old.idle().Round(time.Second).String()).
			Msg("unhealthy control-plane connection replaced by a newer one")
		s.emit(protocol.ChannelEvent{Kind: protocol.ChannelReplaced, Remote: ss.remote, Epoch: epoch,
			Reason: fmt.Sprintf("the connection from %s (epoch %d) was silent for %s", old.remote, old.epoch, old.idle().Round(time.Second))})
		// The old peer is usually gone (that is why the control plane
		// redialled): do not make the new connection wait for its close
		// handshake to time out.
		go old.close(websocket.StatusPolicyViolation, "replaced by a newer control-plane connection")
	}
	s.o.Log.Info().Str("remote", ss.remote).Uint64("epoch", epoch).Msg("control plane connected")

	err = ss.run()

	s.mu.Lock()
	if s.cur == ss {
		s.cur = nil
	}
	s.mu.Unlock()
	s.o.Log.Info().Str("remote", ss.remote).Str("reason", closeReason(err)).Msg("control plane disconnected")
}

// waitSilent waits until cur ends, turns unhealthy, or shows it is alive
// (something arrived on it after the wait began), or ctx ends.
func waitSilent(ctx context.Context, cur *session, def time.Duration) {
	since := cur.last.Load()
	deadline := time.Now().Add(cur.untilUnhealthy(def) + 50*time.Millisecond)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for time.Now().Before(deadline) && cur.last.Load() == since {
		select {
		case <-cur.ctx.Done():
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
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
