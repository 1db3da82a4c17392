package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/errs"
	"github.com/nullops/nullops/server/store"
)

// logsOpenTimeout bounds the wait for an agent to accept a logs stream.
const logsOpenTimeout = 5 * time.Second

// Streamer opens a logs stream: logs.open, whose reply is followed by
// logs.data frames (ReplyTo = the request id). Frames arrive on the channel
// until stop is called, ctx ends or the connection drops (the channel is
// then closed).
type Streamer interface {
	OpenLogs(ctx context.Context, nodeID int64, req protocol.LogsOpen) (frames <-chan protocol.Envelope, stop func(), err error)
}

// LogsRequest says which lines of a service's log to stream: the last Tail
// (0 = all), then new ones while Follow is set, each starting with its
// time when Timestamps is set.
type LogsRequest struct {
	Service    string
	Tail       int
	Follow     bool
	Timestamps bool
}

// Logs streams a service container's logs from the agent as r asks,
// calling fn for each chunk until the stream ends, fn fails or ctx ends
// (the client went away); the agent's stream is closed in every case.
func (s *Service) Logs(ctx context.Context, d store.Deployment, r LogsRequest, fn func(protocol.LogsData) error) error {
	service := r.Service
	svcs, err := s.Store.DeploymentServices(ctx, d.ID)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(svcs, func(x store.DeploymentService) bool { return x.NodeKey == service }) {
		names := make([]string, len(svcs))
		for i, x := range svcs {
			names[i] = x.NodeKey
		}
		return errorf(errs.NotFound, "not_found", "deployment %s has no service %q (services: %v)", d.Name, service, names)
	}
	switch d.Status {
	case store.DeploymentDeleted, store.DeploymentFailed:
		return errorf(errs.Conflict, "wrong_status", "deployment %s is %s: its containers are gone", d.Name, d.Status)
	}
	if d.NodeID == nil || !s.connected(*d.NodeID) {
		return errorf(errs.Unavailable, "node_offline", "node %s of deployment %s is offline; logs are available when it reconnects", d.NodeName, d.Name)
	}
	st, ok := s.Agents.(Streamer)
	if !ok {
		return errors.New("agent connection manager cannot stream")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Opening waits for the agent's answer, but not for long: a node behind
	// a half-open link must not hold the request.
	octx, ocancel := context.WithTimeout(ctx, logsOpenTimeout)
	frames, stop, err := st.OpenLogs(octx, *d.NodeID, protocol.LogsOpen{DeploymentID: d.ID, Service: service, Tail: r.Tail, Follow: r.Follow, Timestamps: r.Timestamps})
	ocancel()
	if err != nil {
		var re *protocol.RemoteError
		if errors.As(err, &re) {
			return errorf(errs.Conflict, "logs_unavailable", "logs of %s: %s", service, re.Message)
		}
		if ctx.Err() == nil {
			return errorf(errs.Unavailable, "node_offline", "node %s of deployment %s did not answer: %v", d.NodeName, d.Name, err)
		}
		return fmt.Errorf("open logs of deployment %d service %s: %w", d.ID, service, err)
	}
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.stopped:
			return nil
		case e, ok := <-frames:
			if !ok {
				return nil
			}
			if e.Type != protocol.TypeLogsData {
				continue
			}
			var ld protocol.LogsData
			if err := json.Unmarshal(e.Body, &ld); err != nil {
				continue
			}
			if err := fn(ld); err != nil {
				return nil // the client went away
			}
			if ld.EOF {
				return nil
			}
		}
	}
}
