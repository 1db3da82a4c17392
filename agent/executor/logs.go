package executor

import (
	"context"
	"fmt"

	"github.com/nullops/nullops/agent/runtime"
	"github.com/nullops/nullops/protocol"
)

// Logs streams the logs of a deployment's service container on this node
// (tail lines, then following when asked). Chunks arrive on the returned
// channel, which is closed after a final EOF chunk (with Error when the
// stream broke); cancelling ctx (logs.close, or the connection dropped)
// ends it. It fails at once when the service has no container here.
func (e *Executor) Logs(ctx context.Context, req protocol.LogsOpen) (<-chan protocol.LogsData, error) {
	if err := req.Validate(); err != nil {
		return nil, fmt.Errorf("logs: %w", err)
	}
	objs, err := e.rt.ListManaged(ctx, req.DeploymentID)
	if err != nil {
		return nil, fmt.Errorf("logs: %w", err)
	}
	var target string
	for _, o := range objs {
		if o.Kind == runtime.KindWorkload && o.Service == req.Service {
			target = o.ID
		}
	}
	if target == "" {
		return nil, fmt.Errorf("logs: deployment %d has no service %q on this node", req.DeploymentID, req.Service)
	}
	red, ok := e.mon.redactor(req.DeploymentID)
	if !ok {
		// Never stream unmasked: the secrets arrive with the next sync.
		return nil, fmt.Errorf("logs: deployment %d: its secrets are not known to this agent yet (it restarted); retry after the control plane's sync", req.DeploymentID)
	}
	ch := make(chan protocol.LogsData, 16)
	sctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(e.ctx, cancel) // agent shutdown ends streams too
	e.go_(func() {
		defer close(ch)
		defer stop()
		defer cancel()
		send := func(stream, data string) error {
			if data == "" {
				return nil
			}
			select {
			case ch <- protocol.LogsData{Stream: stream, Data: data}:
				return nil
			case <-sctx.Done():
				return sctx.Err()
			}
		}
		// One masker per stream: a secret split across two chunks of the
		// same stream is still masked. With timestamps, each chunk is one
		// Docker message starting with its time: the stamper masks around
		// the times.
		maskers := map[string]interface {
			Write(string) string
			Flush() string
		}{}
		err := e.rt.Logs(sctx, target, req.Tail, req.Follow, req.Timestamps, func(stream, data string) error {
			m := maskers[stream]
			if m == nil {
				m = &streamMasker{r: red}
				if req.Timestamps {
					m = newLineStamper(&streamMasker{r: red})
				}
				maskers[stream] = m
			}
			return send(stream, m.Write(data))
		})
		for _, stream := range []string{"stdout", "stderr"} {
			if m := maskers[stream]; m != nil {
				_ = send(stream, m.Flush())
			}
		}
		end := protocol.LogsData{EOF: true}
		if err != nil && sctx.Err() == nil {
			end.Error = err.Error()
		}
		select {
		case ch <- end:
		case <-sctx.Done():
		}
	})
	return ch, nil
}
