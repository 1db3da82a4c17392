package watch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nullops/nullops/ingress/atomicfile"

	"github.com/nullops/nullops/ingress/dynconfig"
)

// GoneStateFile keeps the last list of removed hosts in the state dir, so a
// restarted ingress says "deleted" before the server answers.
const GoneStateFile = "gone.json"

// DefaultGoneInterval is how often the hosts of removed deployments are
// fetched when no new routing table asks for it sooner.
const DefaultGoneInterval = 30 * time.Second

// GoneWatcher keeps the ingress's list of recently removed hosts (the
// server's GET /api/v1/ingress/gone) current: it fetches it at start, after
// every new routing table (Trigger; a delete withdraws routes, so the list
// arrives right after the table without them) and every Interval (removals
// of deployments that had no route, and the end of the retention). It
// shares the Watcher's server, token and client.
type GoneWatcher struct {
	mu       sync.Mutex // one fetch at a time (Run and Refresh)
	w        *Watcher
	apply    func(*dynconfig.GoneDocument)
	interval time.Duration
	trigger  chan struct{}
	etag     string
}

// NewGoneWatcher returns a GoneWatcher delivering every new list to apply.
func (w *Watcher) NewGoneWatcher(apply func(*dynconfig.GoneDocument), interval time.Duration) *GoneWatcher {
	if interval <= 0 {
		interval = DefaultGoneInterval
	}
	return &GoneWatcher{w: w, apply: apply, interval: interval, trigger: make(chan struct{}, 1)}
}

// LoadState applies the list saved by an earlier run, if any. A missing file
// is no error; a corrupt one is reported and ignored.
func (g *GoneWatcher) LoadState() error {
	data, err := os.ReadFile(filepath.Join(g.w.opts.StateDir, GoneStateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read saved removed hosts: %w", err)
	}
	doc, err := dynconfig.DecodeGone(data)
	if err != nil {
		return fmt.Errorf("saved removed hosts: %w", err)
	}
	g.apply(doc)
	return nil
}

// Trigger asks for a fetch soon; it never blocks.
func (g *GoneWatcher) Trigger() {
	select {
	case g.trigger <- struct{}{}:
	default:
	}
}

// Run fetches until ctx ends. Failures are logged and retried at the next
// trigger or tick; the last list stays in use meanwhile.
func (g *GoneWatcher) Run(ctx context.Context) {
	tick := time.NewTicker(g.interval)
	defer tick.Stop()
	for {
		if err := g.fetch(ctx); err != nil && ctx.Err() == nil {
			g.w.log.Debug().Err(err).Msg("cannot get the removed hosts from the server; keeping the last list")
		}
		select {
		case <-ctx.Done():
			return
		case <-g.trigger:
		case <-tick.C:
		}
	}
}

// Refresh fetches the list now and waits for it (at most refreshTimeout).
// The ingress calls it before it swaps in a table that withdraws routes, so
// a removed host answers "deleted" from the first request on, never
// "unknown host" in between.
func (g *GoneWatcher) Refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	return g.fetch(ctx)
}

// refreshTimeout bounds how long a routing update waits for the removed
// hosts: routing must not stall on them.
const refreshTimeout = 2 * time.Second

func (g *GoneWatcher) fetch(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	u := *g.w.base
	u.Path += "/api/v1/ingress/gone"
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+g.w.opts.Token)
	if g.etag != "" {
		req.Header.Set("If-None-Match", g.etag)
	}
	res, err := g.w.client.Do(req)
	if err != nil {
		return fmt.Errorf("get removed hosts: %w", err)
	}
	defer res.Body.Close()
	switch res.StatusCode {
	case http.StatusNotModified:
		return nil
	case http.StatusOK:
	case http.StatusNotFound:
		// A server from before this endpoint: nothing to show.
		return nil
	default:
		b, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return fmt.Errorf("get removed hosts: %s: %s", res.Status, bytes.TrimSpace(b))
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, dynconfig.MaxGoneBytes+1))
	if err != nil {
		return fmt.Errorf("read removed hosts: %w", err)
	}
	doc, err := dynconfig.DecodeGone(body)
	if err != nil {
		return err
	}
	g.apply(doc)
	g.etag = res.Header.Get("ETag")
	if g.w.opts.StateDir != "" {
		if err := atomicfile.Write(filepath.Join(g.w.opts.StateDir, GoneStateFile), body); err != nil {
			g.w.log.Warn().Err(err).Msg("save removed hosts (served, but not kept across a restart)")
		}
	}
	return nil
}
