// Package usage keeps the bounded CPU and memory history of every
// deployment's service containers, from the figures agents push with their
// periodic metrics, and reads it back for the deployment page's graphs
// (docs/architecture.md, "Usage history").
package usage

import (
	"context"
	"sort"
	"time"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/agents"
	"github.com/nullops/nullops/server/store"
)

// The history keeps one sample per Step for Window per service.
const (
	Step   = 15 * time.Second
	Window = 24 * time.Hour
)

// DefaultRing is the history's shape: Window / Step slots per service.
var DefaultRing = store.UsageRing{Step: Step, Slots: int(Window / Step)}

// History records and reads the usage history.
type History struct {
	Store *store.Store
	Log   zerolog.Logger
	// Ring is the history's shape (DefaultRing when zero).
	Ring store.UsageRing
	// Now is the clock samples are stamped with (time.Now when nil): the
	// server's, so an agent's wrong clock cannot move or hide samples.
	Now func() time.Time
}

func (h *History) ring() store.UsageRing {
	if h.Ring.Step <= 0 || h.Ring.Slots <= 0 {
		return DefaultRing
	}
	return h.Ring
}

func (h *History) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// Attach records every metrics push of m's agents. Call it before m.Start.
func (h *History) Attach(m *agents.Manager) {
	m.OnMetrics(func(ctx context.Context, nodeID int64, mt protocol.Metrics) {
		if _, err := h.Record(ctx, nodeID, mt); err != nil && ctx.Err() == nil {
			h.Log.Warn().Err(err).Int64("node_id", nodeID).Msg("record usage history")
		}
	})
}

// Record stores the per-container figures of one metrics push of the agent
// of nodeID, stamped with the server's time. Containers that are not
// running (not started yet, restarting, exited) or could not be measured
// have no figures: they leave a gap. Containers of deployments not placed on that node are ignored. It
// returns how many were recorded.
func (h *History) Record(ctx context.Context, nodeID int64, mt protocol.Metrics) (int64, error) {
	samples := make([]store.UsageSample, 0, len(mt.Containers))
	for _, c := range mt.Containers {
		// A running container always uses some memory: zero means the
		// agent could not read its stats (it reports those as zero).
		if c.DeploymentID <= 0 || c.Service == "" || !c.Running || c.MemoryBytes <= 0 {
			continue
		}
		cpu, mem := c.CPUPercent, c.MemoryBytes
		if cpu < 0 || cpu != cpu { // negative or NaN: not a figure
			cpu = 0
		}
		samples = append(samples, store.UsageSample{DeploymentID: c.DeploymentID, Service: c.Service, CPUPercent: cpu, MemoryBytes: mem})
	}
	return h.Store.RecordUsage(ctx, nodeID, h.now().UTC().Truncate(time.Millisecond), h.ring(), samples)
}

// Series is the history of one service: points [unix seconds, CPU percent
// (100 = one core), memory bytes], oldest first.
type Series struct {
	Service string       `json:"service"`
	Points  [][3]float64 `json:"points"`
}

// Deployment is the usage history of one deployment.
type Deployment struct {
	StepSeconds   int       `json:"step_seconds"`
	WindowSeconds int       `json:"window_seconds"`
	From          time.Time `json:"from"` // the points are newer than this
	To            time.Time `json:"to"`   // the server's time of the answer
	Services      []Series  `json:"services"`
}

// Of reads the history of deployment depID newer than since; a zero or
// older since means the whole window. Every service of the deployment is
// listed, with no points when nothing was sampled.
func (h *History) Of(ctx context.Context, depID int64, since time.Time) (Deployment, error) {
	svcs, err := h.Store.DeploymentServices(ctx, depID)
	if err != nil {
		return Deployment{}, err
	}
	r := h.ring()
	now := h.now().UTC()
	from := now.Add(-r.Window())
	if since.After(from) {
		from = since.UTC()
	}
	pts, err := h.Store.DeploymentUsage(ctx, depID, from)
	if err != nil {
		return Deployment{}, err
	}
	out := Deployment{StepSeconds: int(r.Step / time.Second), WindowSeconds: int(r.Window() / time.Second), From: from, To: now,
		Services: make([]Series, 0, len(svcs))}
	names := make([]string, len(svcs))
	for i, sv := range svcs {
		names[i] = sv.NodeKey
	}
	sort.Strings(names)
	for _, svc := range names {
		s := Series{Service: svc, Points: make([][3]float64, 0, len(pts[svc]))}
		for _, p := range pts[svc] {
			s.Points = append(s.Points, [3]float64{float64(p.At.UnixMilli()) / 1000, p.CPUPercent, float64(p.MemoryBytes)})
		}
		out.Services = append(out.Services, s)
	}
	return out, nil
}

// Prune removes samples older than the window (those of failed
// deployments, and slots left behind when pushes stopped).
func (h *History) Prune(ctx context.Context) (int64, error) {
	return h.Store.PruneUsage(ctx, h.now().Add(-h.ring().Window()))
}

// RunPrune prunes every interval until ctx ends.
func (h *History) RunPrune(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := h.Prune(ctx); err != nil && ctx.Err() == nil {
			h.Log.Warn().Err(err).Msg("prune usage history")
		} else if n > 0 {
			h.Log.Debug().Int64("rows", n).Msg("usage history pruned")
		}
	}
}
