package channel

import (
	"context"
	"errors"

	"github.com/nullops/nullops/protocol"
)

// ErrNotImplemented is the answer of DefaultHandler to requests this agent
// build cannot execute yet.
var ErrNotImplemented = errors.New("not implemented on this agent")

// Handler executes the control plane's requests. The channel calls its
// methods one at a time, in the order the requests arrived (so a delete
// never overtakes the deploy before it), each with a context that ends when
// the connection does. Methods should return quickly: start long work in the
// background and report its progress as journaled events (journal.Emit). A
// returned error is sent back to the control plane as the request's error
// reply. Request bodies are already decoded and validated.
type Handler interface {
	// Sync receives the node's full desired state on every (re)connect and
	// answers with the agent's actual state (reconciliation happens here).
	Sync(ctx context.Context, req protocol.SyncRequest) (protocol.SyncReply, error)
	// Deploy starts a deployment.
	Deploy(ctx context.Context, req protocol.DeployRequest) error
	// Delete removes a deployment (rolling back a deploying one).
	Delete(ctx context.Context, req protocol.DeleteRequest) error
	// Cancel stops a deploying deployment and rolls it back.
	Cancel(ctx context.Context, req protocol.DeleteRequest) error
	// Logs opens a log stream. An error means it could not be opened (it
	// becomes the error reply). Otherwise the handler sends chunks on the
	// returned channel and closes it when the stream ends; it must stop and
	// close it when ctx ends (logs.close, or the connection dropped). A
	// final chunk with EOF (and Error, if any) is optional: the channel adds
	// an EOF frame when the handler's channel closes without one.
	Logs(ctx context.Context, req protocol.LogsOpen) (<-chan protocol.LogsData, error)
	// UpdatePlugins receives the current plugin catalog (to pre-pull images).
	UpdatePlugins(ctx context.Context, req protocol.PluginsUpdate) error
}

// StateProvider reports the agent's actual deployments (for sync replies).
type StateProvider interface {
	Deployments(ctx context.Context) ([]protocol.DeploymentState, error)
}

// EmptyState is a StateProvider of an agent that runs nothing.
type EmptyState struct{}

// Deployments implements StateProvider.
func (EmptyState) Deployments(context.Context) ([]protocol.DeploymentState, error) {
	return []protocol.DeploymentState{}, nil
}

// DefaultHandler answers sync with the actual state from State (EmptyState
// when nil) and every other request with ErrNotImplemented. It is what the
// agent runs until an execution engine is plugged in.
type DefaultHandler struct {
	State StateProvider
}

// Sync implements Handler.
func (h DefaultHandler) Sync(ctx context.Context, _ protocol.SyncRequest) (protocol.SyncReply, error) {
	st := h.State
	if st == nil {
		st = EmptyState{}
	}
	deps, err := st.Deployments(ctx)
	if err != nil {
		return protocol.SyncReply{}, err
	}
	if deps == nil {
		deps = []protocol.DeploymentState{}
	}
	return protocol.SyncReply{Deployments: deps}, nil
}

// Deploy implements Handler.
func (DefaultHandler) Deploy(context.Context, protocol.DeployRequest) error { return ErrNotImplemented }

// Delete implements Handler.
func (DefaultHandler) Delete(context.Context, protocol.DeleteRequest) error { return ErrNotImplemented }

// Cancel implements Handler.
func (DefaultHandler) Cancel(context.Context, protocol.DeleteRequest) error { return ErrNotImplemented }

// Logs implements Handler.
func (DefaultHandler) Logs(context.Context, protocol.LogsOpen) (<-chan protocol.LogsData, error) {
	return nil, ErrNotImplemented
}

// UpdatePlugins implements Handler.
func (DefaultHandler) UpdatePlugins(context.Context, protocol.PluginsUpdate) error {
	return ErrNotImplemented
}
