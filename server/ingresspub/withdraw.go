package ingresspub

import (
	"context"
	"time"
)

// Route withdrawal: before a deployment's containers stop, every ingress
// must serve a table without its routes, or requests in flight meet a
// closed port (502). nullops-ingress confirms: each of its polls carries
// its instance id and, in If-None-Match, the ETag of the table it serves.
// Ingresses that cannot confirm (Traefik's HTTP or file provider) get a
// grace period instead.

// activeWindow: an ingress that polled within this long is taken as
// serving traffic (its long-polls last at most a minute).
const activeWindow = 90 * time.Second

// Withdrawal defaults.
const (
	DefaultWithdrawGrace  = 3 * time.Second
	DefaultConfirmTimeout = 10 * time.Second
)

type ingressSeen struct {
	version int64 // of the table it serves (0: unknown)
	at      time.Time
}

// remember records a published version's ETag; the caller holds p.mu.
func (p *Publisher) rememberLocked(s *Snapshot) {
	if p.versions == nil {
		p.versions = map[string]int64{}
	}
	if len(p.versions) >= 256 {
		for k, v := range p.versions {
			if v < s.Version-128 {
				delete(p.versions, k)
			}
		}
	}
	p.versions[s.ETag] = s.Version
}

// Polled records a poll of the route table. instance is a nullops-ingress
// instance id ("" for other ingresses); etag its If-None-Match: the table
// it serves now.
func (p *Publisher) Polled(instance, etag string) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if instance == "" {
		p.otherPollAt = now
		return
	}
	if p.ingresses == nil {
		p.ingresses = map[string]ingressSeen{}
	}
	seen := p.ingresses[instance]
	seen.at = now
	if v, ok := p.versions[etag]; ok && v > seen.version {
		seen.version = v
	}
	p.ingresses[instance] = seen
	for id, s := range p.ingresses {
		if now.Sub(s.at) > activeWindow {
			delete(p.ingresses, id)
		}
	}
	close(p.confirmed)
	p.confirmed = make(chan struct{})
}

// Withdraw returns once every ingress serves the route table as of now:
// the table is recomputed, then each nullops-ingress that polled recently
// must confirm that version (at most ConfirmTimeout), and when other
// ingresses poll or a Traefik file is written, WithdrawGrace passes. ctx
// ending cuts it short.
func (p *Publisher) Withdraw(ctx context.Context) {
	if err := p.Recompute(ctx); err != nil {
		p.log.Warn().Err(err).Msg("recompute routes before withdrawing; waiting for the ingresses anyway")
	}
	var want int64
	if s := p.Current(); s != nil {
		want = s.Version
	}
	start := time.Now()
	grace := p.opts.File != ""
	p.mu.Lock()
	if !p.otherPollAt.IsZero() && start.Sub(p.otherPollAt) < activeWindow {
		grace = true
	}
	p.mu.Unlock()
	deadline := start.Add(p.opts.ConfirmTimeout)
	for {
		p.mu.Lock()
		waiting := 0
		for _, s := range p.ingresses {
			if start.Sub(s.at) < activeWindow && s.version < want {
				waiting++
			}
		}
		ch := p.confirmed
		p.mu.Unlock()
		if waiting == 0 {
			break
		}
		left := time.Until(deadline)
		if left <= 0 {
			p.log.Warn().Int("ingresses", waiting).Int64("version", want).Dur("waited", time.Since(start)).
				Msg("ingresses did not confirm the route table in time; going on")
			break
		}
		t := time.NewTimer(left)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-ch:
		case <-t.C:
		}
		t.Stop()
	}
	if grace {
		t := time.NewTimer(time.Until(start.Add(p.opts.WithdrawGrace)))
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}
