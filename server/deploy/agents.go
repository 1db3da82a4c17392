package deploy

import (
	"context"
	"time"

	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/agents"
	"github.com/nullops/nullops/server/store"
)

// ManagerAgents adapts the agent connection manager to Agents and Streamer.
type ManagerAgents struct{ *agents.Manager }

// OpenLogs implements Streamer; stop also tells the agent to close the
// stream.
func (m ManagerAgents) OpenLogs(ctx context.Context, nodeID int64, req protocol.LogsOpen) (<-chan protocol.Envelope, func(), error) {
	st, err := m.Manager.OpenLogs(ctx, nodeID, req, 0)
	if err != nil {
		return nil, nil, err
	}
	stop := func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = st.Close(ctx)
	}
	return st.C, stop, nil
}

// Attach plugs the lifecycle into the connection manager: the appliers of
// every journaled event type, the desired state sent as sync on every
// (re)connect, the node status hook (offline → deployments offline; back
// and synced → reconciled) and the metrics hook (per-container CPU,
// memory and health). Call it before m.Start.
func (s *Service) Attach(m *agents.Manager) {
	for typ, fn := range s.Appliers() {
		m.RegisterApplier(typ, fn)
	}
	m.SetDesiredState(s)
	m.OnStatusChange(func(ctx context.Context, c agents.StatusChange) {
		var err error
		if c.Status == store.NodeOnline {
			err = s.NodeSynced(ctx, c.NodeID)
			s.wake() // deploys committed while it was syncing
		} else if c.Previous == store.NodeOnline || c.Previous == "" {
			reason := c.Status
			if c.Reason != "" {
				reason += ": " + c.Reason
			}
			err = s.NodeOffline(ctx, c.NodeID, reason)
		}
		if err != nil {
			s.Log.Error().Err(err).Int64("node_id", c.NodeID).Str("status", c.Status).Msg("apply node status to its deployments")
		}
	})
	m.OnMetrics(func(ctx context.Context, nodeID int64, mt protocol.Metrics) {
		ms := make([]store.ServiceMetrics, 0, len(mt.Containers))
		for _, c := range mt.Containers {
			if c.DeploymentID <= 0 || c.Service == "" {
				continue
			}
			ms = append(ms, store.ServiceMetrics{DeploymentID: c.DeploymentID, Service: c.Service,
				CPUPercent: c.CPUPercent, MemoryBytes: c.MemoryBytes, Health: c.Health})
		}
		if err := s.Store.UpdateServiceMetrics(ctx, nodeID, ms); err != nil && ctx.Err() == nil {
			s.Log.Warn().Err(err).Int64("node_id", nodeID).Msg("store container metrics")
		}
	})
}
