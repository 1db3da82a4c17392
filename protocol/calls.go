package protocol

import (
	"context"
	"fmt"
)

// Senders are typed like receivers: a request is sent through its Call
// (body and reply types fixed by the message), a fire-and-forget frame
// through its Message, and a journaled event is a body type implementing
// Event. No sender passes a type string and an untyped body.

// Requester carries one request and decodes its reply into out: a *Peer, or
// the server's connection manager bound to one node. It is the transport
// under Call.Do; senders never call it directly.
type Requester interface {
	RoundTrip(ctx context.Context, t string, body, out any) error
}

// Call is one request type with the body its sender sends and the reply it
// gets back.
type Call[Req, Rep any] struct{ Type string }

// Server → agent requests.
var (
	CallHello         = Call[HelloRequest, HelloReply]{TypeHello}
	CallSync          = Call[SyncRequest, SyncReply]{TypeSync}
	CallDeploy        = Call[DeployRequest, Empty]{TypeDeploy}
	CallDelete        = Call[DeleteRequest, Empty]{TypeDelete}
	CallCancel        = Call[DeleteRequest, Empty]{TypeCancel}
	CallLogsOpen      = Call[LogsOpen, Empty]{TypeLogsOpen}
	CallPluginsUpdate = Call[PluginsUpdate, Empty]{TypePluginsUpdate}
	CallTokenRotate   = Call[TokenRotate, Empty]{TypeTokenRotate}
	CallTokenRevoke   = Call[TokenRevoke, Empty]{TypeTokenRevoke}
)

// Do sends req and waits for the reply (a *RemoteError when the other side
// refused it). Without a deadline on ctx, DefaultRequestTimeout applies.
func (c Call[Req, Rep]) Do(ctx context.Context, r Requester, req Req) (Rep, error) {
	var rep Rep
	if err := r.RoundTrip(ctx, c.Type, req, &rep); err != nil {
		return rep, err
	}
	return rep, nil
}

// Stream sends req over p and, once the other side accepted it, routes the
// frames it sends later with ReplyTo = the request ID (logs.data) to
// stream, until p.StopStream(id) or the connection ends (see
// Peer.RequestStream). It returns the request ID.
func (c Call[Req, Rep]) Stream(ctx context.Context, p *Peer, req Req, stream chan Envelope) (string, Rep, error) {
	var rep Rep
	id, err := p.requestStream(ctx, c.Type, req, &rep, stream)
	return id, rep, err
}

// Decode decodes (and validates) a received request of this type.
func (c Call[Req, Rep]) Decode(e Envelope) (Req, error) {
	if e.Type != c.Type {
		var zero Req
		return zero, fmt.Errorf("%w: %s is not %s", ErrInvalid, e.Type, c.Type)
	}
	return DecodeBody[Req](e)
}

// Message is one fire-and-forget frame type (no reply, not journaled).
type Message[T any] struct{ Type string }

// Fire-and-forget frames.
var (
	MsgAck       = Message[Ack]{TypeAck}             // server → agent
	MsgLogsClose = Message[LogsClose]{TypeLogsClose} // server → agent
	MsgLogsData  = Message[LogsData]{TypeLogsData}   // agent → server
	MsgMetrics   = Message[Metrics]{TypeMetrics}     // agent → server
)

// Send sends body over p.
func (m Message[T]) Send(ctx context.Context, p *Peer, body T) error {
	e, err := m.Envelope(body)
	if err != nil {
		return err
	}
	return p.Send(ctx, e)
}

// Envelope encodes body as a frame of this type.
func (m Message[T]) Envelope(body T) (Envelope, error) { return NewEnvelope(m.Type, body) }

// Event is the body of a journaled agent → server event: it names its own
// message type, so the journal needs no type string.
type Event interface{ EventType() string }

// EventType implements Event.
func (DeploymentStatus) EventType() string { return TypeDeploymentStatus }

// EventType implements Event.
func (StepStatus) EventType() string { return TypeStepStatus }

// EventType implements Event.
func (StepLog) EventType() string { return TypeStepLog }

// EventType implements Event.
func (ServiceState) EventType() string { return TypeServiceState }

// EventType implements Event.
func (ChannelEvent) EventType() string { return TypeChannelEvent }
