package protocol

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// DefaultRequestTimeout bounds a request without its own deadline.
const DefaultRequestTimeout = 15 * time.Second

// Handler receives every frame that is not a reply to one of our requests.
// It runs on the read loop: return quickly and hand long work to a goroutine.
type Handler func(ctx context.Context, p *Peer, e Envelope)

// RemoteError is a TypeError reply.
type RemoteError struct{ Message string }

func (e *RemoteError) Error() string { return "remote: " + e.Message }

// Peer is one end of the channel: it serialises writes, matches replies to
// requests and dispatches everything else to a Handler.
type Peer struct {
	conn    *websocket.Conn
	handler Handler

	writeMu sync.Mutex
	nextID  atomic.Uint64
	prefix  string

	mu      sync.Mutex
	pending map[string]*pending
	closed  chan struct{}
	err     error
}

// pending is an outstanding request: its first answer goes to reply, any
// later frame with the same ReplyTo to stream (when set).
type pending struct {
	reply   chan Envelope
	stream  chan Envelope
	replied bool
}

// NewPeer wraps an established connection. prefix makes request IDs
// recognisable in logs ("s" for the server, "a" for the agent).
func NewPeer(conn *websocket.Conn, prefix string, h Handler) *Peer {
	conn.SetReadLimit(MaxMessageBytes)
	return &Peer{conn: conn, handler: h, prefix: prefix, pending: map[string]*pending{}, closed: make(chan struct{})}
}

// Conn returns the underlying WebSocket (for Ping).
func (p *Peer) Conn() *websocket.Conn { return p.conn }

// Done is closed when the read loop ends.
func (p *Peer) Done() <-chan struct{} { return p.closed }

// Err is why the read loop ended (valid after Done).
func (p *Peer) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Run reads frames until the connection fails or ctx ends. Malformed frames
// are answered with TypeError (when they carry an ID) and otherwise dropped.
func (p *Peer) Run(ctx context.Context) error {
	defer func() {
		p.mu.Lock()
		close(p.closed)
		for id, pr := range p.pending {
			if !pr.replied {
				close(pr.reply)
			}
			if pr.stream != nil {
				close(pr.stream)
			}
			delete(p.pending, id)
		}
		p.mu.Unlock()
	}()
	for {
		typ, data, err := p.conn.Read(ctx)
		if err != nil {
			p.mu.Lock()
			p.err = err
			p.mu.Unlock()
			return err
		}
		if typ != websocket.MessageText {
			continue
		}
		e, err := DecodeEnvelope(data)
		if err != nil {
			if e.ID != "" {
				_ = p.ReplyError(ctx, e, err)
			}
			continue
		}
		if e.ReplyTo != "" {
			var target chan Envelope
			p.mu.Lock()
			if pr, ok := p.pending[e.ReplyTo]; ok {
				if !pr.replied {
					pr.replied = true
					target = pr.reply
				} else {
					target = pr.stream
				}
			}
			p.mu.Unlock()
			if target != nil {
				// Never block the read loop: a stream consumer that falls
				// more than its buffer behind loses frames.
				select {
				case target <- e:
					continue
				default:
				}
			}
			// Not one of our requests (or an unrouted stream frame): the
			// handler decides.
		}
		if p.handler != nil {
			p.handler(ctx, p, e)
		}
	}
}

// Send writes one envelope.
func (p *Peer) Send(ctx context.Context, e Envelope) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("marshal %s: %w", e.Type, err)
	}
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultRequestTimeout)
		defer cancel()
	}
	if err := p.conn.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("write %s: %w", e.Type, err)
	}
	return nil
}

// NewID returns a fresh request ID.
func (p *Peer) NewID() string { return p.prefix + strconv.FormatUint(p.nextID.Add(1), 10) }

// RoundTrip implements Requester: it sends a request and waits for its
// reply, decoding it into out (which may be nil). Without a deadline on ctx,
// DefaultRequestTimeout applies. Senders use a Call (CallDeploy.Do(ctx, p,
// req)), which fixes the body and reply types.
func (p *Peer) RoundTrip(ctx context.Context, t string, body any, out any) error {
	_, err := p.requestStream(ctx, t, body, out, nil)
	return err
}

// requestStream is RoundTrip that also routes frames sent later with
// ReplyTo = the request ID (e.g. logs.data) to stream, from the moment the
// request is sent, until StopStream(id) or the connection ends (then stream
// is closed; the caller never closes it). stream may be nil. On error
// nothing is routed.
func (p *Peer) requestStream(ctx context.Context, t string, body any, out any, stream chan Envelope) (string, error) {
	e, err := NewEnvelope(t, body)
	if err != nil {
		return "", err
	}
	e.ID = p.NewID()
	ch := make(chan Envelope, 1)
	p.mu.Lock()
	select {
	case <-p.closed:
		p.mu.Unlock()
		return "", errors.New("connection closed")
	default:
	}
	p.pending[e.ID] = &pending{reply: ch, stream: stream}
	p.mu.Unlock()
	accepted := false
	defer func() {
		if stream == nil || !accepted {
			p.StopStream(e.ID)
		}
	}()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultRequestTimeout)
		defer cancel()
	}
	if err := p.Send(ctx, e); err != nil {
		return "", err
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return "", errors.New("connection closed while waiting for " + t + " reply")
		}
		if r.Type == TypeError {
			var eb ErrorBody
			_ = json.Unmarshal(r.Body, &eb)
			return "", &RemoteError{Message: eb.Message}
		}
		if out != nil && len(r.Body) > 0 {
			if err := json.Unmarshal(r.Body, out); err != nil {
				return "", fmt.Errorf("decode %s reply: %w", t, err)
			}
		}
		accepted = true
		return e.ID, nil
	case <-ctx.Done():
		return "", fmt.Errorf("%s: no reply: %w", t, ctx.Err())
	}
}

// StopStream stops routing frames for a request started by Call.Stream.
// The stream channel is not closed (the connection might still deliver into
// it concurrently otherwise); stop reading it after StopStream.
func (p *Peer) StopStream(id string) {
	p.mu.Lock()
	delete(p.pending, id)
	p.mu.Unlock()
}

// Reply answers req with body.
func (p *Peer) Reply(ctx context.Context, req Envelope, body any) error {
	e, err := NewEnvelope(req.Type, body)
	if err != nil {
		return err
	}
	e.ReplyTo = req.ID
	return p.Send(ctx, e)
}

// ReplyError answers req with a TypeError.
func (p *Peer) ReplyError(ctx context.Context, req Envelope, cause error) error {
	e, _ := NewEnvelope(TypeError, ErrorBody{Message: cause.Error()})
	e.ReplyTo = req.ID
	return p.Send(ctx, e)
}

// Close closes the connection with a normal closure and reason.
func (p *Peer) Close(reason string) error {
	return p.conn.Close(websocket.StatusNormalClosure, reason)
}
