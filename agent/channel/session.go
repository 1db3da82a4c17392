package channel

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/nullops/nullops/protocol"
)

// Flow control of the event stream: at most replayWindow events are sent
// beyond the last acknowledged one, read from the journal in batches.
const (
	replayWindow = 512
	replayBatch  = 128
	requestQueue = 64
)

func asCloseError(err error, ce *websocket.CloseError) bool { return errors.As(err, ce) }

// session is one control-plane connection.
type session struct {
	s      *Server
	peer   *protocol.Peer // set by attach
	remote string
	epoch  uint64
	ctx    context.Context
	cancel context.CancelFunc

	last    atomic.Int64 // unix nanoseconds of the last frame or ping received
	window  atomic.Int64 // health window announced in hello (nanoseconds; 0 = the server's default)
	helloed atomic.Bool
	acked   chan struct{} // signalled by every ack (flow control)
	reqs    chan protocol.Envelope

	mu      sync.Mutex
	streams map[string]context.CancelFunc
}

func newSession(s *Server, remote string, epoch uint64) *session {
	ctx, cancel := context.WithCancel(context.Background())
	ss := &session{s: s, remote: remote, epoch: epoch, ctx: ctx, cancel: cancel,
		acked: make(chan struct{}, 1), reqs: make(chan protocol.Envelope, requestQueue), streams: map[string]context.CancelFunc{}}
	ss.touch()
	return ss
}

// attach binds the upgraded connection.
func (ss *session) attach(conn *websocket.Conn) {
	ss.mu.Lock()
	ss.peer = protocol.NewPeer(conn, "a", ss.handle)
	ss.mu.Unlock()
}

func (ss *session) touch() { ss.last.Store(time.Now().UnixNano()) }

// idle is how long nothing arrived on the connection.
func (ss *session) idle() time.Duration { return time.Since(time.Unix(0, ss.last.Load())) }

// healthy: the connection is open and something arrived within the
// window the control plane announced in hello (def before hello).
func (ss *session) healthy(def time.Duration) bool {
	window := def
	if w := time.Duration(ss.window.Load()); w > 0 {
		window = w
	}
	return ss.ctx.Err() == nil && ss.idle() < window
}

// untilUnhealthy is how long the connection stays healthy if nothing
// more arrives.
func (ss *session) untilUnhealthy(def time.Duration) time.Duration {
	window := def
	if w := time.Duration(ss.window.Load()); w > 0 {
		window = w
	}
	return max(window-ss.idle(), 0)
}

func (ss *session) close(code websocket.StatusCode, reason string) {
	ss.mu.Lock()
	p := ss.peer
	ss.mu.Unlock()
	if p != nil {
		_ = p.Conn().Close(code, reason)
	}
	ss.cancel()
}

// run serves the connection until it ends.
func (ss *session) run() error {
	go ss.work()
	go ss.keepAlive()
	err := ss.peer.Run(ss.ctx)
	ss.cancel()
	_ = ss.peer.Conn().CloseNow()
	return err
}

// handle runs on the read loop: it answers hello, applies acks and closes
// log streams inline, and queues every other request for the worker.
func (ss *session) handle(ctx context.Context, p *protocol.Peer, e protocol.Envelope) {
	ss.touch()
	switch e.Type {
	case protocol.TypeHello:
		ss.hello(e)
	case protocol.TypeTokenRotate, protocol.TypeTokenRevoke:
		if e.ID == "" {
			return
		}
		if !ss.helloed.Load() {
			_ = p.ReplyError(ctx, e, errors.New("send hello first"))
			return
		}
		ss.token(ctx, p, e)
	case protocol.TypeAck:
		a, err := protocol.DecodeBody[protocol.Ack](e)
		if err != nil {
			ss.s.o.Log.Warn().Err(err).Msg("malformed ack ignored")
			return
		}
		if err := ss.s.o.Journal.Ack(a.Seq); err != nil {
			ss.s.o.Log.Error().Err(err).Uint64("seq", a.Seq).Msg("record ack")
			return
		}
		select {
		case ss.acked <- struct{}{}:
		default:
		}
	case protocol.TypeLogsClose:
		lc, err := protocol.DecodeBody[protocol.LogsClose](e)
		if err == nil {
			ss.mu.Lock()
			if cancel, ok := ss.streams[lc.ID]; ok {
				cancel()
				delete(ss.streams, lc.ID)
			}
			ss.mu.Unlock()
		}
		if e.ID != "" {
			if err != nil {
				_ = p.ReplyError(ctx, e, err)
			} else {
				_ = p.Reply(ctx, e, protocol.Empty{})
			}
		}
	case protocol.TypeSync, protocol.TypeDeploy, protocol.TypeDelete, protocol.TypeCancel,
		protocol.TypeLogsOpen, protocol.TypePluginsUpdate:
		if e.ID == "" {
			ss.s.o.Log.Warn().Str("type", e.Type).Msg("request without id ignored")
			return
		}
		if !ss.helloed.Load() {
			_ = p.ReplyError(ctx, e, errors.New("send hello first"))
			return
		}
		select {
		case ss.reqs <- e:
		case <-ctx.Done():
		}
	default:
		if e.ID != "" {
			_ = p.ReplyError(ctx, e, fmt.Errorf("unknown request type %q", e.Type))
			return
		}
		ss.s.o.Log.Debug().Str("type", e.Type).Msg("unexpected frame ignored")
	}
}

// token applies a rotation or revocation of the node token, persisted
// before the reply: from then on the old token is refused (rotation) or
// every token is (revocation, which also ends this connection).
func (ss *session) token(ctx context.Context, p *protocol.Peer, e protocol.Envelope) {
	s := ss.s
	if e.Type == protocol.TypeTokenRotate {
		req, err := protocol.DecodeBody[protocol.TokenRotate](e)
		if err == nil {
			err = s.trust.Rotate(req.Verifier, req.Generation)
		}
		if err != nil {
			s.o.Log.Error().Err(err).Msg("token rotation not applied")
			_ = p.ReplyError(ctx, e, err)
			return
		}
		s.o.Log.Warn().Int("generation", req.Generation).Str("remote", ss.remote).
			Msg("node token rotated by the control plane: only the new token is accepted from now on")
		s.emit(protocol.ChannelEvent{Kind: protocol.ChannelTokenRotated, Remote: ss.remote, Epoch: ss.epoch,
			Reason: fmt.Sprintf("token generation %d", req.Generation)})
		_ = p.Reply(ctx, e, protocol.Empty{})
		return
	}
	req, err := protocol.DecodeBody[protocol.TokenRevoke](e)
	if err == nil {
		err = s.trust.Revoke()
	}
	if err != nil {
		s.o.Log.Error().Err(err).Msg("token revocation not applied")
		_ = p.ReplyError(ctx, e, err)
		return
	}
	s.o.Log.Warn().Str("remote", ss.remote).Str("reason", req.Reason).
		Msg("node token revoked by the control plane: every token is refused until the agent is started with a new one")
	s.emit(protocol.ChannelEvent{Kind: protocol.ChannelTokenRevoked, Remote: ss.remote, Epoch: ss.epoch, Reason: req.Reason})
	_ = p.Reply(ctx, e, protocol.Empty{})
	go ss.close(websocket.StatusPolicyViolation, "token revoked")
}

func (ss *session) hello(e protocol.Envelope) {
	req, err := protocol.DecodeBody[protocol.HelloRequest](e)
	if err != nil {
		_ = ss.peer.ReplyError(ss.ctx, e, err)
		return
	}
	if req.LivenessMs > 0 {
		w := min(max(time.Duration(req.LivenessMs)*time.Millisecond, time.Second), 10*time.Minute)
		ss.window.Store(int64(w))
	}
	if req.ProtocolVersion != protocol.Version {
		// Answer anyway: the control plane decides, and reports both versions.
		ss.s.o.Log.Warn().Int("server_protocol", req.ProtocolVersion).Int("agent_protocol", protocol.Version).
			Str("server_version", req.ServerVersion).Msg("control plane speaks another protocol version")
	}
	o := ss.s.o
	reply := protocol.HelloReply{
		AgentVersion:    o.Version,
		ProtocolVersion: protocol.Version,
		InstanceID:      o.Journal.InstanceID(),
		LastAckedSeq:    o.Journal.LastAcked(),
	}
	if o.Host != nil {
		reply.Capacity, reply.Usage = o.Host.Capacity(), o.Host.Usage()
	}
	if err := ss.peer.Reply(ss.ctx, e, reply); err != nil {
		return
	}
	if ss.helloed.CompareAndSwap(false, true) {
		go ss.sendEvents()
		go ss.sendMetrics()
	}
}

// work executes queued requests one at a time, in arrival order.
func (ss *session) work() {
	for {
		select {
		case <-ss.ctx.Done():
			ss.mu.Lock()
			for id, cancel := range ss.streams {
				cancel()
				delete(ss.streams, id)
			}
			ss.mu.Unlock()
			return
		case e := <-ss.reqs:
			ss.dispatch(e)
		}
	}
}

func (ss *session) dispatch(e protocol.Envelope) {
	h := ss.s.o.Handler
	ctx := ss.ctx
	var reply any = protocol.Empty{}
	var err error
	switch e.Type {
	case protocol.TypeSync:
		var req protocol.SyncRequest
		if req, err = protocol.DecodeBody[protocol.SyncRequest](e); err == nil {
			var r protocol.SyncReply
			r, err = h.Sync(ctx, req)
			if r.Deployments == nil {
				r.Deployments = []protocol.DeploymentState{}
			}
			reply = r
		}
	case protocol.TypeDeploy:
		var req protocol.DeployRequest
		if req, err = protocol.DecodeBody[protocol.DeployRequest](e); err == nil {
			err = h.Deploy(ctx, req)
		}
	case protocol.TypeDelete, protocol.TypeCancel:
		var req protocol.DeleteRequest
		if req, err = protocol.DecodeBody[protocol.DeleteRequest](e); err == nil {
			if e.Type == protocol.TypeDelete {
				err = h.Delete(ctx, req)
			} else {
				err = h.Cancel(ctx, req)
			}
		}
	case protocol.TypePluginsUpdate:
		var req protocol.PluginsUpdate
		if req, err = protocol.DecodeBody[protocol.PluginsUpdate](e); err == nil {
			err = h.UpdatePlugins(ctx, req)
		}
	case protocol.TypeLogsOpen:
		ss.openLogs(e)
		return
	}
	if err != nil {
		ss.s.o.Log.Info().Err(err).Str("type", e.Type).Str("id", e.ID).Msg("request failed")
		_ = ss.peer.ReplyError(ctx, e, err)
		return
	}
	_ = ss.peer.Reply(ctx, e, reply)
}

func (ss *session) openLogs(e protocol.Envelope) {
	req, err := protocol.DecodeBody[protocol.LogsOpen](e)
	if err != nil {
		_ = ss.peer.ReplyError(ss.ctx, e, err)
		return
	}
	sctx, cancel := context.WithCancel(ss.ctx)
	ch, err := ss.s.o.Handler.Logs(sctx, req)
	if err != nil {
		cancel()
		_ = ss.peer.ReplyError(ss.ctx, e, err)
		return
	}
	ss.mu.Lock()
	ss.streams[e.ID] = cancel
	ss.mu.Unlock()
	if err := ss.peer.Reply(ss.ctx, e, protocol.Empty{}); err != nil {
		cancel()
	}
	go func() {
		defer func() {
			cancel()
			ss.mu.Lock()
			delete(ss.streams, e.ID)
			ss.mu.Unlock()
		}()
		eof := false
		for d := range ch {
			if eof {
				continue // drain until the handler closes
			}
			f, _ := protocol.MsgLogsData.Envelope(d)
			f.ReplyTo = e.ID
			if err := ss.peer.Send(ss.ctx, f); err != nil {
				cancel()
				eof = true
				continue
			}
			eof = d.EOF
		}
		if !eof && ss.ctx.Err() == nil {
			f, _ := protocol.MsgLogsData.Envelope(protocol.LogsData{EOF: true})
			f.ReplyTo = e.ID
			_ = ss.peer.Send(ss.ctx, f)
		}
	}()
}

// sendEvents replays every unacknowledged event, then streams new ones as
// they are journaled, never more than replayWindow beyond the last ack.
func (ss *session) sendEvents() {
	j := ss.s.o.Journal
	cursor := j.LastAcked()
	for {
		changed := j.Changed()
		acked := j.LastAcked()
		if acked > cursor {
			cursor = acked
		}
		room := replayWindow - int(cursor-acked)
		var evs []protocol.Envelope
		if room > 0 {
			var err error
			evs, err = j.Pending(cursor, min(room, replayBatch))
			if err != nil {
				ss.s.o.Log.Error().Err(err).Msg("read journal; dropping the connection so the replay restarts")
				ss.close(websocket.StatusInternalError, "agent journal unreadable")
				return
			}
		}
		for _, ev := range evs {
			if err := ss.peer.Send(ss.ctx, ev); err != nil {
				return
			}
			cursor = ev.Seq
		}
		if len(evs) > 0 {
			continue
		}
		select {
		case <-changed:
		case <-ss.acked:
		case <-ss.ctx.Done():
			return
		}
	}
}

// sendMetrics pushes capacity and usage periodically.
func (ss *session) sendMetrics() {
	o := ss.s.o
	if o.Host == nil {
		return
	}
	t := time.NewTicker(o.MetricsInterval)
	defer t.Stop()
	for {
		select {
		case <-ss.ctx.Done():
			return
		case <-t.C:
		}
		m := protocol.Metrics{Capacity: o.Host.Capacity(), Usage: o.Host.Usage(), At: time.Now().UTC()}
		if o.Containers != nil {
			m.Containers = o.Containers(ss.ctx)
		}
		if err := protocol.MsgMetrics.Send(ss.ctx, ss.peer, m); err != nil {
			return
		}
	}
}

// keepAlive pings the control plane and closes the connection when a pong
// does not come back within PingTimeout.
func (ss *session) keepAlive() {
	o := ss.s.o
	t := time.NewTicker(o.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ss.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(ss.ctx, o.PingTimeout)
		err := ss.peer.Conn().Ping(ctx)
		cancel()
		if err == nil {
			continue
		}
		if ss.ctx.Err() != nil {
			return
		}
		o.Log.Warn().Str("remote", ss.remote).Dur("timeout", o.PingTimeout).Err(err).
			Msg("control plane did not answer ping; dropping the connection")
		_ = ss.peer.Conn().CloseNow()
		ss.cancel()
		return
	}
}
