// Package activity records, per deployment, when nullops-ingress last
// proxied a request to it, and reports those times to the server in batches
// so traffic can count as deployment activity for the TTL.
package activity

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/ingress/dynconfig"
)

// Item is one deployment's last request time, the entry of the report
// the server receives (dynconfig.ActivityReport).
type Item = dynconfig.Activity

// Sender delivers a batch to the server.
type Sender interface {
	SendActivity(ctx context.Context, items []Item) error
}

// Cell holds one deployment's last request time, in whole seconds: the hot
// path only writes when the second changes, so concurrent requests to one
// deployment mostly read a shared cache line.
type Cell struct {
	last     atomic.Int64 // unix seconds
	reported int64        // guarded by Tracker.mu
}

// Touch records a request at now.
func (c *Cell) Touch(now time.Time) {
	s := now.Unix()
	if c.last.Load() < s {
		c.last.Store(s)
	}
}

// Tracker owns the cells of all deployments. Cells are stable across
// routing-table swaps: a request still running on an old table touches the
// same cell as one on the new table.
type Tracker struct {
	mu    sync.Mutex
	cells map[int64]*Cell
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker { return &Tracker{cells: map[int64]*Cell{}} }

// Cell returns the cell of deployment id, creating it.
func (t *Tracker) Cell(id int64) *Cell {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.cells[id]
	if c == nil {
		c = &Cell{}
		t.cells[id] = c
	}
	return c
}

// Pending returns the deployments with requests not yet reported.
func (t *Tracker) Pending() []Item {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Item
	for id, c := range t.cells {
		if l := c.last.Load(); l > c.reported {
			out = append(out, Item{ID: id, LastRequestAt: time.Unix(l, 0).UTC()})
		}
	}
	return out
}

// MarkReported records that items reached the server.
func (t *Tracker) MarkReported(items []Item) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, it := range items {
		if c := t.cells[it.ID]; c != nil {
			c.reported = max(c.reported, it.LastRequestAt.Unix())
		}
	}
}

// Retain drops the cells of deployments not in keep once everything they
// recorded has been reported.
func (t *Tracker) Retain(keep map[int64]bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, c := range t.cells {
		if !keep[id] && c.last.Load() <= c.reported {
			delete(t.cells, id)
		}
	}
}

// Forget drops the cell of a deployment that is no longer routed once
// everything it recorded has been reported (otherwise the next Retain
// does).
func (t *Tracker) Forget(id int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.cells[id]; c != nil && c.last.Load() <= c.reported {
		delete(t.cells, id)
	}
}

// Run reports pending activity every interval until ctx ends, then makes one
// last attempt. A failed batch stays pending and goes out with the next one.
func Run(ctx context.Context, t *Tracker, s Sender, interval time.Duration, log zerolog.Logger) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
			flush(final, t, s, log)
			cancel()
			return
		case <-tick.C:
			flush(ctx, t, s, log)
		}
	}
}

func flush(ctx context.Context, t *Tracker, s Sender, log zerolog.Logger) {
	items := t.Pending()
	if len(items) == 0 {
		return
	}
	if err := s.SendActivity(ctx, items); err != nil {
		log.Warn().Err(err).Int("deployments", len(items)).Msg("report deployment activity; will retry")
		return
	}
	t.MarkReported(items)
	log.Debug().Int("deployments", len(items)).Msg("deployment activity reported")
}
